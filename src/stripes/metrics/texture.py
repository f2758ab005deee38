"""Texture of an accompaniment against the human piano: Yang & Lerch (2020) feature distributions.

Rolls are binary, time-major ``(T, 128)``, 16 ticks per quarter (64 per 4/4 bar), a frame roll with its
onset roll beside it. Definitions, the distance/KDE recipe and its fallbacks are in docs/metrics.md
("Texture against the human piano"); in short:

- :func:`notes_from_rolls`: a note starts at an onset (or where a frame run starts without one) and lasts
  while the frame stays on and no new onset of that pitch comes; an onset on a silent tick is ignored.
- :func:`window_features`: per window, the ten features of :data:`FEATURES`.
- :func:`compare_sets`: per feature, the reference intra-set distances and the generated-vs-reference
  inter-set distances (Euclidean, between per-window feature vectors), a Gaussian KDE of each, and the
  overlapping area (OA) and KL(intra || inter) of the two PDFs on one common grid.
- :func:`texture_table`: systems on the same windows as the human piano; the reference is a song-disjoint
  half of the windows, every system (and the human piano, the ceiling) is compared on the other half.

scipy (the toolkit extra) is imported inside the functions: ``stripes.metrics`` stays importable with
numpy alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stripes.errors import DataError
from stripes.metrics._common import as_roll

TICKS_PER_QUARTER = 16
TICKS_PER_BAR = 64
FEATURES = (
    "note_count",  # notes per bar
    "pitch_count",  # distinct pitches in the window
    "pitch_range",  # highest - lowest pitch (semitones)
    "polyphony",  # mean sounding notes over ticks where something sounds
    "ioi",  # mean inter-onset interval between distinct onset times (quarters)
    "note_length_hist",  # 7-bin note-length distribution, see LENGTH_BINS
    "pitch_class_hist",  # 12-bin pitch-class distribution of the notes
    "pctm",  # 12 x 12 pitch-class transition matrix between consecutive onset times, sums to 1
    "onset_times",  # distinct onset ticks per bar
    "note_length",  # mean note length (quarters)
)
LENGTH_BINS = ("1/16", "1/8", "1/4", "1/2", "1", "2", "4+")  # bin centres in quarters, log2-nearest
N_GRID = 2048  # evaluation grid of the PDFs
MAX_PAIRS = 20000  # distances per set above this are subsampled (seeded)
FALLBACK_STD = 0.01  # std of the narrow Gaussian that stands in for a KDE of constant samples (x span)

Window = tuple[np.ndarray, np.ndarray]  # (frame (T, 128), onset (T, 128))
Notes = Sequence[tuple[int, int, int]] | np.ndarray  # (start, end, pitch) rows


def notes_from_rolls(frame: np.ndarray, onset: np.ndarray) -> list[tuple[int, int, int]]:
    """Frame and onset rolls (T, 128) -> notes ``(start, end, pitch)``, end exclusive, sorted by start then
    pitch. A repeated note (a new onset inside a run) is a separate note; a held note is one note."""
    f = as_roll(frame, "frame")
    o = as_roll(onset, "onset")
    if f.shape != o.shape:
        raise DataError(f"frame shape {f.shape} != onset shape {o.shape}")
    prev = np.zeros_like(f)
    prev[1:] = f[:-1]
    start = f & (o | ~prev)  # onsets on silent ticks are not notes
    stop = ~f | start  # a note ends at the first later tick that is silent or starts a new note
    T = f.shape[0]
    out = []
    for p in np.nonzero(f.any(0))[0]:
        s = np.nonzero(start[:, p])[0]
        ends = np.append(np.nonzero(stop[:, p])[0], T)
        e = ends[np.searchsorted(ends, s, side="right")]
        out += [(int(a), int(b), int(p)) for a, b in zip(s, e)]
    out.sort()
    return out


def _note_array(notes: Notes) -> np.ndarray:
    arr = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    if len(arr) and (np.any(arr[:, 1] <= arr[:, 0]) or np.any((arr[:, 2] < 0) | (arr[:, 2] > 127))):
        raise DataError("notes must be (start, end, pitch) with end > start and 0 <= pitch <= 127")
    return arr


def window_features(notes: Notes, n_ticks: int) -> dict[str, np.ndarray]:
    """The :data:`FEATURES` of one window of ``n_ticks`` ticks, each a 1-d float64 vector (scalars have
    length 1, the histograms 7 and 12, the transition matrix 144). A window without notes has every
    feature 0 (zero vectors for the distributions); fewer than two onset times give ioi 0."""
    if n_ticks <= 0:
        raise DataError(f"n_ticks must be positive, got {n_ticks}")
    a = _note_array(notes)
    bars = n_ticks / TICKS_PER_BAR
    n = len(a)
    z = {k: np.zeros(1) for k in FEATURES}
    z.update(note_length_hist=np.zeros(len(LENGTH_BINS)), pitch_class_hist=np.zeros(12), pctm=np.zeros(144))
    if n == 0:
        return z
    start, end, pitch = a[:, 0], np.minimum(a[:, 1], n_ticks), a[:, 2]
    lengths = (end - start) / TICKS_PER_QUARTER
    sounding = np.zeros(n_ticks + 1)
    np.add.at(sounding, start, 1)
    np.add.at(sounding, end, -1)
    sounding = np.cumsum(sounding)[:n_ticks]
    times = np.unique(start)
    bins = np.clip(np.rint(np.log2(lengths)) + 4, 0, len(LENGTH_BINS) - 1).astype(np.int64)
    groups = np.zeros((len(times), 12))
    groups[np.searchsorted(times, start), pitch % 12] = 1.0  # distinct pitch classes per onset time
    pctm = groups[:-1].T @ groups[1:]
    z.update(
        note_count=np.array([n / bars]),
        pitch_count=np.array([float(len(np.unique(pitch)))]),
        pitch_range=np.array([float(pitch.max() - pitch.min())]),
        polyphony=np.array([float(sounding[sounding > 0].mean())]),
        ioi=np.array([float(np.diff(times).mean() / TICKS_PER_QUARTER) if len(times) > 1 else 0.0]),
        note_length_hist=np.bincount(bins, minlength=len(LENGTH_BINS)) / n,
        pitch_class_hist=np.bincount(pitch % 12, minlength=12) / n,
        pctm=(pctm / pctm.sum() if pctm.sum() > 0 else pctm).ravel(),
        onset_times=np.array([len(times) / bars]),
        note_length=np.array([float(lengths.mean())]),
    )
    return z


def feature_matrix(windows: Sequence[Window]) -> dict[str, np.ndarray]:
    """(frame, onset) windows -> {feature: (N, d) matrix of the per-window feature vectors}."""
    if len(windows) == 0:
        raise DataError("no windows")
    rows = [window_features(notes_from_rolls(f, o), np.shape(f)[0]) for f, o in windows]
    return {k: np.stack([r[k] for r in rows]) for k in FEATURES}


def _subsample(d: np.ndarray, max_pairs: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_pairs is None or len(d) <= max_pairs:
        return d
    return d[np.sort(rng.choice(len(d), max_pairs, replace=False))]


def intra_distances(x: np.ndarray, groups: Sequence[Any] | None = None) -> np.ndarray:
    """Euclidean distances between the rows of (N, d) ``x`` over pairs i < j, leaving out pairs whose
    ``groups`` are equal (e.g. two windows of one song)."""
    from scipy.spatial.distance import pdist

    x = np.asarray(x, np.float64).reshape(len(x), -1)
    d = pdist(x)
    if groups is not None:
        g = np.asarray(groups)
        if len(g) != len(x):
            raise DataError(f"{len(g)} groups for {len(x)} windows")
        i, j = np.triu_indices(len(x), k=1)  # pdist's order
        d = d[g[i] != g[j]]
    return d


def inter_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances between every row of (N, d) ``x`` and every row of (M, d) ``y``, (N*M,)."""
    from scipy.spatial.distance import cdist

    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    return cdist(x, y).ravel()


def _pdf(x: np.ndarray, span: float) -> tuple[Any, float]:
    """A density callable and its kernel std: scipy's gaussian_kde (Scott's rule), or, where that fails
    (fewer than two samples, zero variance), a Gaussian at the mean with std FALLBACK_STD * span."""
    from scipy.stats import gaussian_kde, norm

    if len(x) >= 2 and np.ptp(x) > 0:
        try:
            kde = gaussian_kde(x)
            return kde, float(np.sqrt(kde.covariance[0, 0]))
        except np.linalg.LinAlgError:
            pass
    std = FALLBACK_STD * span
    return (lambda g: norm.pdf(g, float(np.mean(x)), std)), std


def overlap_and_kl(reference: np.ndarray, other: np.ndarray, n_grid: int = N_GRID) -> tuple[float, float]:
    """OA and KL(reference || other) of two samples' Gaussian KDEs, both evaluated on one grid of
    ``n_grid`` points over the pooled sample range widened by 4 kernel stds on each side and normalised
    to integrate to 1 on it. OA = integral of min(p, q) in [0, 1]; KL = sum P log(P / Q) with P, Q the
    grid-normalised densities, Q floored at 1e-12 max(Q) (so KL is finite, >= 0). Identical constant
    samples give (1, 0)."""
    a = np.asarray(reference, np.float64).ravel()
    b = np.asarray(other, np.float64).ravel()
    if len(a) == 0 or len(b) == 0:
        raise DataError("overlap_and_kl needs two non-empty samples")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("overlap_and_kl: non-finite distances")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    span = hi - lo
    if span == 0:
        return 1.0, 0.0
    pa, sa = _pdf(a, span)
    pb, sb = _pdf(b, span)
    pad = 4 * max(sa, sb)
    grid = np.linspace(lo - pad, hi + pad, n_grid)
    dx = grid[1] - grid[0]
    p, q = np.maximum(pa(grid), 0.0), np.maximum(pb(grid), 0.0)
    p, q = p / (p.sum() * dx), q / (q.sum() * dx)
    oa = float(np.minimum(p, q).sum() * dx)
    P = p / p.sum()
    Q = np.maximum(q, 1e-12 * q.max())
    Q = Q / Q.sum()
    m = P > 0
    kl = float(np.sum(P[m] * np.log(P[m] / Q[m])))
    return min(oa, 1.0), max(kl, 0.0)


def compare_sets(
    generated: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    *,
    reference_groups: Sequence[Any] | None = None,
    seed: int = 0,
    max_pairs: int | None = MAX_PAIRS,
    n_grid: int = N_GRID,
) -> dict[str, Any]:
    """Yang & Lerch's comparison of two sets of windows given as :func:`feature_matrix` outputs.

    Per feature: intra = :func:`intra_distances` of the reference (pairs of one reference group left out),
    inter = :func:`inter_distances` generated x reference, each subsampled to ``max_pairs`` without
    replacement (``numpy.random.default_rng(seed)``), then :func:`overlap_and_kl` (intra, inter).
    Returns ``{"oa": {feature: OA}, "kl": {feature: KL}, "mean_oa": mean of the OAs}``."""
    rng = np.random.default_rng(seed)
    oa, kl = {}, {}
    for k in FEATURES:
        intra = _subsample(intra_distances(reference[k], reference_groups), max_pairs, rng)
        if len(intra) == 0:
            raise DataError("the reference needs two windows of different groups")
        inter = _subsample(inter_distances(generated[k], reference[k]), max_pairs, rng)
        oa[k], kl[k] = overlap_and_kl(intra, inter, n_grid)
    return {"oa": oa, "kl": kl, "mean_oa": float(np.mean(list(oa.values())))}


def _chord_tone_counts(onset: np.ndarray, chroma: np.ndarray) -> tuple[int, int]:
    o = as_roll(onset, "onset")
    c = np.asarray(chroma)
    if c.shape != (o.shape[0], 12):
        raise DataError(f"chroma must be ({o.shape[0]}, 12), got {c.shape}")
    t, p = np.nonzero(o)
    has_chord = (c[t] > 0).any(1)
    hit = c[t, p % 12] > 0
    return int(np.count_nonzero(hit & has_chord)), int(np.count_nonzero(has_chord))


def chord_tone_share(onset: np.ndarray, chroma: np.ndarray) -> float:
    """Share of the onsets (T, 128) whose pitch class is in the annotated chord at that tick (chroma (T, 12)
    > 0). Onsets on ticks without a chord (all-zero chroma) are left out; NaN when no onset is left."""
    hits, total = _chord_tone_counts(onset, chroma)
    return hits / total if total else math.nan


def split_halves(groups: Sequence[Any], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Window indices of two group-disjoint halves: the distinct groups in sorted order, permuted by
    ``numpy.random.default_rng(seed)``; the first ceil(n/2) groups give the reference half."""
    g = np.asarray(groups)
    uniq = np.unique(g)
    if len(uniq) < 3:
        raise DataError("texture_table needs windows of at least 3 groups (songs)")
    perm = np.random.default_rng(seed).permutation(uniq)
    ref = np.isin(g, perm[: (len(uniq) + 1) // 2])
    return np.nonzero(ref)[0], np.nonzero(~ref)[0]


def _describe(
    windows: Sequence[Window], chroma: Sequence[np.ndarray], feats: Mapping[str, np.ndarray]
) -> dict[str, float]:
    hits = total = 0
    for (_, o), c in zip(windows, chroma):
        h, n = _chord_tone_counts(o, c)
        hits, total = hits + h, total + n
    note_counts = feats["note_count"][:, 0]
    return {
        "notes_per_bar": float(note_counts.mean()),
        "onset_times_per_bar": float(feats["onset_times"][:, 0].mean()),
        "mean_note_length": float(
            np.sum(note_counts * feats["note_length"][:, 0]) / max(note_counts.sum(), 1e-12)
        ),
        "polyphony": float(feats["polyphony"][:, 0].mean()),
        "chord_tone_share": hits / total if total else math.nan,
    }


def texture_table(
    systems: Mapping[str, Sequence[Window]],
    reference: Sequence[Window],
    chroma: Sequence[np.ndarray],
    *,
    groups: Sequence[Any] | None = None,
    reference_name: str = "human",
    seed: int = 0,
    max_pairs: int | None = MAX_PAIRS,
) -> dict[str, Any]:
    """Evaluate systems against the human piano on the same windows.

    ``systems[name][i]``, ``reference[i]`` and ``chroma[i]`` ((T, 12) annotated chord) describe window i;
    ``groups[i]`` is its song (default: every window its own). The windows are split into two
    song-disjoint halves (:func:`split_halves`): the reference set is the human piano on the first half;
    each system on the second half is compared with it (:func:`compare_sets`), and so is the human piano
    on the second half (the ceiling, row ``reference_name``). The descriptive values (notes, onset times
    per bar, note length in quarters, polyphony, chord-tone share) are over all windows.
    Returns ``{"features", "rows": {name: {"mean_oa", "oa", "kl", ...}}, "n_windows", "n_reference",
    "n_compared", "seed"}``."""
    n = len(reference)
    if n == 0 or len(chroma) != n or any(len(w) != n for w in systems.values()):
        raise DataError("systems, reference and chroma must list the same (non-zero) number of windows")
    if reference_name in systems:
        raise DataError(f"a system is named like the reference ({reference_name!r})")
    groups = list(range(n)) if groups is None else list(groups)
    ref_idx, cmp_idx = split_halves(groups, seed)
    ref_groups = [groups[i] for i in ref_idx]

    def sub(m: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in m.items()}

    ref_feats = feature_matrix(reference)
    base = sub(ref_feats, ref_idx)
    rows = {}
    for name, wins in [(reference_name, reference), *systems.items()]:
        feats = ref_feats if name == reference_name else feature_matrix(wins)
        cmp = compare_sets(
            sub(feats, cmp_idx), base, reference_groups=ref_groups, seed=seed, max_pairs=max_pairs
        )
        rows[name] = {**cmp, **_describe(wins, chroma, feats)}
    return {"features": list(FEATURES), "rows": rows, "n_windows": n, "n_reference": len(ref_idx),
            "n_compared": len(cmp_idx), "seed": seed}


def format_texture_table(table: Mapping[str, Any]) -> str:
    """Markdown: a summary table (mean OA, notes and onset times per bar, note length, polyphony,
    chord-tone share) and a per-feature OA / KL table."""
    rows = table["rows"]
    lines = [
        "| system | mean OA ↑ | notes/bar | onset times/bar | mean note length (q) | polyphony "
        "| chord-tone share |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['mean_oa']:.3f} | {r['notes_per_bar']:.2f} | {r['onset_times_per_bar']:.2f} | "
            f"{r['mean_note_length']:.3f} | {r['polyphony']:.2f} | {r['chord_tone_share']:.3f} |"
        )
    feats = table["features"]
    lines += ["", "| system | " + " | ".join(feats) + " |", "|---|" + "---|" * len(feats)]
    for name, r in rows.items():
        cells = [f"{r['oa'][k]:.3f} / {r['kl'][k]:.3f}" for k in feats]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
