"""Threshold-free binary cross-entropy helpers (natural log) from probabilities and binary targets."""

from __future__ import annotations

import numpy as np

from stripes.errors import DataError

_EPS = 1e-7


def _cells(probs: np.ndarray, targets: np.ndarray, eps: float) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if p.shape != y.shape:
        raise DataError(f"probabilities shape {p.shape} != targets shape {y.shape}")
    if p.ndim not in (2, 3):
        raise DataError(f"expected (T, P) or (B, T, P) arrays, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min(initial=0.0) < 0 or p.max(initial=0.0) > 1:
        raise DataError("probabilities must be finite and in [0, 1]")
    p = np.clip(p, eps, 1.0 - eps)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


def bce_mean(probs: np.ndarray, targets: np.ndarray, eps: float = _EPS) -> float:
    """Mean BCE over every cell of (T, P) or (B, T, P) arrays (probabilities clipped to [eps, 1 - eps])."""
    return float(_cells(probs, targets, eps).mean())


def bce_per_position(probs: np.ndarray, targets: np.ndarray, eps: float = _EPS) -> np.ndarray:
    """Mean BCE per tick of the window, averaged over pitches (and windows): (T, P) or (B, T, P) -> (T,)."""
    c = _cells(probs, targets, eps)
    return c.mean(axis=-1) if c.ndim == 2 else c.mean(axis=(0, 2))
