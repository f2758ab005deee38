"""Datasets for training/evaluation: POP909 via :mod:`stripes.data`, or a synthetic stand-in.

The synthetic source (``data.source = "synthetic"``) has the same item layout as
``stripes.data.HarmonizationDataset`` (x (T, 256), y (T, 128), pos (T, C), song_id, start) and a
learnable rule (piano = melody an octave and a fifth lower), so tests and benchmarks run without data.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from stripes.data.contexts import context_dim
from stripes.errors import DataError

TICKS_PER_BAR = 64
_SPLIT_SEED = {"train": 11, "val": 12, "test": 13}


class SyntheticHarmonization:
    """Random melodies with a deterministic accompaniment rule. Items as HarmonizationDataset."""

    def __init__(self, split: str, context: str | list[str], bars: int = 16, n_windows: int = 8) -> None:
        if split not in _SPLIT_SEED:
            raise DataError(f"unknown split {split!r}")
        self.contexts = [context] if isinstance(context, str) else list(context)
        self.context_dim = context_dim(self.contexts)
        self.window_len = bars * TICKS_PER_BAR
        self.manifest_hash = hashlib.sha1(f"synthetic:{split}:{bars}:{n_windows}".encode()).hexdigest()[:16]
        rng = np.random.default_rng(_SPLIT_SEED[split] * 1000 + bars)
        T = self.window_len
        self._items = []
        for i in range(n_windows):
            x = np.zeros((T, 256), np.float32)
            y = np.zeros((T, 128), np.float32)
            pitch = np.zeros(T, np.int64)
            t = 0
            while t < T:
                dur = int(rng.choice([4, 8, 16]))
                p = int(rng.integers(60, 84)) if rng.random() < 0.8 else 0
                pitch[t : t + dur] = p
                t += dur
            on = pitch > 0
            x[np.flatnonzero(on), pitch[on]] = 1.0
            y[np.flatnonzero(on), pitch[on] - 12] = 1.0
            y[np.flatnonzero(on), pitch[on] - 19] = 1.0
            cols = []
            for c in self.contexts:
                if c == "bin":
                    chroma = np.zeros((T, 12), np.float32)
                    chroma[np.flatnonzero(on), pitch[on] % 12] = 1.0
                    cols.append(chroma)
                elif c == "time":
                    cols.append(np.arange(T, dtype=np.float32)[:, None])
                else:
                    cols.append((pitch % 12).astype(np.float32)[:, None])
            pos = np.concatenate(cols, axis=1)
            self._items.append(
                {
                    "x": torch.from_numpy(x),
                    "y": torch.from_numpy(y),
                    "pos": torch.from_numpy(pos),
                    "song_id": i,
                    "start": 0,
                }
            )

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._items[i]


def make_dataset(config: Any, split: str, bars: int, data_root: Any = None, cache_dir: Any = None) -> Any:
    """The dataset of ``split`` for a run config (POP909 or synthetic); for ``task = "melody"`` the same
    windows with the piano as input and the melody as target (:class:`stripes.data.melody.MelodyDataset`)."""
    if config.data.source == "synthetic":
        ds: Any = SyntheticHarmonization(
            split, config.context, bars=bars, n_windows=config.data.synthetic_windows
        )
    else:
        from stripes.data import HarmonizationDataset

        ds = HarmonizationDataset(split, config.context, bars=bars, data_root=data_root, cache_dir=cache_dir)
    if getattr(config, "task", "harmonize") == "melody":
        from stripes.data.melody import MelodyDataset

        ds = MelodyDataset(ds)
    return ds


def spread_subset(n: int, limit: int | None) -> list[int]:
    """Up to ``limit`` indices spread evenly over range(n) (deterministic, covers many songs)."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, limit)})


def random_subset(n: int, limit: int | None, seed: int) -> list[int]:
    """Up to ``limit`` indices drawn without replacement with a fixed seed (sorted)."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, size=limit, replace=False).tolist())


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack items to x (B, T, 256), y (B, T, 128), pos (B, T, C) float32."""
    out = {
        k: torch.stack([torch.as_tensor(it[k], dtype=torch.float32) for it in items])
        for k in ("x", "y", "pos")
    }
    out["song_id"] = torch.tensor([int(it["song_id"]) for it in items])
    out["start"] = torch.tensor([int(it["start"]) for it in items])
    return out
