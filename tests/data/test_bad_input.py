"""Bad input: a clear DataError naming the file (and line), or a recorded skip; never half an output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stripes.data.prepare import prepare
from stripes.errors import DataError

from .conftest import make_root

SPLIT = {"train": [1, 44], "val": [507], "test": [55]}


def leftovers(cache: Path) -> list[str]:
    """What a failed prepare left in the cache, but the (empty) inter-process lock file of its key."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) if cache.exists() else []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data folder not found"):
        prepare(tmp_path / "nowhere", tmp_path / "cache")
    (tmp_path / "root" / "POP909").mkdir(parents=True)
    with pytest.raises(DataError, match="POP909-structure"):
        prepare(tmp_path / "root", tmp_path / "cache")


def test_missing_song_folder(shared_data: Path, tmp_path: Path) -> None:
    root = make_root(shared_data, tmp_path / "root", SPLIT)
    (root / "POP909-structure" / "044").unlink()
    with pytest.raises(DataError, match=r"044/finalized_chord\.txt: file not found"):
        prepare(root, tmp_path / "cache", workers=1)
    assert leftovers(tmp_path / "cache") == []


def test_malformed_annotation_line(shared_data: Path, tmp_path: Path) -> None:
    root = make_root(shared_data, tmp_path / "root", SPLIT, copy=(44,))
    f = root / "POP909-structure" / "044" / "melody.txt"
    lines = f.read_text().splitlines()
    lines[4] = "61 one"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"044/melody\.txt:5: malformed melody line"):
        prepare(root, tmp_path / "cache", workers=1)
    assert leftovers(tmp_path / "cache") == []


def test_missing_annotation_line(shared_data: Path, tmp_path: Path) -> None:
    root = make_root(shared_data, tmp_path / "root", SPLIT, copy=(1,))
    (root / "POP909-structure" / "001" / "human_label1.txt").write_text("\n")
    with pytest.raises(DataError, match=r"001/human_label1\.txt:1: empty"):
        prepare(root, tmp_path / "cache", workers=1)


def test_truncated_midi_and_skip_bad(shared_data: Path, tmp_path: Path) -> None:
    root = make_root(shared_data, tmp_path / "root", SPLIT, copy=(507,))
    mid = root / "POP909" / "507" / "507.mid"
    mid.write_bytes(mid.read_bytes()[:300])
    with pytest.raises(DataError, match=r"507\.mid: cannot parse MIDI"):
        prepare(root, tmp_path / "cache", workers=1)
    assert leftovers(tmp_path / "cache") == []
    folder = prepare(root, tmp_path / "cache", workers=1, skip_bad=True)
    m = json.loads((folder / "manifest.json").read_text())
    assert m["n_songs"] == 3 and m["songs_per_split"]["val"] == 0
    assert [s["song_id"] for s in m["skipped"]] == [507] and "507.mid" in m["skipped"][0]["reason"]
    assert m["windows"]["val"]["16"] == 0
    # without --skip-bad the same inputs are not silently accepted
    with pytest.raises(DataError, match="507"):
        prepare(root, tmp_path / "cache", workers=1, skip_bad=False)


def test_song_missing_a_track(shared_data: Path, tmp_path: Path) -> None:
    import symusic

    root = make_root(shared_data, tmp_path / "root", SPLIT, copy=(55,))
    mid = root / "POP909" / "055" / "055.mid"
    score = symusic.Score(str(mid))
    score.tracks = [t for t in score.tracks if t.name.upper() != "BRIDGE"]
    score.dump_midi(str(mid))
    with pytest.raises(DataError, match=r"055\.mid: missing or empty track\(s\) BRIDGE"):
        prepare(root, tmp_path / "cache", workers=1)
    folder = prepare(root, tmp_path / "cache", workers=1, skip_bad=True)
    assert "BRIDGE" in json.loads((folder / "manifest.json").read_text())["skipped"][0]["reason"]


def test_bad_meta_files(shared_data: Path, tmp_path: Path) -> None:
    root = make_root(shared_data, tmp_path / "root", SPLIT)
    (root / "structurePE" / "startpos.csv").unlink()
    (root / "structurePE" / "startpos.csv").write_text("ID,Position,Beats\n1,8,0.5\n44,zero,0\n")
    with pytest.raises(DataError, match=r"startpos\.csv:3: malformed row"):
        prepare(root, tmp_path / "cache", workers=1)
