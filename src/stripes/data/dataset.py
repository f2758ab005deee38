"""`HarmonizationDataset`: windows of the prepared cache as (x, y, pos) for melody harmonization."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from stripes.data import contexts as ctx
from stripes.data.prepare import SONG_COLUMNS, SPLITS, prepare
from stripes.data.store import PreparedData
from stripes.data.variants import ContextVariants
from stripes.errors import ConfigError


class HarmonizationDataset(torch.utils.data.Dataset):
    """Melody harmonization windows of one split (P3 ``accompaniment_generation``).

    Item: ``x`` float32 (T, 256) melody + bridge, ``y`` float32 (T, 128) piano, ``pos`` float32 (T, C)
    stacked contexts, ``song_id`` int, ``start`` int (tick of the window in the aligned song). T = 64 *
    bars (the prepared windows hold one extra tick, dropped here as x = data[:-1]), or `max_len` if
    smaller. Prepares the cache on first use."""

    def __init__(self, split: str, context: str | Sequence[str], bars: int = 16, *,
                 data_root: str | os.PathLike[str] | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, max_len: int | None = None) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        try:
            self.contexts = ctx.resolve_contexts(context)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if bars <= 0:
            raise ConfigError(f"bars must be positive, got {bars}")
        if max_len is not None and max_len <= 0:
            raise ConfigError(f"max_len must be positive, got {max_len}")
        self.split = split
        self.bars = bars
        folder = prepare(data_root, cache_dir, bars=bars if split != "test" else 16,
                         test_bars=(bars,) if split == "test" else (64,), skip_bad=None)
        self.data = PreparedData(folder)
        self.windows = self.data.windows(split, bars)
        full = ctx.TICKS_PER_BAR * bars
        self.window_len = full if max_len is None else min(full, max_len)
        self.context_dim = ctx.context_dim(self.contexts)
        self.manifest_hash = self.data.hash
        self.variants = ContextVariants(self.data, self.contexts)  # degraded BIN contexts, if named

    def __len__(self) -> int:
        return len(self.windows)

    def _window(self, index: int) -> tuple[int, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range ({len(self)} windows)")
        row, start = self.windows[index]
        return int(row), int(start)

    def positions(self, index: int) -> np.ndarray:
        """(T, C) float32 stacked contexts of window `index`."""
        row, start = self._window(index)
        return self._positions(self._labels(row, start))

    def _labels(self, row: int, start: int) -> dict[str, np.ndarray]:
        labels = self.data.labels(row, start, self.window_len)
        if self.variants:
            labels.update(self.variants.labels(row, start, self.window_len))
        return labels

    def _positions(self, labels: dict[str, np.ndarray]) -> np.ndarray:
        cols = [labels[n].reshape(self.window_len, -1) for n in self.contexts]
        return np.concatenate(cols, axis=1).astype(np.float32)

    def labels(self, index: int) -> dict[str, np.ndarray]:
        """Every per-tick label of window `index` (chord, key, bin, rep, time, melody, phrase, bar,
        tempo_bucket, and the BIN variants among the contexts), each (T,) int64 or (T, 12) for bin."""
        row, start = self._window(index)
        return self._labels(row, start)

    def onset(self, index: int) -> np.ndarray:
        """(T, 384) uint8 onset roll of window `index`."""
        row, start = self._window(index)
        return self.data.unpack(self.data.onset[self.data.span(row, start, self.window_len)])

    def __getitem__(self, index: int) -> dict[str, Any]:
        row, start = self._window(index)
        sl = self.data.span(row, start, self.window_len)
        roll = self.data.unpack(self.data.roll[sl]).astype(np.float32)
        pos = self._positions(self._labels(row, start))
        return {
            "x": torch.from_numpy(np.ascontiguousarray(roll[:, :256])),
            "y": torch.from_numpy(np.ascontiguousarray(roll[:, 256:])),
            "pos": torch.from_numpy(pos),
            "song_id": int(self.data.songs[row, SONG_COLUMNS.index("song_id")]),
            "start": start,
        }

    def arrays(self) -> dict[str, Any]:
        """Whole-split access without per-item overhead (for analyses such as MI).

        ``starts``: (N,) int64 first tick of each window in the concatenated per-tick arrays;
        ``window_len``: T; ``roll``: (n_ticks, 48) uint8 packed pitch bits (np.unpackbits(axis=-1,
        count=384); rows 0..255 x, 256..383 y); ``chord``, ``key``, ``melody``, ``phrase``: (n_ticks,) ints
        (memory-mapped); ``chroma``: (n_chord_ids, 12) uint8 so that BIN = chroma[chord]; ``song_id``:
        (N,) song of each window. REP and TIME are per window: ``contexts.rep_labels(chord[s:s+T])`` and
        ``arange(T)``."""
        offsets = self.data.col("offset")[self.windows[:, 0]]
        return {
            "starts": offsets + self.windows[:, 1],
            "window_len": self.window_len,
            "roll": self.data.roll,
            "chord": self.data.chord,
            "key": self.data.key,
            "melody": self.data.melody,
            "phrase": self.data.section,
            "chroma": self.data.chroma,
            "song_id": self.data.col("song_id")[self.windows[:, 0]],
        }
