"""Frame- and note-level precision / recall / F1 on binary pianorolls (T, P), mir_eval-style conventions.

Frame level: every active (tick, pitch) cell is an item; a cell is a true positive when both rolls have it.
Note level (onsets): notes are maximal runs of active ticks per pitch; a predicted note matches a target
note of the same pitch when their onsets differ by at most ``onset_tolerance`` ticks (offsets ignored,
like ``mir_eval.transcription`` with ``offset_ratio=None``). Matching is one-to-one, either a maximum
bipartite matching (default, as mir_eval) or greedy by increasing onset distance.

Empty sets: precision is 1 when nothing is predicted and nothing is expected, 0 when nothing is predicted
but something is expected; recall likewise; F1 is 0 when precision + recall is 0.
"""

from __future__ import annotations

import numpy as np

from stripes.errors import DataError
from stripes.metrics._common import check_pair, onsets


def prf(n_match: int, n_pred: int, n_ref: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts (see the module docstring for the empty-set convention)."""
    precision = n_match / n_pred if n_pred else (1.0 if n_ref == 0 else 0.0)
    recall = n_match / n_ref if n_ref else (1.0 if n_pred == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(precision), float(recall), float(f1)


def frame_prf(pred: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """Cell-wise precision, recall, F1 of two binary rolls (T, P)."""
    p, t = check_pair(pred, target, n_pitches=None)
    tp = int(np.count_nonzero(p & t))
    return prf(tp, int(np.count_nonzero(p)), int(np.count_nonzero(t)))


def extract_notes(roll: np.ndarray) -> np.ndarray:
    """Notes of a binary roll (T, P) as an (N, 3) int array of (pitch, onset, offset), offset exclusive,
    sorted by pitch then onset."""
    x = np.asarray(roll, dtype=bool)
    on = onsets(x)
    nxt = np.zeros_like(x)
    nxt[:-1] = x[1:]
    off = x & ~nxt  # last active tick of each run
    on_t, on_p = np.nonzero(on)
    off_t, off_p = np.nonzero(off)
    # sort by (pitch, time); runs alternate on/off per pitch so the k-th onset pairs with the k-th offset
    o1 = np.lexsort((on_t, on_p))
    o2 = np.lexsort((off_t, off_p))
    return np.stack([on_p[o1], on_t[o1], off_t[o2] + 1], axis=1).astype(np.int64)


def _match_count(ref: np.ndarray, est: np.ndarray, tol: int, method: str) -> int:
    """Number of one-to-one matches between sorted onset times ref and est (same pitch), |diff| <= tol."""
    if len(ref) == 0 or len(est) == 0:
        return 0
    dist = np.abs(ref[:, None] - est[None, :])
    ok = dist <= tol
    if not ok.any():
        return 0
    if method == "bipartite":
        from scipy.sparse import csr_matrix  # scipy (toolkit) in functions: Harmonizer.loss imports metrics
        from scipy.sparse.csgraph import maximum_bipartite_matching

        match = maximum_bipartite_matching(csr_matrix(ok.astype(np.int8)), perm_type="column")
        return int(np.count_nonzero(match >= 0))
    if method == "greedy":
        ii, jj = np.nonzero(ok)
        order = np.lexsort((jj, ii, dist[ii, jj]))  # closest pairs first, ties by position
        used_r = np.zeros(len(ref), dtype=bool)
        used_e = np.zeros(len(est), dtype=bool)
        n = 0
        for k in order:
            i, j = ii[k], jj[k]
            if not used_r[i] and not used_e[j]:
                used_r[i] = used_e[j] = True
                n += 1
        return n
    if method == "assignment":  # maximum matching via a min-cost assignment (cross-check of "bipartite")
        from scipy.optimize import linear_sum_assignment

        cost = np.where(ok, 0.0, 1.0)
        r, c = linear_sum_assignment(cost)
        return int(np.count_nonzero(ok[r, c]))
    raise DataError(f"matching must be 'bipartite', 'greedy' or 'assignment', got {method!r}")


def _candidate_pairs(ref: np.ndarray, est: np.ndarray, tol: int, span: int) -> tuple[np.ndarray, np.ndarray]:
    """All (ref index, est index) pairs with the same pitch and |onset difference| <= tol.

    ref, est: (N, 3) notes sorted by (pitch, onset); span > max onset + tol separates pitches in one key.
    """
    rkey = ref[:, 0] * span + ref[:, 1]
    ekey = est[:, 0] * span + est[:, 1]
    lo = np.searchsorted(rkey, ekey - tol, side="left")
    hi = np.searchsorted(rkey, ekey + tol, side="right")
    counts = hi - lo
    est_idx = np.repeat(np.arange(len(est)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(lo, counts) + offsets, est_idx


def onset_prf(
    pred: np.ndarray, target: np.ndarray, *, onset_tolerance: int = 1, matching: str = "bipartite"
) -> tuple[float, float, float]:
    """Note-level precision, recall, F1 with onset tolerance in ticks (1 tick ~ 42 ms at 90 bpm, close to
    mir_eval's 50 ms) and one-to-one matching per pitch."""
    if onset_tolerance < 0:
        raise DataError(f"onset_tolerance must be >= 0 ticks, got {onset_tolerance}")
    if matching not in ("bipartite", "greedy", "assignment"):
        raise DataError(f"matching must be 'bipartite', 'greedy' or 'assignment', got {matching!r}")
    p, t = check_pair(pred, target, n_pitches=None)
    est, ref = extract_notes(p), extract_notes(t)
    if len(est) == 0 or len(ref) == 0:
        return prf(0, len(est), len(ref))
    if matching == "bipartite":  # one maximum matching over all pitches at once (block-diagonal graph)
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import maximum_bipartite_matching

        ri, ei = _candidate_pairs(ref, est, onset_tolerance, p.shape[0] + 2 * onset_tolerance + 1)
        graph = csr_matrix((np.ones(len(ri), dtype=np.int8), (ri, ei)), shape=(len(ref), len(est)))
        n = int(np.count_nonzero(maximum_bipartite_matching(graph, perm_type="column") >= 0))
        return prf(n, len(est), len(ref))
    n = 0
    for pitch in np.intersect1d(np.unique(est[:, 0]), np.unique(ref[:, 0])):
        n += _match_count(ref[ref[:, 0] == pitch, 1], est[est[:, 0] == pitch, 1], onset_tolerance, matching)
    return prf(n, len(est), len(ref))
