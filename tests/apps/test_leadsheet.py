"""MusicXML lead sheets through music21 (the `leadsheet` extra, installed with the test extras)."""

from __future__ import annotations

from pathlib import Path

import pytest
import symusic

music21 = pytest.importorskip("music21")


def _leadsheet(path: Path) -> list[tuple[float, int]]:
    """A 4-bar lead sheet of our own in 3/4 with a pickup beat, chord symbols C | F | G7 | C, 90 bpm."""
    s = music21.stream.Score()
    p = music21.stream.Part()
    p.append(music21.meter.TimeSignature("3/4"))
    p.append(music21.tempo.MetronomeMark(number=90))
    melody = [("G4", 1.0)]  # pickup
    bars = [("C", [("E4", 1), ("G4", 1), ("C5", 1)]), ("F", [("A4", 2), ("F4", 1)]),
            ("G7", [("D4", 1), ("F4", 1), ("B4", 1)]), ("C", [("C5", 3)])]
    notes = []
    off = 0.0
    for name, dur in melody:
        p.append(music21.note.Note(name, quarterLength=dur))
        notes.append((off, music21.pitch.Pitch(name).midi))
        off += dur
    for sym, ns in bars:
        p.append(music21.harmony.ChordSymbol(sym))
        for name, dur in ns:
            p.append(music21.note.Note(name, quarterLength=dur))
            notes.append((off, music21.pitch.Pitch(name).midi))
            off += dur
    s.append(p)
    s.write("musicxml", fp=str(path))
    return notes


def test_leadsheet_melody_and_chord_symbols(tmp_path: Path, loaded_model) -> None:
    from stripes.apps.harmonize.pipeline import Options, harmonize_files

    src = tmp_path / "tune.musicxml"
    notes = _leadsheet(src)
    (res,) = harmonize_files([src], Options(out_dir=tmp_path / "out", png=False), log=lambda m: None,
                             loaded=loaded_model)
    assert res.error is None, res.error
    out = symusic.Score(str(tmp_path / "out" / "tune.harmonized.mid"))
    mel = next(t for t in out.tracks if t.name == "melody")
    assert [n.pitch for n in mel.notes] == [p for _, p in notes]
    starts = [n.start / out.ticks_per_quarter for n in mel.notes]
    gaps = {round(b - a, 3) for a, b in zip(starts, starts[1:])}
    assert gaps <= {1.0, 2.0, 3.0}  # note for note, in time
    assert out.time_signatures[0].numerator == 3
    text = (tmp_path / "out" / "tune.chords.txt").read_text()
    for sym in ("C", "F", "G7"):
        assert sym in text.split()


def test_leadsheet_without_notes_is_one_line_error(tmp_path: Path, loaded_model) -> None:
    from stripes.apps.harmonize.pipeline import Options, harmonize_files

    s = music21.stream.Score()
    p = music21.stream.Part()
    p.append(music21.harmony.ChordSymbol("C"))
    p.append(music21.note.Rest(quarterLength=4))
    s.append(p)
    src = tmp_path / "empty.musicxml"
    s.write("musicxml", fp=str(src))
    (res,) = harmonize_files([src], Options(out_dir=tmp_path / "out"), log=lambda m: None,
                             loaded=loaded_model)
    assert res.error and "no notes" in res.error and "\n" not in res.error
