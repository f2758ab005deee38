"""Input checks and small shared primitives for the metrics (numpy, time-major rolls)."""

from __future__ import annotations

import numpy as np

from stripes.errors import DataError

TICKS_PER_QUARTER = 16
HALF_MEASURE = 32  # 2 beats in 4/4 at 16 ticks per quarter
SIXTEENTH = 4
QUARTER = 16


def as_roll(x: np.ndarray, name: str = "roll", *, n_pitches: int | None = 128) -> np.ndarray:
    """Validate a binary pianoroll (T, P) and return it as a bool array.

    Accepts bool, integer or float arrays whose values are 0/1 (any non-zero value counts as active
    for integer arrays; float arrays must hold only 0.0 and 1.0, so probabilities are rejected).
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a (T, {n_pitches or 'P'}) pianoroll, got shape {arr.shape}")
    if n_pitches is not None and arr.shape[1] != n_pitches:
        raise DataError(f"{name}: expected {n_pitches} pitch columns (time-major), got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all((arr == 0) | (arr == 1)):
            raise DataError(f"{name}: float pianoroll must be binary (0/1); binarize probabilities first")
        return arr.astype(bool)
    if np.issubdtype(arr.dtype, np.integer):
        return arr != 0
    raise DataError(f"{name}: unsupported dtype {arr.dtype}")


def check_pair(
    pred: np.ndarray, target: np.ndarray, n_pitches: int | None = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (prediction, target) pair of binary rolls with the same shape."""
    p = as_roll(pred, "prediction", n_pitches=n_pitches)
    t = as_roll(target, "target", n_pitches=n_pitches)
    if p.shape != t.shape:
        raise DataError(f"prediction shape {p.shape} != target shape {t.shape}")
    if p.shape[0] == 0:
        raise DataError("empty pianoroll (T = 0)")
    return p, t


def onsets(roll: np.ndarray) -> np.ndarray:
    """Onset roll O[t, p] = max(X[t, p] - X[t-1, p], 0) with X[-1] = 0; (T, P) bool -> (T, P) bool."""
    x = np.asarray(roll, dtype=bool)
    prev = np.zeros_like(x)
    prev[1:] = x[:-1]
    return x & ~prev


def pool_time(values: np.ndarray, unit: int) -> np.ndarray:
    """Sum a (T, ...) array over consecutive blocks of ``unit`` ticks; a partial last block is zero-padded.

    Returns (ceil(T / unit), ...).
    """
    t = values.shape[0]
    n = -(-t // unit)
    pad = n * unit - t
    v = values.astype(np.float64, copy=False)
    if pad:
        v = np.concatenate([v, np.zeros((pad,) + v.shape[1:], dtype=np.float64)], axis=0)
    return v.reshape((n, unit) + v.shape[1:]).sum(axis=1)


def chroma(counts: np.ndarray) -> np.ndarray:
    """Fold pitch columns to 12 pitch classes (column p goes to p mod 12): (N, P) -> (N, 12)."""
    n, p = counts.shape
    pad = (-p) % 12
    c = np.concatenate([counts, np.zeros((n, pad), dtype=counts.dtype)], axis=1) if pad else counts
    return c.reshape(n, -1, 12).sum(axis=1)


def cosine_rows(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Row-wise cosine a_i . b_i / max(|a_i| |b_i|, eps) (torch CosineSimilarity): zero rows give 0."""
    num = np.sum(a * b, axis=-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return num / np.maximum(den, eps)


def cosine_matrix(a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Pairwise cosine similarity of the rows of a (N, K) -> (N, N); a zero row has similarity 0 with all."""
    norms = np.linalg.norm(a, axis=-1)
    return (a @ a.T) / np.maximum(np.outer(norms, norms), eps)
