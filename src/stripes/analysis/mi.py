"""Mutual information between input content (pitches) and structural context labels (P1 §VI-A, Table I).

Estimators for two discrete variables, in nats:
    plug-in        MI = sum p(x,y) ln[p(x,y) / (p(x) p(y))] from the empirical joint table.
    Miller-Madow   each entropy gets + (m - 1) / (2N) (m = occupied cells), so
                   MI_MM = MI + (m_x + m_y - m_xy - 1) / (2N).
    shuffle        plug-in minus the mean plug-in MI of label permutations (the permutation null keeps both
                   marginals, so from a table it is drawn as a random table with fixed margins).

``mi_table`` pools every active melody/bridge cell of the training windows of
``stripes.data.HarmonizationDataset`` into (pitch = column mod 128, context label at that tick) samples.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import random_table

from stripes.data.contexts import CONTEXT_WIDTH  # every other context is 1 wide
from stripes.errors import DataError
from stripes.fileio import atomic_write_text

P1_TABLE_I = {"time": 0.0085, "rep": 0.0436, "key": 0.0476, "bin": 1.0075}


# ---- estimators ------------------------------------------------------------------------------------


def contingency(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Joint count table of two discrete sample arrays of equal length N -> (n_x values, n_y values) int64."""
    x = np.asarray(x).ravel()
    y = np.asarray(y).ravel()
    if x.shape != y.shape:
        raise DataError(f"x and y must have the same number of samples, got {x.size} and {y.size}")
    if x.size == 0:
        raise DataError("no samples")
    _, xi = np.unique(x, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    ny = int(yi.max()) + 1
    nx = int(xi.max()) + 1
    return np.bincount(xi.ravel() * ny + yi.ravel(), minlength=nx * ny).reshape(nx, ny)


def _table(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 2:
        raise DataError(f"contingency table must be 2-D, got shape {c.shape}")
    if c.size == 0 or np.any(c < 0) or c.sum() <= 0:
        raise DataError("contingency table must be non-negative with a positive total")
    c = c.astype(np.float64)
    return c[c.sum(axis=1) > 0][:, c.sum(axis=0) > 0]


def _entropy(counts: np.ndarray) -> float:
    c = counts[counts > 0].astype(np.float64)
    n = c.sum()
    return float(np.log(n) - np.sum(c * np.log(c)) / n)


def mi_plugin_counts(counts: np.ndarray) -> float:
    """Plug-in MI (nats) of a joint count table (n_x, n_y)."""
    c = _table(counts)
    mi = _entropy(c.sum(axis=1)) + _entropy(c.sum(axis=0)) - _entropy(c.ravel())
    return max(mi, 0.0)


def mi_miller_madow_counts(counts: np.ndarray) -> float:
    """Miller-Madow corrected MI (nats): plug-in + (m_x + m_y - m_xy - 1) / (2N); can be slightly negative."""
    c = _table(counts)
    n = c.sum()
    mx = np.count_nonzero(c.sum(axis=1))
    my = np.count_nonzero(c.sum(axis=0))
    mxy = np.count_nonzero(c)
    return float(mi_plugin_counts(c) + (mx + my - mxy - 1) / (2.0 * n))


def shuffle_null_counts(counts: np.ndarray, n_shuffles: int = 5, seed: int = 0) -> np.ndarray:
    """Plug-in MI of ``n_shuffles`` label permutations, drawn as random tables with fixed margins -> (n,)."""
    if n_shuffles < 1:
        raise DataError(f"n_shuffles must be >= 1, got {n_shuffles}")
    c = _table(counts).astype(np.int64)
    dist = random_table(c.sum(axis=1), c.sum(axis=0), seed=seed)
    return np.array([mi_plugin_counts(t) for t in dist.rvs(size=n_shuffles)])


def mi_shuffle_counts(counts: np.ndarray, n_shuffles: int = 5, seed: int = 0) -> float:
    """Shuffled-label baseline: plug-in MI minus the mean plug-in MI of permuted labels (nats)."""
    return mi_plugin_counts(counts) - float(shuffle_null_counts(counts, n_shuffles, seed).mean())


def mi_plugin(x: np.ndarray, y: np.ndarray) -> float:
    """Plug-in MI (nats) of paired discrete samples x, y (N,)."""
    return mi_plugin_counts(contingency(x, y))


def mi_miller_madow(x: np.ndarray, y: np.ndarray) -> float:
    """Miller-Madow corrected MI (nats) of paired discrete samples x, y (N,)."""
    return mi_miller_madow_counts(contingency(x, y))


def mi_shuffle(x: np.ndarray, y: np.ndarray, n_shuffles: int = 5, seed: int = 0) -> float:
    """Plug-in MI minus the mean plug-in MI after permuting y (``n_shuffles`` permutations) (nats)."""
    if n_shuffles < 1:
        raise DataError(f"n_shuffles must be >= 1, got {n_shuffles}")
    x = np.asarray(x).ravel()
    y = np.asarray(y).ravel()
    rng = np.random.default_rng(seed)
    null = [mi_plugin(x, rng.permutation(y)) for _ in range(n_shuffles)]
    return mi_plugin(x, y) - float(np.mean(null))


def _codes(*cols: np.ndarray) -> np.ndarray:
    """One integer code per row of the stacked discrete columns (N,) each -> (N,)."""
    stacked = np.stack([np.asarray(c).ravel() for c in cols], axis=1)
    return np.unique(stacked, axis=0, return_inverse=True)[1].ravel()


def _entropy_of(codes: np.ndarray) -> float:
    return _entropy(np.bincount(codes))


def conditional_mi(x: np.ndarray, y: np.ndarray, z: np.ndarray, n_shuffles: int = 5,
                   seed: int = 0) -> dict[str, float]:
    """Conditional MI I(X; Y | Z) (nats) of paired discrete samples (N,) each: what y tells about x beyond z.

    ``plugin`` = H(X,Z) + H(Y,Z) - H(X,Y,Z) - H(Z); ``shuffle`` subtracts the mean plug-in value after
    permuting y *within each value of z* (the null keeps how x and y each depend on z and breaks only what y
    adds), which removes most of the plug-in's upward bias when z has many values; ``shuffle_null`` is that
    mean, ``n`` the sample count.
    """
    if n_shuffles < 1:
        raise DataError(f"n_shuffles must be >= 1, got {n_shuffles}")
    x, y, z = (np.asarray(a).ravel() for a in (x, y, z))
    if not (x.size == y.size == z.size) or x.size == 0:
        raise DataError(f"x, y, z need the same non-zero length, got {x.size}, {y.size}, {z.size}")
    zc = _codes(z)
    # H(X,Z) + H(Y,Z) - H(Z) is the same for y and for every permutation of y within the values of z
    fixed = _entropy_of(_codes(x, zc)) + _entropy_of(_codes(y, zc)) - _entropy_of(zc)

    def plug(yy: np.ndarray) -> float:
        return fixed - _entropy_of(_codes(x, yy, zc))

    rng = np.random.default_rng(seed)
    order = np.argsort(zc, kind="stable")
    bounds = np.flatnonzero(np.diff(zc[order])) + 1
    null = []
    for _ in range(n_shuffles):
        yy = y.copy()
        for idx in np.split(order, bounds):
            yy[idx] = y[rng.permutation(idx)]
        null.append(plug(yy))
    value = plug(y)
    return {"plugin": value, "shuffle": value - float(np.mean(null)), "shuffle_null": float(np.mean(null)),
            "n": int(x.size)}


def mi_estimates(counts: np.ndarray, n_shuffles: int = 5, seed: int = 0) -> dict[str, float]:
    """All three estimators (nats) from one joint count table, plus the shuffle null mean and N."""
    null = shuffle_null_counts(counts, n_shuffles, seed) if n_shuffles > 0 else np.array([np.nan])
    plug = mi_plugin_counts(counts)
    c = _table(counts)
    return {
        "plugin": plug,
        "miller_madow": mi_miller_madow_counts(c),
        "shuffle": plug - float(null.mean()),
        "shuffle_null": float(null.mean()),
        "n_samples": int(c.sum()),
        "n_pitches": int(c.shape[0]),
        "n_labels": int(c.shape[1]),
    }


# ---- content / context samples from the dataset -------------------------------------------------------


def _context_slices(contexts: Sequence[str], context_dim: int) -> dict[str, slice]:
    out: dict[str, slice] = {}
    start = 0
    for name in contexts:
        w = CONTEXT_WIDTH.get(name, 1)
        out[name] = slice(start, start + w)
        start += w
    if start != context_dim:
        raise DataError(
            f"dataset context_dim {context_dim} does not match contexts {list(contexts)} (width {start})"
        )
    return out


def tick_labels(pos: np.ndarray, sl: slice) -> np.ndarray:
    """Per-tick label of one context from pos (T, C): the scalar value, or for a multi-column context
    (BIN) a categorical id of the binary vector (bit j set when column j is non-zero) -> (T,)."""
    block = np.asarray(pos)[:, sl]
    if block.shape[1] == 1:
        return block[:, 0].astype(np.float64)
    bits = (block != 0).astype(np.int64)
    return (bits << np.arange(bits.shape[1], dtype=np.int64)).sum(axis=1).astype(np.float64)


def count_tables(
    items: Iterable[tuple[np.ndarray, np.ndarray]],
    contexts: Sequence[str],
    context_dim: int,
    n_pitches: int = 128,
) -> dict[str, np.ndarray]:
    """Joint (pitch, label) count tables over windows.

    items: (x (T, k*128) binary input roll, pos (T, C)) per window. Every active cell (t, col) gives one
    sample (col mod 128, label_c(t)) per context c. Returns {context: (n_pitches, n_labels) int64}.
    """
    slices = _context_slices(contexts, context_dim)
    # per window, only the distinct (label, pitch) pairs and their counts are kept (small memory)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {c: [] for c in contexts}
    n_windows = 0
    for x, pos in items:
        x = np.asarray(x)
        pos = np.asarray(pos)
        if x.ndim != 2 or pos.ndim != 2 or x.shape[0] != pos.shape[0]:
            raise DataError(f"window shapes do not match: x {x.shape}, pos {pos.shape}")
        n_windows += 1
        t_idx, col = np.nonzero(x)
        if t_idx.size == 0:
            continue
        pitch = (col % n_pitches).astype(np.int64)
        for c in contexts:
            vals, inv = np.unique(tick_labels(pos, slices[c])[t_idx], return_inverse=True)
            cnt = np.bincount(inv.ravel() * n_pitches + pitch, minlength=len(vals) * n_pitches)
            nz = np.flatnonzero(cnt)
            parts[c].append((vals[nz // n_pitches], nz % n_pitches, cnt[nz]))
    if n_windows == 0:
        raise DataError("no windows to count")
    if not parts[contexts[0]]:
        raise DataError("the input rolls have no active cells")
    out = {}
    for c in contexts:
        labels = np.concatenate([a for a, _, _ in parts[c]])
        pitch = np.concatenate([b for _, b, _ in parts[c]])
        weight = np.concatenate([w for _, _, w in parts[c]])
        _, lab = np.unique(labels, return_inverse=True)
        n_lab = int(lab.max()) + 1
        flat = np.bincount(pitch * n_lab + lab.ravel(), weights=weight, minlength=n_pitches * n_lab)
        out[c] = np.rint(flat).astype(np.int64).reshape(n_pitches, n_lab)
    return out


def _make_dataset(
    split: str,
    contexts: list[str],
    bars: int,
    data_root: str | os.PathLike | None,
    cache_dir: str | os.PathLike | None,
) -> Any:
    from stripes.data import HarmonizationDataset  # imported lazily: written by another package

    return HarmonizationDataset(split, contexts, bars, data_root=data_root, cache_dir=cache_dir)


def _numpy(a: Any) -> np.ndarray:
    return a.numpy() if hasattr(a, "numpy") else np.asarray(a)


def _dataset_windows(ds: Any, content: str = "input") -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(content roll, pos) per window: content "input" is x (T, 256) melody+bridge, "all" adds y (piano)."""
    if content not in ("input", "all"):
        raise DataError(f"content must be 'input' or 'all', got {content!r}")
    for i in range(len(ds)):
        item = ds[i]
        x = _numpy(item["x"])
        if content == "all":
            x = np.concatenate([x, _numpy(item["y"])], axis=1)
        yield x, _numpy(item["pos"])


BULK_CONTEXTS = ("time", "rep", "key", "bin")


def _bulk_windows(
    arrays: dict[str, Any], contexts: Sequence[str], content: str = "input"
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(content roll, pos) per window from ``HarmonizationDataset.arrays()`` (no per-item overhead).

    Rebuilds pos exactly as the dataset stacks it: TIME = arange(T), REP = dense rank of the window's
    chord ids, KEY = key-normalised chord id, BIN = chroma[chord] (12 columns).
    """
    from stripes.data.contexts import rep_labels

    t = int(arrays["window_len"])
    roll, chord, key, chroma = arrays["roll"], arrays["chord"], arrays["key"], np.asarray(arrays["chroma"])
    n_cols = 256 if content == "input" else 384
    for s in np.asarray(arrays["starts"], dtype=np.int64):
        s = int(s)
        x = np.unpackbits(np.asarray(roll[s : s + t]), axis=-1, count=384)[:, :n_cols]
        ch = np.asarray(chord[s : s + t])
        cols = []
        for c in contexts:
            if c == "time":
                cols.append(np.arange(t)[:, None])
            elif c == "rep":
                cols.append(rep_labels(ch)[:, None])
            elif c == "key":
                cols.append(np.asarray(key[s : s + t])[:, None])
            else:  # bin
                cols.append(chroma[ch])
        yield x, np.concatenate(cols, axis=1).astype(np.float32)


def mi_table(
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    split: str = "train",
    bars: int = 16,
    *,
    contexts: Sequence[str] = ("time", "rep", "key", "bin"),
    n_shuffles: int = 5,
    seed: int = 0,
    content: str = "input",
) -> list[dict[str, float | str | int]]:
    """MI between pitches and each context over the ``split`` windows; one row per context with the
    plug-in, Miller-Madow and shuffle-corrected estimates (nats) and P1's Table I value.

    content "input": active cells of x (melody + bridge); "all": of x and y (all three tracks).
    """
    if content not in ("input", "all"):
        raise DataError(f"content must be 'input' or 'all', got {content!r}")
    ds = _make_dataset(split, list(contexts), bars, data_root, cache_dir)
    if hasattr(ds, "arrays") and all(c in BULK_CONTEXTS for c in contexts):
        windows = _bulk_windows(ds.arrays(), list(contexts), content)
    else:
        windows = _dataset_windows(ds, content)
    tables = count_tables(windows, list(contexts), int(ds.context_dim))
    rows: list[dict[str, float | str | int]] = []
    for c in contexts:
        row: dict[str, float | str | int] = {"context": c, "p1": P1_TABLE_I.get(c, float("nan"))}
        row.update(mi_estimates(tables[c], n_shuffles=n_shuffles, seed=seed))
        row["n_windows"] = len(ds)
        row["content"] = content
        rows.append(row)
    return rows


FIELDS = [
    "context",
    "plugin",
    "miller_madow",
    "shuffle",
    "shuffle_null",
    "p1",
    "n_samples",
    "n_pitches",
    "n_labels",
    "n_windows",
    "content",
]


def format_mi_table(rows: list[dict]) -> str:
    """A plain-text table of ``mi_table`` rows beside P1's Table I values."""
    head = (
        f"{'context':<8} {'plug-in':>9} {'M-Madow':>9} {'shuffle':>9} {'P1':>8} {'samples':>10} {'labels':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{str(r['context']).upper():<8} {r['plugin']:>9.4f} {r['miller_madow']:>9.4f} "
            f"{r['shuffle']:>9.4f} "
            f"{r['p1']:>8.4f} {r['n_samples']:>10d} {r['n_labels']:>7d}"
        )
    return "\n".join(lines)


def write_mi_table(rows: list[dict], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``mi.csv`` and ``mi.json`` into out_dir (atomically); returns both paths."""
    out = Path(out_dir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    csv_path, json_path = out / "mi.csv", out / "mi.json"
    atomic_write_text(csv_path, buf.getvalue())
    clean = [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
        for r in rows
    ]
    text = json.dumps({"unit": "nats", "rows": clean}, indent=2, allow_nan=False) + "\n"
    atomic_write_text(json_path, text)
    return csv_path, json_path
