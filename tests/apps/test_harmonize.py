import wave
from pathlib import Path

import numpy as np
import pytest
import symusic

from stripes.apps.harmonize import Options, harmonize_files
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.song import read_midi_song
from stripes.cli import main

from .conftest import make_midi, scale_melody

EXAMPLE = Path(__file__).parents[2] / "src/stripes/apps/harmonize/examples/morning_walk.mid"


def _notes(track):
    return sorted((n.time, n.duration, n.pitch, n.velocity) for n in track.notes)


def _run(tmp_path, inputs, model, **kw):
    logs = []
    res = harmonize_files(
        inputs,
        Options(out_dir=tmp_path / "out", png=kw.pop("png", False), **kw),
        log=logs.append,
        loaded=model,
    )
    return res, logs


@pytest.mark.parametrize("case", ["pickup", "waltz", "tempo_change"])
def test_melody_kept_exactly(tmp_path, loaded_model, case):
    tpq = 480
    notes = [(i * 240 + (7 if i % 3 == 1 else 0), 230, 60 + (i * 5) % 17) for i in range(40)]  # some off-grid
    kw = {
        "pickup": dict(sigs=((0, 1, 4), (tpq, 4, 4))),
        "waltz": dict(sigs=((0, 3, 4),)),
        "tempo_change": dict(
            tempos=((0, 90.0), (8 * tpq, 132.0), (16 * tpq, 70.5)), sigs=((0, 4, 4), (8 * tpq, 6, 8))
        ),
    }[case]
    src = make_midi(tmp_path / f"{case}.mid", notes, tpq=tpq, **kw)
    (r,), logs = _run(tmp_path, [src], loaded_model, chords="C | F | G | C")
    assert r.error is None, r.error
    assert any("onsets moved" in m for m in logs)
    inp, out = symusic.Score(str(src)), symusic.Score(str(r.outputs[0]))
    assert [t.name for t in out.tracks][:2] == ["melody", "accompaniment"]
    assert out.ticks_per_quarter == inp.ticks_per_quarter
    assert _notes(out.tracks[0]) == _notes(inp.tracks[0])
    assert [(t.time, round(t.qpm, 3)) for t in out.tempos] == [(t.time, round(t.qpm, 3)) for t in inp.tempos]
    sig = lambda s: [(t.time, t.numerator, t.denominator) for t in s.time_signatures]  # noqa: E731
    assert sig(out) == sig(inp)


def test_chords_given_are_followed(tmp_path, echo_model):
    src = make_midi(tmp_path / "m.mid", scale_melody(32))
    chords = "C | Am | F | G | Em | Dm7 | Bb | E7"
    (r,), _ = _run(tmp_path, [src], echo_model, chords=chords, chord_track=True)
    out = symusic.Score(str(r.outputs[0]))
    acc = out.tracks[1]
    bars = chords.split("|")
    from stripes.apps.harmonize.chords import parse_chord

    inside = total = 0
    for n in acc.notes:
        bar = n.time // (4 * 480)
        total += 1
        inside += (n.pitch % 12) in parse_chord(bars[bar].strip()).pcs
    assert total >= 8 and inside / total > 0.9
    assert [t.name for t in out.tracks] == ["melody", "accompaniment", "chords"]
    text = (tmp_path / "out/m.chords.txt").read_text()
    assert "| C  | Am | F  | G  |" in text.replace("   ", "  ") or "C" in text
    # the chords file reads back to the same chords
    (r2,), _ = _run(tmp_path, [src], echo_model, chords=str(tmp_path / "out/m.chords.txt"))
    assert _notes(symusic.Score(str(r2.outputs[0])).tracks[1]) == _notes(acc)


def test_melody_track_choice(tmp_path, loaded_model):
    mel = scale_melody(8)
    piano = [(i * 480, 480, p) for i in range(8) for p in (48, 52, 55)]
    drums = [(i * 240, 100, 36) for i in range(16)]
    f = make_midi(
        tmp_path / "a.mid", piano, name="Piano", extra_tracks=[("Vocals", mel, False), ("Drums", drums, True)]
    )
    song = read_midi_song(f)
    assert "Vocals" in song.melody_track and "named like a melody" in song.messages[-1]
    assert read_midi_song(f, "1").melody_track.startswith("track 1")
    assert "Piano" in read_midi_song(f, "piano").melody_track
    with pytest.raises(HarmonizeError, match="no such track"):
        read_midi_song(f, "7")
    with pytest.raises(HarmonizeError, match="no such track.*Vocals"):
        read_midi_song(f, "flute")
    # no melody name: the top voice of the busiest track
    g = make_midi(
        tmp_path / "b.mid",
        piano + [(i * 480, 480, 72) for i in range(8)],
        name="Keys",
        extra_tracks=[("Bass", [(0, 960, 36)], False)],
    )
    s = read_midi_song(g)
    assert "skyline" in s.messages[-1] and set(s.melody[:, 2]) == {72}
    # a chord track in the file serves as chords
    h = make_midi(tmp_path / "c.mid", mel, name="Melody", extra_tracks=[("Chords", piano, False)])
    assert read_midi_song(h).chord_notes is not None


def test_estimated_chords_wav_png_and_example(tmp_path, loaded_model):
    (r,), logs = _run(tmp_path, [EXAMPLE], loaded_model, wav=True, png=True, synth="builtin")
    assert r.error is None, r.error
    names = sorted(p.name for p in r.outputs)
    assert names == [
        "morning_walk.chords.txt",
        "morning_walk.harmonized.mid",
        "morning_walk.png",
        "morning_walk.wav",
    ]
    assert "estimated from the melody" in r.info["chords"]
    with wave.open(str(tmp_path / "out/morning_walk.wav")) as w:
        assert w.getframerate() == 44100 and w.getnchannels() == 2
        seconds = w.getnframes() / 44100
    midi_seconds = symusic.Score(str(r.outputs[0])).to("second").end()
    assert abs(seconds - midi_seconds) < 0.01


def test_cli_errors_one_line_and_batch(tmp_path, smoke_model_file, capsys):
    good = make_midi(tmp_path / "good.mid", scale_melody(8))
    drums = make_midi(tmp_path / "drums.mid", [(0, 100, 36)], name="Drums")
    s = symusic.Score(str(drums))
    s.tracks[0].is_drum = True
    s.dump_midi(str(drums))
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    trunc = tmp_path / "trunc.mid"
    trunc.write_bytes(good.read_bytes()[:30])
    out = tmp_path / "o"
    rc = main(
        [
            "harmonize",
            str(empty),
            str(good),
            str(drums),
            str(text),
            str(trunc),
            "--out",
            str(out),
            "--checkpoint",
            str(smoke_model_file),
            "--no-png",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert (out / "good.harmonized.mid").is_file() and not (out / "drums.harmonized.mid").exists()
    errors = [ln for ln in err.splitlines() if ln.startswith("stripes: error:")]
    assert len(errors) == 4
    for f, why in (
        (empty, "empty file"),
        (drums, "only drum"),
        (text, "not a MIDI"),
        (trunc, "corrupt or truncated"),
    ):
        assert any(str(f) in e and why in e for e in errors), (why, errors)
    rc = main(
        [
            "harmonize",
            str(good),
            "--out",
            str(out),
            "--checkpoint",
            str(smoke_model_file),
            "--chords",
            "C | G | Hm7",
            "--no-png",
        ]
    )
    assert rc == 2 and "bar 3: cannot parse chord symbol 'Hm7'" in capsys.readouterr().err
    rc = main(
        [
            "harmonize",
            str(good),
            "--out",
            str(out),
            "--checkpoint",
            str(smoke_model_file),
            "--chords",
            "C | G | C | G | C",
            "--no-png",
        ]
    )
    assert rc == 0 and "5 chord bars given but the melody has 2 bars" in capsys.readouterr().err
    rc = main(
        [
            "harmonize",
            str(good),
            "--out",
            str(out),
            "--checkpoint",
            str(smoke_model_file),
            "--melody-track",
            "9",
            "--no-png",
        ]
    )
    assert rc == 2 and "--melody-track 9: no such track" in capsys.readouterr().err


def test_missing_model_and_leadsheet_without_music21(tmp_path, monkeypatch, capsys):
    import builtins

    from stripes.apps.harmonize import model as model_mod

    monkeypatch.setattr(model_mod, "SHIPPED_MODEL", tmp_path / "nope.pt")
    good = make_midi(tmp_path / "g.mid", scale_melody(4))
    assert main(["harmonize", str(good), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no shipped model" in err and "--checkpoint RUN_DIR" in err
    real_import = builtins.__import__

    def no_music21(name, *a, **k):
        if name == "music21":
            raise ImportError("no music21")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_music21)
    from stripes.apps.harmonize.pipeline import read_song

    (tmp_path / "x.musicxml").write_text("<score-partwise/>")
    with pytest.raises(HarmonizeError, match=r"pip install 'stripes\[leadsheet\]'"):
        read_song(tmp_path / "x.musicxml")


def test_seed_variation_is_reproducible(tmp_path, loaded_model):
    from stripes.apps.harmonize.model import choose_notes

    probs = np.random.default_rng(0).random((64, 128)) * 0.6
    a, b = choose_notes(probs, 0.5, None, seed=3), choose_notes(probs, 0.5, None, seed=3)
    assert np.array_equal(a, b) and a.sum() > 0


def test_cli_example_flag(tmp_path, smoke_model_file, capsys):
    from stripes.cli import main

    assert main(["harmonize", "--example", "--out", str(tmp_path / "o"), "--checkpoint",
                 str(smoke_model_file), "--no-png"]) == 0
    assert (tmp_path / "o" / "morning_walk.harmonized.mid").is_file()
    assert (tmp_path / "o" / "morning_walk.chords.txt").read_text().strip()
    assert main(["harmonize", "--out", str(tmp_path / "o")]) == 2
    assert "at least one INPUT" in capsys.readouterr().err
