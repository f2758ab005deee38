"""Parsers on the real line formats, and their errors (file and line named)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stripes.data import readers
from stripes.errors import DataError


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_chord_lines(tmp_path: Path) -> None:
    p = write(tmp_path, "finalized_chord.txt",
              "B:maj [3, 6, 11] 11 2 \nN []  32 \nN [10] 18 2\nAb:maj [0, 3, 8] 8 4 2\n")
    spans = readers.read_chords(p)
    assert spans[0] == readers.ChordSpan(11, (3, 6, 11), 2)
    assert spans[1] == readers.ChordSpan(None, (), 32)
    assert spans[2] == readers.ChordSpan(None, (), 2)  # an N line's length is its last number
    assert spans[3] == readers.ChordSpan(8, (0, 3, 8), 4)  # stray third number ignored, as in P3


@pytest.mark.parametrize("line", ["B:maj [3, 6, 11] 11", "B:maj 3 6 11 2", "B:maj [3, x] 11 2",
                                  "B:maj [3] 12 2"])
def test_bad_chord_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    p = write(tmp_path, "finalized_chord.txt", f"N []  4\n{line}\n")
    with pytest.raises(DataError, match=r"finalized_chord\.txt:2:"):
        readers.read_chords(p)


def test_melody_sections_tempo_key(tmp_path: Path) -> None:
    mel = readers.read_melody(write(tmp_path, "melody.txt", "0 60\n61 1\n63 2\n"))
    assert mel.tolist() == [[0, 60], [61, 1], [63, 2]]
    sections = readers.read_sections(write(tmp_path, "h.txt", "i4A4B8x1\n"))
    assert sections == [("i", 4), ("A", 4), ("B", 8), ("x", 1)]
    assert readers.read_tempo(write(tmp_path, "tempo.txt", "90")) == 90
    assert readers.read_key(write(tmp_path, "k1.txt", "Gb:maj")) == (6, "maj")
    assert readers.read_key(write(tmp_path, "k2.txt", "C#:min\n")) == (1, "min")
    assert readers.read_key(write(tmp_path, "k3.txt", "B:min")) == (11, "min")


@pytest.mark.parametrize(("name", "text", "func", "where"), [
    ("melody.txt", "0 60\n61\n", readers.read_melody, ":2:"),
    ("melody.txt", "0 60\n200 1\n", readers.read_melody, ":2:"),
    ("human_label1.txt", "i4A4?8\n", readers.read_sections, ":1:"),
    ("human_label1.txt", "\n", readers.read_sections, ":1:"),
    ("tempo.txt", "fast", readers.read_tempo, ":1:"),
    ("analyzed_key.txt", "H:maj", readers.read_key, ":1:"),
])
def test_bad_annotation_lines(tmp_path: Path, name: str, text: str, func, where: str) -> None:
    p = write(tmp_path, name, text)
    with pytest.raises(DataError, match=name.replace(".", r"\.") + where):
        func(p)


def test_missing_file_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        readers.read_melody(tmp_path / "melody.txt")


def test_real_files(shared_data: Path) -> None:
    d = shared_data / "POP909-structure" / "001"
    spans = readers.read_chords(d / "finalized_chord.txt")
    assert spans[0] == readers.ChordSpan(11, (3, 6, 11), 2)
    assert readers.read_key(d / "analyzed_key.txt") == (6, "maj")
    sections = readers.read_sections(d / "human_label1.txt")  # i4A4B8A4A4b4B8A4A4b4b4A4A4b4A4o3
    assert sections[:3] == [("i", 4), ("A", 4), ("B", 8)] and sections[-1] == ("o", 3)
    assert sum(n for _, n in sections) == 71
    assert readers.read_melody(d / "melody.txt")[:3].tolist() == [[0, 60], [61, 1], [63, 1]]
    sp = readers.read_startpos(shared_data / "structurePE" / "startpos.csv")
    assert len(sp) == 866 and sp[1] == 8 and min(sp.values()) == -16 and max(sp.values()) == 556
    split = readers.read_split(shared_data / "structurePE" / "split.npz")
    assert {k: len(v) for k, v in split.items()} == {"train": 692, "val": 86, "test": 88}
    assert set(np.concatenate(list(split.values())).tolist()) == set(sp)
    db = readers.read_chord_db(shared_data / "structurePE" / "chord_db.npz")
    assert db.shape == (395, 13) and not db[8].any()


def test_midi_notes(shared_data: Path) -> None:
    notes = readers.read_midi_notes(shared_data / "POP909" / "001" / "001.mid")
    assert len(notes) == 3
    t, e, p = notes[0]
    # 480 ticks per quarter -> 16: the first melody note is at 9160 / 30 = 305.33 -> 305
    assert t[0] == 305 and p[0] == 61 and (e >= t).all()
