"""Compare prepared windows with the official structurePE 8-bar windows (``golden_len_0.5``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from stripes.data.prepare import window_starts
from stripes.data.store import PreparedData

GOLDEN_BARS = 8
FIELDS = ("pianoroll", "onset", "chord_ids", "melody", "annotation_1", "measure_order", "note_order",
          "tempo_bucket", "n_windows")


def golden_songs(golden_dir: Path) -> list[int]:
    """Song ids present in a golden folder (``NNN_k_sample.npz``)."""
    pat = re.compile(r"^(\d+)_\d+_sample\.npz$")
    return sorted({int(m.group(1)) for p in golden_dir.iterdir() if (m := pat.match(p.name))})


def compare(data: PreparedData, golden_dir: Path, songs: list[int] | None = None) -> dict[str, list[int]]:
    """{field: [n_equal_cells, n_cells]} over all golden windows of `songs` (default: all golden songs)."""
    stats = {f: [0, 0] for f in FIELDS}

    def add(field: str, ours: np.ndarray, theirs: np.ndarray) -> None:
        ours, theirs = np.asarray(ours), np.asarray(theirs)
        if ours.shape != theirs.shape:
            stats[field][1] += theirs.size
            return
        stats[field][0] += int((ours == theirs).sum())
        stats[field][1] += theirs.size

    length = 64 * GOLDEN_BARS + 1
    for sid in songs if songs is not None else golden_songs(golden_dir):
        row = data.song_row(sid)
        n = int(data.col("length")[row])
        starts = window_starts(n, GOLDEN_BARS)
        files = sorted(golden_dir.glob(f"{sid:03d}_*_sample.npz"), key=lambda p: int(p.name.split("_")[1]))
        add("n_windows", np.array([len(starts)]), np.array([len(files)]))
        for k in range(min(len(files), len(starts))):
            start = int(starts[k])
            sl = data.span(row, start, length)
            with np.load(golden_dir / f"{sid:03d}_{k}_sample.npz") as z:
                add("pianoroll", data.unpack(data.roll[sl]).T, z["data"])
            lab = data.labels(row, start, length)
            with np.load(golden_dir / f"{sid:03d}_{k}_struct_num.npz") as z:
                add("onset", data.unpack(data.onset[sl]).T, z["onset"])
                add("chord_ids", lab["chord"][None], z["chord_ids"])
                add("melody", lab["melody"][None], z["melody"])
                add("annotation_1", lab["phrase"][None], z["annotation_1"])
                add("measure_order", lab["bar"][None], z["measure_order"])
                add("note_order", (np.arange(start, start + length) % 16)[None], z["note_order"])
                add("tempo_bucket", lab["tempo_bucket"][:1], np.atleast_1d(z["tempo_bucket"]))
    return stats
