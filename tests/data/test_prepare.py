"""The prepared cache: alignment, labels, windows, golden agreement, caching."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from stripes.data import contexts as ctx
from stripes.data import readers
from stripes.data.golden import compare, golden_songs
from stripes.data.prepare import prepare, process_song, window_geometry, window_starts
from stripes.data.store import PreparedData

from .conftest import SONGS


def test_window_geometry() -> None:
    assert window_geometry(8) == (513, 64)
    assert window_geometry(16) == (1025, 128)
    assert window_geometry(64) == (4097, 512)
    assert window_starts(1024, 16).size == 0
    assert window_starts(1025, 16).tolist() == [0]
    assert window_starts(1025 + 897, 16).tolist() == [0, 897]
    starts = window_starts(10_000, 8)
    assert (np.diff(starts) == 449).all() and starts[-1] + 513 <= 10_000 < starts[-1] + 449 + 513


def test_manifest_and_counts(prepared) -> None:
    folder, _ = prepared
    data = PreparedData(folder)
    m = data.manifest
    assert m["n_songs"] == len(SONGS) and m["skipped"] == []
    assert m["songs_per_split"] == {"train": 5, "val": 2, "test": 3}
    assert sorted(data.col("song_id").tolist()) == sorted(SONGS)
    lengths = data.col("length")
    assert m["n_ticks"] == int(lengths.sum())
    assert np.array_equal(data.col("offset"), np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    for split, code in (("train", 0), ("val", 1), ("test", 2)):
        rows = np.flatnonzero(data.col("split") == code)
        expected = sum(len(window_starts(int(lengths[r]), 16)) for r in rows)
        assert m["windows"][split]["16"] == expected == len(data.windows(split, 16))
    assert m["windows"]["test"]["64"] == len(data.windows("test", 64))
    assert set(m["inputs"]) == {"split.npz", "chord_db.npz", "startpos.csv"}


def test_every_label_as_long_as_the_roll(prepared) -> None:
    data = PreparedData(prepared[0])
    n = data.manifest["n_ticks"]
    for arr in (data.roll, data.onset, data.chord, data.key, data.melody, data.section):
        assert len(arr) == n
    for row in range(len(data.songs)):
        length = int(data.col("length")[row])
        lab = data.labels(row, 0, length)
        assert all(len(v) == length for v in lab.values())
        assert lab["bin"].shape == (length, 12)


def test_alignment_offsets(prepared, shared_data: Path) -> None:
    data = PreparedData(prepared[0])
    sp = readers.read_startpos(shared_data / "structurePE" / "startpos.csv")
    no_chord = 8
    for sid in SONGS:
        row = data.song_row(sid)
        s = sp[sid]
        assert data.col("start_pos")[row] == s
        sl = data.span(row, 0, int(data.col("length")[row]))
        roll = data.unpack(data.roll[sl])
        chord, mel, sec = data.chord[sl], data.melody[sl], data.section[sl]
        first_note = int(np.flatnonzero(roll.any(axis=1))[0])
        if s < 0:  # roll padded with -s silent ticks, labels start at tick 0
            assert first_note == -s
        else:  # roll starts at the first note; labels padded with s no-chord/rest/'x' ticks
            assert first_note == 0
            assert (chord[:s] == no_chord).all() and (mel[:s] == 0).all()
            assert (sec[:s] == ctx.SECTION_PAD).all()
        # the first annotated tick carries the first chord and section of the annotation files
        ann = max(s, 0)
        spans = readers.read_chords(shared_data / "POP909-structure" / f"{sid:03d}" / "finalized_chord.txt")
        first = data.chord_table[chord[ann]]
        assert first[0] == (0 if spans[0].root is None else spans[0].root + 1)
        assert np.flatnonzero(first[1:]).tolist() == list(spans[0].pitch_classes)
        labels = shared_data / "POP909-structure" / f"{sid:03d}" / "human_label1.txt"
        letter = readers.read_sections(labels)[0][0]
        assert sec[ann] == ctx.SECTION_INDEX[letter]


def test_key_label_is_transposed_chord(prepared, shared_data: Path) -> None:
    data = PreparedData(prepared[0])
    for sid in SONGS[:4]:
        row = data.song_row(sid)
        tonic, _ = readers.read_key(shared_data / "POP909-structure" / f"{sid:03d}" / "analyzed_key.txt")
        sl = data.span(row, 0, int(data.col("length")[row]))
        chords = data.chord_table[np.asarray(data.chord[sl])]
        keyed = data.chord_table[np.asarray(data.key[sl])]
        has = chords[:, 0] > 0
        assert np.array_equal(keyed[has, 0] - 1, (chords[has, 0] - 1 - tonic) % 12)
        assert np.array_equal(keyed[has, 1:], np.roll(chords[has, 1:], -tonic, axis=1))
        assert (keyed[~has] == 0).all()


def test_golden_windows_exact(prepared, shared_data: Path) -> None:
    golden = shared_data / "structurePE" / "golden_len_0.5"
    songs = [s for s in SONGS if s in golden_songs(golden)]
    assert len(songs) == len(SONGS)
    stats = compare(PreparedData(prepared[0]), golden, songs)
    for field, (equal, total) in stats.items():
        assert total > 0, field
        assert equal == total, f"{field}: {equal}/{total}"


def test_second_prepare_recomputes_nothing(prepared, shared_data: Path) -> None:
    folder, cache = prepared
    stamp = (folder / "roll.bin").stat().st_mtime_ns
    t0 = time.perf_counter()
    again = prepare(shared_data, cache, songs=SONGS, workers=1)
    assert again == folder and (folder / "roll.bin").stat().st_mtime_ns == stamp
    assert time.perf_counter() - t0 < 5
    other = prepare(shared_data, cache, songs=SONGS[:2], workers=1)  # other inputs -> other key
    assert other != folder and json.loads((other / "manifest.json").read_text())["n_songs"] == 2


def test_process_song_matches_cache(prepared, shared_data: Path) -> None:
    data = PreparedData(prepared[0])
    sid = 371
    row = data.song_row(sid)
    res = process_song(shared_data, sid, -16)
    sl = data.span(row, 0, int(data.col("length")[row]))
    assert np.array_equal(res["roll"], data.roll[sl])
    assert np.array_equal(res["melody"], data.melody[sl])


def test_unknown_song_rejected(shared_data: Path, tmp_path: Path) -> None:
    from stripes.errors import DataError

    with pytest.raises(DataError, match="not in"):
        prepare(shared_data, tmp_path, songs=[34])  # a 3/4 song left out of the split


def _prepare_after(barrier, root, cache, out) -> None:
    real_replace = os.replace

    def slow_replace(src, dst):  # widen the race window: the other process finishes its build meanwhile
        time.sleep(0.2)
        real_replace(src, dst)

    os.replace = slow_replace  # this forked child only
    barrier.wait(10)
    try:
        out.put(str(prepare(root, cache, songs=[1, 225, 55])))
    except BaseException as e:  # report the error to the parent instead of a bare exit code
        out.put(f"ERROR {type(e).__name__}: {e}")


@pytest.mark.skipif(os.name == "nt", reason="fork start method")
def test_two_processes_prepare_the_same_cache_at_once(shared_data: Path, tmp_path: Path) -> None:
    """``reproduce --jobs 2`` on a fresh machine: both workers prepare the cache at the same moment; before
    the lock the second one's os.replace failed with 'Directory not empty' and its run was lost."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    args = (barrier, shared_data, tmp_path / "c", out)
    procs = [ctx.Process(target=_prepare_after, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(30)
    assert not [r for r in results if r.startswith("ERROR")], results
    assert results[0] == results[1]
    folder = Path(results[0])
    assert json.loads((folder / "manifest.json").read_text())["n_songs"] == 3
    assert [p.name for p in folder.parent.iterdir() if p.is_dir()] == [folder.name]  # no temporaries left
