"""Degraded BIN contexts of a prepared cache, per window: ``bin_corrupt<r>`` and ``bin_shift<k>``
(names and the per-span rules in :mod:`stripes.data.contexts`).

Both act on a whole song, so that overlapping windows, the 16- and 64-bar test windows and the
train / validation / test splits all see one degraded song:

- ``bin_corrupt<r>``: the song's chord spans (maximal runs of one chord label on the aligned tick grid,
  no-chord runs included) are corrupted by :func:`stripes.data.contexts.corrupt_span_masks` with the
  generator :func:`stripes.data.contexts.corruption_rng` of (``CORRUPTION_SEED``, song id). Replacement
  chords are drawn from the chord vocabulary of the training songs: every chroma that labels a span there
  (no chord excluded), in proportion to its number of spans, so the corrupted context keeps BIN's
  distribution of chords and loses only their relation to the music.
- ``bin_shift<k>``: the chroma at tick t is BIN's at tick t - 16k of the same song (no chord before the
  song's first tick or after its last).

The model is trained, validated and tested with the same variant (it is just its context).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stripes.data import contexts as ctx
from stripes.data.prepare import SONG_COLUMNS, SPLITS

CORRUPTION_SEED = 0  # one corruption per (song, rate); the runs' own seeds vary the model, not the context
_VOCAB: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def _col(data: Any, name: str) -> np.ndarray:
    return np.asarray(data.songs)[:, SONG_COLUMNS.index(name)]


def chord_vocabulary(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """(masks (K,) int64 sorted, span counts (K,) int64): the chromas labelling the chord spans of the
    training songs of a prepared cache (``stripes.data.PreparedData``), no chord excluded. Cached per
    cache folder."""
    key = (str(getattr(data, "folder", id(data))), str(getattr(data, "hash", "")))
    if key in _VOCAB:
        return _VOCAB[key]
    id_masks = ctx.chroma_masks(data.chroma)
    counts: dict[int, int] = {}
    train = SPLITS.index("train")
    for off, n, split in zip(_col(data, "offset"), _col(data, "length"), _col(data, "split"), strict=True):
        if int(split) != train:
            continue
        ids = np.asarray(data.chord[int(off) : int(off) + int(n)], dtype=np.int64)
        m = id_masks[ids[ctx.span_starts(ids)]]
        vals, cnt = np.unique(m[m != 0], return_counts=True)
        for v, c in zip(vals.tolist(), cnt.tolist(), strict=True):
            counts[v] = counts.get(v, 0) + c
    if not counts:
        raise ValueError("the training songs have no chord spans to draw replacement chords from")
    masks = np.array(sorted(counts), dtype=np.int64)
    out = (masks, np.array([counts[m] for m in masks.tolist()], dtype=np.int64))
    _VOCAB[key] = out
    return out


class ContextVariants:
    """The BIN variants among ``names`` for windows of ``data`` (a ``PreparedData``); other names are
    ignored. ``labels(row, start, length)`` -> {variant name: (length, 12) uint8 chroma}."""

    def __init__(self, data: Any, names: Sequence[str]) -> None:
        self.data = data
        self.variants = {n: v for n in names if (v := ctx.parse_variant(n)) is not None}
        self._id_masks = ctx.chroma_masks(data.chroma) if self.variants else None
        self._songs: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def __bool__(self) -> bool:
        return bool(self.variants)

    def _song(self, row: int) -> tuple[int, int, int]:
        return (int(_col(self.data, "song_id")[row]), int(_col(self.data, "offset")[row]),
                int(_col(self.data, "length")[row]))

    def _song_ids(self, row: int) -> np.ndarray:
        _, off, n = self._song(row)
        return np.asarray(self.data.chord[off : off + n], dtype=np.int64)

    def corrupted_spans(self, name: str, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(span starts, corrupted span masks) of song ``row`` for the ``bin_corrupt`` variant ``name``."""
        key = (name, row)
        if key not in self._songs:
            _, rate = self.variants[name]
            ids = self._song_ids(row)
            starts = ctx.span_starts(ids)
            assert self._id_masks is not None
            vocab, weights = chord_vocabulary(self.data)
            rng = ctx.corruption_rng(CORRUPTION_SEED, self._song(row)[0])
            self._songs[key] = (starts, ctx.corrupt_span_masks(self._id_masks[ids[starts]], rate, vocab,
                                                               weights, rng))
        return self._songs[key]

    def window(self, name: str, row: int, start: int, length: int) -> np.ndarray:
        """(length, 12) uint8 chroma of variant ``name`` for ticks [start, start + length) of song ``row``."""
        kind, value = self.variants[name]
        assert self._id_masks is not None
        _, off, n = self._song(row)
        if start < 0 or start + length > n:
            raise IndexError(f"ticks [{start}, {start + length}) outside song of {n} ticks")
        ticks = np.arange(start, start + length, dtype=np.int64)
        if kind == "corrupt":
            starts, masks = self.corrupted_spans(name, row)
            return ctx.mask_chroma(masks[np.searchsorted(starts, ticks, side="right") - 1])
        src = ctx.shift_ticks(ticks, int(value))
        inside = (src >= 0) & (src < n)
        ids = np.asarray(self.data.chord[off : off + n], dtype=np.int64)
        m = np.where(inside, self._id_masks[ids[np.clip(src, 0, n - 1)]], 0)
        return ctx.mask_chroma(m)

    def labels(self, row: int, start: int, length: int) -> dict[str, np.ndarray]:
        """{variant name: (length, 12) uint8} for one window (empty without variants)."""
        return {name: self.window(name, row, start, length) for name in self.variants}
