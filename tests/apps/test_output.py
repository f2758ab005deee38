"""DAW-ready output: velocities, chord markers, GM programs, tempo map, time and key signatures, the key line
of the chords file and --key, and --musicxml (read back with music21)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic
import torch

from stripes.apps.harmonize import Options, harmonize_files
from stripes.apps.harmonize.chords import parse_chord_text
from stripes.apps.harmonize.estimate import Key, parse_key
from stripes.cli import main

from .conftest import make_midi, scale_melody

TPQ = 480


class ChordPulse(torch.nn.Module):
    """A stand-in harmonizer: the chord tones of the BIN context in octave 4 and their root in octave 2,
    struck on every eighth note (on for 6 of the 8 grid ticks)."""

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        gate = (torch.arange(T) % 8 < 6).float()[None, :, None]
        logits = torch.full((*x.shape[:2], 128), -8.0)
        logits[..., 60:72] = (16.0 * pos - 8.0) * gate - 8.0 * (1 - gate)
        logits[..., 36:48] = (16.0 * pos - 8.0) * gate - 8.0 * (1 - gate)
        return logits


@pytest.fixture
def pulse_model():
    from stripes.apps.harmonize.model import LoadedModel

    return LoadedModel(ChordPulse(), 0.5, None, "chord pulse", "test")


def _run(tmp_path: Path, src: Path, model, **kw):
    logs: list[str] = []
    (res,) = harmonize_files([src], Options(out_dir=tmp_path / "out", png=False, **kw), log=logs.append,
                             loaded=model)
    assert res.error is None, res.error
    return res, logs


def _velocity_melody(path: Path, bars: int = 8, **kw) -> tuple[Path, list[int]]:
    s = symusic.Score(TPQ)
    for t, q in kw.get("tempos", ((0, 100.0),)):
        s.tempos.append(symusic.Tempo(t, q))
    for t, n, d in kw.get("sigs", ((0, 4, 4),)):
        s.time_signatures.append(symusic.TimeSignature(t, n, d))
    tr = symusic.Track("melody", kw.get("program", 73), False)
    vels = []
    for i in range(bars * 4):
        v = 60 + (i * 7) % 50
        vels.append(v)
        tr.notes.append(symusic.Note(i * TPQ, TPQ, [72, 74, 76, 77, 79][i % 5], v))
    s.tracks.append(tr)
    s.dump_midi(str(path))
    return path, vels


def test_velocities_follow_beats_and_are_deterministic(tmp_path: Path, pulse_model) -> None:
    src, vels = _velocity_melody(tmp_path / "v.mid")
    res, _ = _run(tmp_path, src, pulse_model, chords="C | Am | F | G | C | Am | Dm | G")
    out = symusic.Score(str(res.outputs[0]))
    mel = next(t for t in out.tracks if t.name == "melody")
    assert [n.velocity for n in mel.notes] == vels  # the melody keeps its own velocities
    acc = next(t for t in out.tracks if t.name == "accompaniment")
    on = np.array([n.time for n in acc.notes])
    vel = np.array([n.velocity for n in acc.notes])
    pitch = np.array([n.pitch for n in acc.notes])
    assert len(acc.notes) > 100 and len(set(vel.tolist())) > 5  # not all 70
    bar = 4 * TPQ
    down = vel[on % bar == 0].mean()
    beat = vel[(on % TPQ == 0) & (on % bar != 0)].mean()
    off = vel[on % TPQ != 0].mean()
    assert down > beat > off, (down, beat, off)
    assert vel[pitch < 48].mean() > vel[pitch >= 60].mean()  # bass a bit louder
    res2, _ = _run(tmp_path, src, pulse_model, chords="C | Am | F | G | C | Am | Dm | G")
    again = symusic.Score(str(res2.outputs[0]))
    acc2 = next(t for t in again.tracks if t.name == "accompaniment")
    assert [n.velocity for n in acc2.notes] == vel.tolist()


def test_beat_strength_in_odd_meters() -> None:
    from stripes.apps.harmonize.render import beat_strength

    # a 1/4 pickup, a 4/4 bar, a 6/8 bar (6 beats of 8 ticks) on the 16-per-quarter grid
    starts, beats = np.array([0, 16, 80]), np.array([1, 4, 6])
    on = np.array([0, 8, 16, 24, 32, 48, 52, 80, 88, 104, 106])
    assert beat_strength(on, starts, beats, 128).tolist() == [3, 0, 3, 0, 1, 2, -1, 3, 1, 2, -1]


def test_markers_programs_tempo_map_and_signatures(tmp_path: Path, pulse_model) -> None:
    tempos = ((0, 92.0), (4 * TPQ + TPQ, 128.5))
    sigs = ((0, 1, 4), (TPQ, 4, 4), (TPQ + 8 * TPQ, 3, 4))
    src, _ = _velocity_melody(tmp_path / "m.mid", bars=6, tempos=tempos, sigs=sigs, program=73)
    res, _ = _run(tmp_path, src, pulse_model, chords="N | C | Am F | G | G | Dm7/A | E", chord_track=True)
    out = symusic.Score(str(res.outputs[0]))
    inp = symusic.Score(str(src))
    assert out.ticks_per_quarter == TPQ
    assert [(t.time, round(t.qpm, 2)) for t in out.tempos] == [(t.time, round(t.qpm, 2)) for t in inp.tempos]
    assert [(s.time, s.numerator, s.denominator) for s in out.time_signatures] == [
        (0, 1, 4), (TPQ, 4, 4), (9 * TPQ, 3, 4)]
    bar2, bar3 = TPQ, 5 * TPQ
    expected = [(bar2, "C"), (bar3, "Am"), (bar3 + 2 * TPQ, "F"), (bar3 + 4 * TPQ, "G"),
                (bar3 + 4 * TPQ + 6 * TPQ, "Dm7/A"), (bar3 + 4 * TPQ + 9 * TPQ, "E")]  # 3/4 from bar 4
    assert [(m.time, m.text) for m in out.markers] == expected  # "G | G": one marker; no N.C. at the start
    programs = {t.name: t.program for t in out.tracks}
    assert programs == {"melody": 73, "accompaniment": 0, "chords": 0}
    assert all(not t.is_drum for t in out.tracks)
    (ks,) = out.key_signatures  # the input had none: the key found is written
    key = parse_key(res.info["key"])
    assert (ks.time, ks.key, ks.tonality) == (0, key.sharps, int(key.minor))


def test_input_key_signature_and_markers_are_kept(tmp_path: Path, pulse_model) -> None:
    src, _ = _velocity_melody(tmp_path / "k.mid", bars=2)
    s = symusic.Score(str(src))
    s.key_signatures.append(symusic.KeySignature(0, -3, 0))
    s.markers.append(symusic.TextMeta(TPQ * 2, "Verse"))
    s.dump_midi(str(src))
    res, _ = _run(tmp_path, src, pulse_model, chords="C | G")
    out = symusic.Score(str(res.outputs[0]))
    assert [(k.key, k.tonality) for k in out.key_signatures] == [(-3, 0)]
    assert [(m.time, m.text) for m in out.markers] == [(0, "C"), (TPQ * 2, "Verse"), (TPQ * 4, "G")]


def _cadence(path: Path) -> Path:
    """An A-minor tune (arpeggios of Am Dm E Am, twice) as a MIDI file."""
    bars = [[69, 72, 76, 72], [74, 69, 77, 69], [71, 68, 76, 68], [69, 72, 76, 81]] * 2
    notes = [(i * TPQ, TPQ, p) for i, p in enumerate(x for bar in bars for x in bar)]
    return make_midi(path, notes)


def test_key_line_written_and_read_back(tmp_path: Path, echo_model) -> None:
    src = _cadence(tmp_path / "am.mid")
    res, logs = _run(tmp_path, src, echo_model)
    text = (tmp_path / "out" / "am.chords.txt").read_text()
    first = text.splitlines()[0]
    assert first == "# key: A minor (estimated from the melody)", text
    assert "am.mid: key A minor (estimated from the melody)" in logs
    assert res.info["key"] == "A minor"
    chords = [[c.symbol for c in bar] for bar in parse_chord_text(text)]
    assert chords[:4] == [["Am"], ["Dm"], ["E"], ["Am"]]
    # the written file is a valid --chords input and gives the same accompaniment
    acc = [(n.time, n.pitch) for n in symusic.Score(str(res.outputs[0])).tracks[1].notes]
    res2, _ = _run(tmp_path, src, echo_model, chords=str(tmp_path / "out" / "am.chords.txt"))
    assert [(n.time, n.pitch) for n in symusic.Score(str(res2.outputs[0])).tracks[1].notes] == acc


def test_key_option_changes_key_line_and_chords(tmp_path: Path, echo_model) -> None:
    src = _cadence(tmp_path / "am.mid")
    _run(tmp_path, src, echo_model)
    plain = (tmp_path / "out" / "am.chords.txt").read_text()
    res, _ = _run(tmp_path, src, echo_model, key="Eb major")
    given = (tmp_path / "out" / "am.chords.txt").read_text()
    assert given.splitlines()[0] == "# key: Eb major (given with --key)"
    assert res.info["key"] == "Eb major" and "in Eb major" in res.info["chords"]
    body = lambda t: [ln for ln in t.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert body(given) != body(plain)
    out = symusic.Score(str(res.outputs[0]))
    assert [(k.key, k.tonality) for k in out.key_signatures] == [(-3, 0)]  # 3 flats, major
    # --key "A minor" is the estimated key: same chords as without it
    _run(tmp_path, src, echo_model, key="A minor")
    assert body((tmp_path / "out" / "am.chords.txt").read_text()) == body(plain)


def test_bad_key_is_one_line_error(tmp_path: Path, smoke_model_file: Path, capsys) -> None:
    src = make_midi(tmp_path / "m.mid", scale_melody(8))
    rc = main(["harmonize", str(src), str(src), "--out", str(tmp_path / "o"), "--checkpoint",
               str(smoke_model_file), "--no-png", "--key", "H minor"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "--key" in err and "'H minor'" in err and "A minor" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "text,key", [("A minor", Key(9, True)), ("am", Key(9, True)), ("Bb", Key(10, False)),
                 ("F# minor", Key(6, True)), ("Eb major", Key(3, False)), ("c sharp minor", Key(1, True))]
)
def test_parse_key(text: str, key: Key) -> None:
    assert parse_key(text) == key


def test_musicxml_grand_staff_and_chord_symbols(tmp_path: Path, pulse_model) -> None:
    music21 = pytest.importorskip("music21")
    src, _ = _velocity_melody(tmp_path / "s.mid", bars=8)
    chords = "C | Am | F G | Cmaj7 | Eb | Bbm7 | Dm7b5/Ab | G7"
    res, _ = _run(tmp_path, src, pulse_model, chords=chords, musicxml=True)
    path = tmp_path / "out" / "s.musicxml"
    assert path in res.outputs and path.is_file()
    score = music21.converter.parse(str(path))
    parts = list(score.parts)
    assert [p.partName for p in parts] == ["Melody", "Piano", "Piano"]
    clefs = [type(p.recurse().getElementsByClass("Clef")[0]).__name__ for p in parts]
    assert clefs == ["TrebleClef", "TrebleClef", "BassClef"]

    def onsets(part):  # notes struck (tie continuations not counted), as (offset, midi)
        out = []
        for el in part.flatten().notes:
            if isinstance(el, music21.harmony.ChordSymbol):
                continue
            if el.tie is not None and el.tie.type in ("stop", "continue"):
                continue
            out += [(float(el.offset), p.midi) for p in el.pitches]
        return out

    mel = onsets(parts[0])
    assert mel == [(float(i), [72, 74, 76, 77, 79][i % 5]) for i in range(32)]  # offsets in quarters
    upper, lower = onsets(parts[1]), onsets(parts[2])
    assert all(p >= 60 for _, p in upper) and all(p < 60 for _, p in lower)
    midi = symusic.Score(str(res.outputs[0]))
    track = next(t for t in midi.tracks if t.name == "accompaniment")
    acc = sorted((n.time / TPQ, n.pitch) for n in track.notes)
    assert abs(len(upper) + len(lower) - len(acc)) <= 0.05 * len(acc)
    assert len(set(upper + lower) & set(acc)) >= 0.95 * len(acc)  # same notes at the same times
    symbols = [cs for cs in parts[0].flatten().getElementsByClass(music21.harmony.ChordSymbol)]
    roots = [cs.root().name for cs in symbols]
    assert roots == ["C", "A", "F", "G", "C", "E-", "B-", "D", "G"]
    assert [float(cs.offset) for cs in symbols][:4] == [0.0, 4.0, 8.0, 10.0]
    assert symbols[7].bass().name == "A-"


def test_musicxml_without_music21_is_one_line(tmp_path: Path, monkeypatch, echo_model) -> None:
    import builtins

    real_import = builtins.__import__

    def no_music21(name, *a, **k):
        if name == "music21":
            raise ImportError("no music21")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_music21)
    src = make_midi(tmp_path / "m.mid", scale_melody(8))
    (res,) = harmonize_files([src], Options(out_dir=tmp_path / "o", png=False, musicxml=True),
                             log=lambda m: None, loaded=echo_model)
    assert res.error and "pip install 'stripes[leadsheet]'" in res.error and "\n" not in res.error
