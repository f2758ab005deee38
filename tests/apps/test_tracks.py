"""Which track is the melody: generated melody + block-chord files, POP909's own files, the printed ranking
and --melody-track."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic

from stripes.apps.harmonize.song import choose_melody, load_score, notes_array, read_midi_song
from stripes.apps.harmonize.tracks import name_bonus, program_bonus, rank_tracks
from stripes.cli import main

from .conftest import make_midi, scale_melody
from .gen_tracks import accuracy, two_track_file

N_GENERATED = 150


def test_generated_melody_plus_block_chords(tmp_path: Path) -> None:
    """>= 95 % of random two-track files (unnamed, the chord track busier) get their melody chosen
    (measured: 100 % of 150 here, and of 800 with `python tests/apps/gen_tracks.py 200 SEED`, seeds 0-3)."""
    acc, misses = accuracy(tmp_path, N_GENERATED, seed=0)
    assert acc >= 0.95, (acc, misses)


def test_generated_files_are_the_hard_case(tmp_path: Path) -> None:
    """The generated chord track is always the busier one, so "the busiest track" would always be wrong."""
    for k in range(10):
        truth = two_track_file(tmp_path / f"g{k}.mid", 1000 + k)
        s = symusic.Score(str(tmp_path / f"g{k}.mid"))
        assert [t.name for t in s.tracks] == ["", ""]
        assert len(s.tracks[1 - truth].notes) > len(s.tracks[truth].notes)
        on = np.array([n.time for n in s.tracks[1 - truth].notes])
        assert len(np.unique(on)) < len(on)  # block chords: notes struck together


def test_ranking_components() -> None:
    s = symusic.Score(480)
    tracks = {
        "": [(i * 240, 240, 72 + (i % 5)) for i in range(32)],  # a melody
        "Bass": [(i * 960, 900, 36) for i in range(8)],
        "x": [(i * 480, 470, p) for i in range(16) for p in (55, 59, 62)],  # block chords
    }
    for name, notes in tracks.items():
        t = symusic.Track(name, 33 if name == "Bass" else 0, False)
        for a, d, p in notes:
            t.notes.append(symusic.Note(a, d, p, 80))
        s.tracks.append(t)
    drums = symusic.Track("", 0, True)
    drums.notes.append(symusic.Note(0, 10, 36, 100))
    s.tracks.append(drums)
    r = rank_tracks(s, notes_array)
    assert [x.index for x in r] == [0, 2, 1]  # drums are no candidate
    mel, chords, bass = r
    assert mel.mono == 1.0 and mel.chordal == 0.0 and mel.top == 1.0 and mel.median == 74
    assert chords.mono == 0.0 and chords.chordal == 1.0
    assert bass.name == -2 and bass.program == -1.5 and bass.register == -2.0
    assert name_bonus("Lead Vocal") == 3 and name_bonus("Chords") == -3 and name_bonus("PIANO") == -2
    assert name_bonus("Flute") == 0 and program_bonus(73) == 0.5 and program_bonus(0) == 0
    assert "score" in mel.line() and "mono 1.00" in mel.line()


def test_ranking_on_stderr_and_override(tmp_path: Path, smoke_model_file: Path, capsys) -> None:
    mel = scale_melody(16, start=0)
    chords = [(i * 480, 470, p) for i in range(16) for p in (48, 52, 55)]
    f = make_midi(tmp_path / "two.mid", chords, name="", extra_tracks=[("", mel, False)])
    args = ["harmonize", str(f), "--out", str(tmp_path / "o"), "--checkpoint", str(smoke_model_file),
            "--no-png"]
    assert main(args) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if " score " in ln and ": mono " in ln]
    assert len(lines) == 2 and "track 2 (unnamed)" in lines[0] and "track 1 (unnamed)" in lines[1]
    for part in ("chordal", "top", "median pitch", "onsets/quarter", "name", "program"):
        assert part in lines[0]
    assert 'melody = track 2 (unnamed) (best melody score' in err
    assert main(args + ["--melody-track", "1"]) == 0
    err = capsys.readouterr().err
    assert "melody = track 1 (unnamed) (chosen with --melody-track)" in err
    assert sum(" score " in ln and ": mono " in ln for ln in err.splitlines()) == 2  # ranking still shown


def test_polyphonic_track_reduced_to_top_voice(tmp_path: Path) -> None:
    chords = [(i * 480, 480, p) for i in range(8) for p in (48, 52, 55, 72)]
    f = make_midi(tmp_path / "k.mid", chords, name="Keys")
    s = read_midi_song(f)
    assert set(s.melody[:, 2]) == {72} and "skyline" in s.messages[-1]
    # a monophonic melody with legato overlaps is kept note for note
    legato = [(i * 480, 540, 60 + i % 7) for i in range(8)]
    g = make_midi(tmp_path / "l.mid", legato, name="", extra_tracks=[("", chords, False)])
    s = read_midi_song(g)
    assert len(s.melody) == 8 and s.melody[:, 1].tolist() == [540] * 8


def _pop909_files(root: Path, n: int) -> list[Path]:
    files = sorted((root / "POP909").glob("[0-9][0-9][0-9]/[0-9][0-9][0-9].mid"))
    return files[:: max(len(files) // n, 1)][:n]


def test_pop909_melody_track(shared_data: Path) -> None:
    """POP909's own files (tracks MELODY, BRIDGE, PIANO): MELODY is chosen; with the names removed and
    only MELODY + PIANO kept (a melody + accompaniment file) the melody still is."""
    files = _pop909_files(shared_data, 12)
    assert files
    for f in files:
        score = load_score(f)
        names = [t.name for t in score.tracks]
        assert {"MELODY", "PIANO"} <= set(names), names
        idx, _, _, ranking = choose_melody(score, f, None)
        assert names[idx] == "MELODY", ranking
        two = symusic.Score(score.ticks_per_quarter)
        for name in ("PIANO", "MELODY"):
            t = score.tracks[names.index(name)].copy()
            t.name = ""
            two.tracks.append(t)
        idx, _, _, ranking = choose_melody(two, f, None)
        assert idx == 1, ranking


@pytest.mark.parametrize("bad", ["0", "x"])
def test_melody_track_errors(tmp_path: Path, bad: str) -> None:
    from stripes.apps.harmonize.errors import HarmonizeError

    f = make_midi(tmp_path / "m.mid", scale_melody(8))
    with pytest.raises(HarmonizeError, match="no such track"):
        read_midi_song(f, bad)
