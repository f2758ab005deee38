"""The four structure metrics of P1/P2 (docs/papers.md §10) and the official structurePE (P3) code variants.

All functions take binary pianorolls shaped (T, P) (time-major; 16 ticks per quarter, P = 128 for the
piano track) and return one float for one window. Scores of several windows are averaged by the caller.

Paper definitions (reported by default):
    cs    : chroma similarity of half-measure onset chroma vectors, 0..100, higher is better.
    ssmd  : distance of half-measure onset-chroma self-similarity matrices, scale 50 (P1) or 100 (P2).
    gs    : quarter-note grooving-pattern agreement (1 - XOR), 0..100, higher is better.
    ndd   : mean per-16th percentage of missing pitches, 0..100, lower is better.
Official-code variants (structurePE ``exp/pop909/metrics.py``), kept under their own names:
    p3_ssmd   : frame (not onset) chroma counts per 2 ticks, x100.
    p3_groove : 20-bin histogram overlap of L2-normalised per-16th onset counts.
    p3_nd     : mean absolute difference of per-16th frame counts.
"""

from __future__ import annotations

import numpy as np

from stripes.errors import DataError
from stripes.metrics._common import (
    HALF_MEASURE,
    QUARTER,
    SIXTEENTH,
    check_pair,
    chroma,
    cosine_matrix,
    cosine_rows,
    onsets,
    pool_time,
)


def half_measure_chroma(roll: np.ndarray, unit: int = HALF_MEASURE) -> np.ndarray:
    """Onset chroma counts per unit: c_u[k] = sum_{t in u} sum_{p mod 12 = k} O[t, p]; (T, P) -> (U, 12)."""
    return chroma(pool_time(onsets(roll), unit))


def chroma_similarity(pred: np.ndarray, target: np.ndarray, *, skip_empty: bool = False) -> float:
    """CS = 100 * mean_u cos(c^pred_u, c^tgt_u) over half-measures (docs/papers.md §10.1; same as P3 code).

    A unit where either vector is zero scores 0 (eps 1e-6, as in the official code), so identical rolls
    with silent half-measures score below 100. ``skip_empty=True`` leaves out units where both are
    empty (100 if all are).
    """
    p, t = check_pair(pred, target, n_pitches=None)
    cp, ct = half_measure_chroma(p), half_measure_chroma(t)
    cos = cosine_rows(cp, ct)
    if skip_empty:
        keep = (cp.sum(axis=1) > 0) | (ct.sum(axis=1) > 0)
        if not keep.any():
            return 100.0
        cos = cos[keep]
    return float(100.0 * cos.mean())


def ssm(roll: np.ndarray, unit: int = HALF_MEASURE, use_onsets: bool = True) -> np.ndarray:
    """Self-similarity matrix of per-unit chroma vectors (onsets or frames): (T, P) -> (U, U)."""
    x = onsets(roll) if use_onsets else np.asarray(roll, dtype=bool)
    return cosine_matrix(chroma(pool_time(x, unit)))


def ssm_distance(pred: np.ndarray, target: np.ndarray, *, scale: float = 50.0) -> float:
    """SSMD = scale * mean_{u,v} |SSM^tgt - SSM^pred| on half-measure onset chroma (docs/papers.md §10.2).

    scale 50 maps the [0, 2] entry range to [0, 100] (P1); P2 used 100.
    """
    p, t = check_pair(pred, target, n_pitches=None)
    return float(scale * np.mean(np.abs(ssm(t) - ssm(p))))


def grooving_pattern(roll: np.ndarray) -> np.ndarray:
    """g_j = 1 if any onset falls in quarter note j (ticks 16j..16j+15); (T, P) -> (ceil(T/16),) bool."""
    return pool_time(onsets(roll).any(axis=1), QUARTER) > 0


def grooving_similarity(pred: np.ndarray, target: np.ndarray) -> float:
    """GS = 100 * mean_j [1 - XOR(g^pred_j, g^tgt_j)] (docs/papers.md §10.3, Jazz Transformer GS)."""
    p, t = check_pair(pred, target, n_pitches=None)
    return float(100.0 * np.mean(grooving_pattern(p) == grooving_pattern(t)))


def note_density(roll: np.ndarray, count: str = "frames") -> np.ndarray:
    """Pitches per 16th note: n_s = sum_{t in s} sum_p X[t, p] (active cells, or onsets); -> (ceil(T/4),)."""
    if count == "frames":
        x = np.asarray(roll, dtype=bool)
    elif count == "onsets":
        x = onsets(roll)
    else:
        raise DataError(f"note density count must be 'frames' or 'onsets', got {count!r}")
    return pool_time(x.sum(axis=1), SIXTEENTH)


def note_density_distance(pred: np.ndarray, target: np.ndarray, *, count: str = "frames") -> float:
    """NDD = 100 * mean_{s: n^tgt_s > 0} clip((n^tgt_s - n^pred_s) / n^tgt_s, 0, 1) (docs/papers.md §10.4).

    The average percentage of missing pitches per 16th note; over-prediction is not punished.
    An empty target has nothing to miss and gives 0.
    """
    p, t = check_pair(pred, target, n_pitches=None)
    npred, ntgt = note_density(p, count), note_density(t, count)
    mask = ntgt > 0
    if not mask.any():
        return 0.0
    missing = np.clip((ntgt[mask] - npred[mask]) / ntgt[mask], 0.0, 1.0)
    return float(100.0 * missing.mean())


def note_density_distance_ratio(pred: np.ndarray, target: np.ndarray, *, count: str = "frames") -> float:
    """Ratio-of-sums NDD variant: 100 * sum_s max(n^tgt_s - n^pred_s, 0) / sum_s n^tgt_s.

    An open point of the papers (docs/papers.md §12.11)."""
    p, t = check_pair(pred, target, n_pitches=None)
    npred, ntgt = note_density(p, count), note_density(t, count)
    total = ntgt.sum()
    if total == 0:
        return 0.0
    return float(100.0 * np.maximum(ntgt - npred, 0.0).sum() / total)


# ---- official structurePE (P3) code variants --------------------------------------------------------


def p3_ssm_distance(pred: np.ndarray, target: np.ndarray) -> float:
    """P3 code SSMD: frame chroma counts per 2 ticks ("half beat" in the code), cos SSM, 100 * mean |diff|."""
    p, t = check_pair(pred, target, n_pitches=None)
    return float(100.0 * np.mean(np.abs(ssm(p, unit=2, use_onsets=False) - ssm(t, unit=2, use_onsets=False))))


def p3_grooving(pred: np.ndarray, target: np.ndarray, bins: int = 20) -> float:
    """P3 code ``onset_metric``: per-16th onset counts, L2-normalised over time, mean of the bin-wise minimum
    of two ``bins``-bin histograms (counts) over the joint [min, max] range. Its scale grows with T.
    """
    p, t = check_pair(pred, target, n_pitches=None)

    def normalised(x: np.ndarray) -> np.ndarray:
        g = pool_time(onsets(x).sum(axis=1), SIXTEENTH)
        return g / max(float(np.linalg.norm(g)), 1e-12)

    gp, gt = normalised(p), normalised(t)
    lo = min(gp.min(), gt.min())
    hi = max(gp.max(), gt.max())
    hp, _ = np.histogram(gp, bins=bins, range=(lo, hi))
    ht, _ = np.histogram(gt, bins=bins, range=(lo, hi))
    return float(np.mean(np.minimum(hp, ht)))


def p3_note_density(pred: np.ndarray, target: np.ndarray) -> float:
    """P3 code ``get_nd``: mean_s |n^pred_s - n^tgt_s| of per-16th frame counts (raw counts)."""
    p, t = check_pair(pred, target, n_pitches=None)
    return float(np.mean(np.abs(note_density(p) - note_density(t))))
