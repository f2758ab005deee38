"""Read access to a prepared cache folder (memory-mapped; no MIDI parsing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from stripes.data import contexts as ctx
from stripes.data.prepare import N_ROWS, PACKED, SONG_COLUMNS, SPLITS, write_windows
from stripes.errors import DataError


class PreparedData:
    """A prepared cache folder: per-tick arrays of all songs concatenated, plus window tables.

    ``roll`` / ``onset``: (n_ticks, 48) uint8 packed bits (unpack with `unpack`); ``chord`` / ``key``:
    (n_ticks,) int16 ids into ``chord_table`` ((N, 13)); ``melody`` / ``section``: (n_ticks,) uint8;
    ``songs``: (n_songs, 8) int64 with columns ``SONG_COLUMNS``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        mpath = self.folder / "manifest.json"
        if not mpath.is_file():
            raise DataError(f"{mpath}: prepared cache incomplete (no manifest)")
        self.manifest: dict[str, Any] = json.loads(mpath.read_text())
        n = int(self.manifest["n_ticks"])
        self.roll = np.memmap(self.folder / "roll.bin", dtype=np.uint8, mode="r", shape=(n, PACKED))
        self.onset = np.memmap(self.folder / "onset.bin", dtype=np.uint8, mode="r", shape=(n, PACKED))
        self.chord = np.load(self.folder / "chord.npy", mmap_mode="r")
        self.key = np.load(self.folder / "key.npy", mmap_mode="r")
        self.melody = np.load(self.folder / "melody.npy", mmap_mode="r")
        self.section = np.load(self.folder / "section.npy", mmap_mode="r")
        self.songs = np.load(self.folder / "songs.npy")
        self.chord_table = np.load(self.folder / "chord_table.npy")
        self.chroma = self.chord_table[:, 1:].astype(np.uint8)

    @property
    def hash(self) -> str:
        return str(self.manifest["key"])

    def col(self, name: str) -> np.ndarray:
        return self.songs[:, SONG_COLUMNS.index(name)]

    def song_row(self, song_id: int) -> int:
        rows = np.nonzero(self.col("song_id") == song_id)[0]
        if rows.size == 0:
            raise KeyError(f"song {song_id} not prepared")
        return int(rows[0])

    def windows(self, split: str, bars: int) -> np.ndarray:
        """(n, 2) int64 rows (song row, start tick) of a split at `bars` bars (built on demand)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        path = self.folder / f"windows_{split}_{bars}.npy"
        if path.is_file():
            return np.load(path)
        return write_windows(self.folder, self.songs, split, bars)

    def span(self, song_row: int, start: int, length: int) -> slice:
        """Slice of the concatenated arrays for ticks [start, start + length) of a song."""
        off = int(self.songs[song_row, SONG_COLUMNS.index("offset")])
        n = int(self.songs[song_row, SONG_COLUMNS.index("length")])
        if start < 0 or start + length > n:
            raise IndexError(f"ticks [{start}, {start + length}) outside song of {n} ticks")
        return slice(off + start, off + start + length)

    @staticmethod
    def unpack(packed: np.ndarray) -> np.ndarray:
        """(..., 48) packed uint8 -> (..., 384) uint8 binary roll."""
        return np.unpackbits(np.asarray(packed), axis=-1, count=N_ROWS)

    def labels(self, song_row: int, start: int, length: int) -> dict[str, np.ndarray]:
        """Every per-tick label of one window: chord, key, bin (T, 12), rep, time, melody, phrase, bar,
        tempo_bucket (T,), as int64 (bin uint8)."""
        sl = self.span(song_row, start, length)
        chord = np.asarray(self.chord[sl], dtype=np.int64)
        return {
            "chord": chord,
            "key": np.asarray(self.key[sl], dtype=np.int64),
            "bin": self.chroma[chord],
            "rep": ctx.rep_labels(chord),
            "time": np.arange(length, dtype=np.int64),
            "melody": np.asarray(self.melody[sl], dtype=np.int64),
            "phrase": np.asarray(self.section[sl], dtype=np.int64),
            "bar": np.arange(start, start + length, dtype=np.int64) // ctx.TICKS_PER_BAR,
            "tempo_bucket": np.full(length, self.songs[song_row, SONG_COLUMNS.index("tempo_bucket")]),
        }
