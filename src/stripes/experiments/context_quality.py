"""Question 1, "is it the information?": the mutual information of degraded BIN contexts and the statistics
that relate it to performance.

The contexts are BIN and its variants ``bin_corrupt<r>`` / ``bin_shift<k>`` (:mod:`stripes.data.variants`).
Their MI with the input pitches is measured exactly as P1 Table I (``stripes analyze mi``): every active
melody/bridge cell of the training windows is one (pitch, label) sample, the label being the chroma vector
read as a category, and :func:`stripes.analysis.mi.count_tables` + :func:`stripes.analysis.mi.mi_estimates`
give the plug-in, Miller-Madow and shuffle-corrected estimates. The rows are kept in ``context_mi.json``
(beside ``mi.json``), computed once per context and extended when new contexts appear.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stripes.errors import DataError
from stripes.fileio import atomic_write_text

TABLE = "q1-context-quality"
CONTEXT_MI = "context_mi.json"


def is_bin_family(name: str) -> bool:
    """BIN itself or one of its degraded variants (``bin_corrupt0.5``, ``bin_shift2``; any case)."""
    from stripes.data.contexts import parse_variant

    n = name.lower()
    try:
        return n == "bin" or parse_variant(n) is not None
    except ValueError:
        return False


def describe(name: str) -> tuple[str, float]:
    """("corrupt", rate) or ("shift", beats) of a BIN-family context; BIN is ("corrupt", 0.0)."""
    from stripes.data.contexts import parse_variant

    v = parse_variant(name.lower())
    return v if v is not None else ("corrupt", 0.0)


# ----------------------------------------------------------------------------------------------------- MI


def _windows(ds: Any, variants: Any, name: str, content: str) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    arrays = ds.arrays()
    t = int(arrays["window_len"])
    roll, chord, chroma = arrays["roll"], arrays["chord"], np.asarray(arrays["chroma"])
    cols = {"input": slice(0, 256), "all": slice(0, 384), "target": slice(256, 384)}[content]
    for (row, start), s in zip(np.asarray(ds.windows), np.asarray(arrays["starts"]), strict=True):
        x = np.unpackbits(np.asarray(roll[int(s) : int(s) + t]), axis=-1, count=384)[:, cols]
        if name == "bin":
            pos = chroma[np.asarray(chord[int(s) : int(s) + t], dtype=np.int64)]
        else:
            pos = variants.window(name, int(row), int(start), t)
        yield x, pos


def context_mi_rows(names: Sequence[str], data_root: Any = None, cache_dir: Any = None, split: str = "train",
                    bars: int = 16, *, n_shuffles: int = 5, seed: int = 0, content: str = "input",
                    log: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """One MI row per BIN-family context of ``names`` (the estimates of ``stripes analyze mi``, nats), over
    the ``split`` windows of ``bars`` bars; ``content`` "input" (melody + bridge, P1 Table I), "all" (with
    the piano) or "target" (the piano alone: what the model predicts)."""
    from stripes.analysis.mi import count_tables, mi_estimates
    from stripes.data import HarmonizationDataset
    from stripes.data.variants import ContextVariants

    if content not in ("input", "all", "target"):
        raise DataError(f"content must be 'input', 'all' or 'target', got {content!r}")
    bad = [n for n in names if not is_bin_family(n)]
    if bad:
        raise DataError(f"not BIN or a BIN variant: {', '.join(bad)}")
    names = [n.lower() for n in names]
    ds = HarmonizationDataset(split, ["bin"], bars, data_root=data_root, cache_dir=cache_dir)
    variants = ContextVariants(ds.data, [n for n in names if n != "bin"])
    rows = []
    for name in names:
        log(f"MI of {name} ({split}, {len(ds)} windows of {bars} bars) ...")
        table = count_tables(_windows(ds, variants, name, content), ["bin"], 12)["bin"]
        kind, value = describe(name)
        rows.append({"context": name, "kind": kind, "value": value,
                     **mi_estimates(table, n_shuffles=n_shuffles, seed=seed),
                     "n_windows": len(ds), "split": split, "bars": bars, "content": content})
    return rows


def load_context_mi(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``context_mi.json``."""
    p = Path(path)
    try:
        rows = json.loads(p.read_text())["rows"]
        for r in rows:
            float(r["plugin"])
            str(r["context"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{p} is not a context MI table (rows with 'context' and 'plugin')") from exc
    return rows


def write_context_mi(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write rows to ``path`` (JSON, atomically), sorted by context kind and value."""
    p = Path(path)
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
             for r in sorted(rows, key=lambda r: (str(r.get("kind", "")), float(r.get("value", 0.0))))]
    atomic_write_text(p, json.dumps({"unit": "nats", "rows": clean}, indent=1, allow_nan=False) + "\n")
    return p


def ensure_context_mi(path: str | os.PathLike, names: Sequence[str], data_root: Any = None,
                      cache_dir: Any = None, log: Callable[[str], None] = print,
                      content: str = "input") -> list[dict[str, Any]]:
    """The MI rows of ``names`` in ``path``, computing (and adding to the file) only the missing ones."""
    p = Path(path)
    rows = load_context_mi(p) if p.is_file() else []
    have = {str(r["context"]) for r in rows}
    missing = [n.lower() for n in dict.fromkeys(names) if n.lower() not in have]
    if missing:
        rows += context_mi_rows(missing, data_root, cache_dir, log=log, content=content)
        write_context_mi(rows, p)
    return rows


def find_context_mi(paths: Sequence[str | os.PathLike]) -> Path | None:
    """``context_mi.json`` in or beside a run path (as :func:`stripes.experiments.report.figures.find_mi`)."""
    for raw in paths:
        p = Path(raw)
        for c in (p / CONTEXT_MI, p / "mi" / CONTEXT_MI, p.parent / "mi" / CONTEXT_MI, p.parent / CONTEXT_MI):
            if c.is_file():
                return c
    return None


# ---------------------------------------------------------------------------------------------- statistics


EXACT_MAX_N = 8  # Spearman p by enumerating every permutation up to this many points (8! = 40320)


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, int]:
    """(rho, two-sided p, n) of Spearman's rank correlation (scipy's rho); NaN with fewer than 3 points or
    a constant side. The p-value is exact (every permutation of y against x) up to ``EXACT_MAX_N`` points,
    where scipy's t approximation is far off (it gives p ~ 1e-24 for a perfect order of 5 points, the
    exact value being 2/120), and scipy's otherwise."""
    from scipy.stats import rankdata, spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, int(x.size)
    res = spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    if x.size <= EXACT_MAX_N:
        import itertools

        rx, ry = rankdata(x), rankdata(y)
        zx, zy = (rx - rx.mean()) / rx.std(), (ry - ry.mean()) / ry.std()
        null = zy[np.array(list(itertools.permutations(range(x.size))))] @ zx / x.size  # Pearson on ranks
        p = float(np.mean(np.abs(null) >= abs(zx @ zy / x.size) - 1e-12))
    return rho, p, int(x.size)


def hinge_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float] | None:
    """Where a curve bends: the continuous two-segment line ``y = a + s_lo min(x - b, 0) + s_hi max(x - b,
    0)`` with the least squared error, its break ``b`` taken among the interior x values; beside it the
    single line's error. Returns {"break", "slope_below", "slope_above", "sse_line", "sse_hinge",
    "explained"} (``explained``: the share of the line's squared error the bend removes), or None with
    fewer than 4 distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    xs = np.unique(x)
    if xs.size < 4:
        return None
    line = np.column_stack([np.ones_like(x), x])
    sse_line = float(np.sum((y - line @ np.linalg.lstsq(line, y, rcond=None)[0]) ** 2))
    best: dict[str, float] | None = None
    for b in xs[1:-1]:
        design = np.column_stack([np.ones_like(x), np.minimum(x - b, 0.0), np.maximum(x - b, 0.0)])
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        sse = float(np.sum((y - design @ coef) ** 2))
        if best is None or sse < best["sse_hinge"]:
            best = {"break": float(b), "slope_below": float(coef[1]), "slope_above": float(coef[2]),
                    "sse_hinge": sse}
    assert best is not None
    best["sse_line"] = sse_line
    best["explained"] = 1.0 - best["sse_hinge"] / sse_line if sse_line > 0 else 0.0
    return best


def interpolate(x: Sequence[float], y: Sequence[float], at: float) -> float:
    """The piecewise-linear curve through (x, y) (sorted by x) at ``at``; NaN outside its range."""
    order = np.argsort(np.asarray(x, dtype=float))
    xs, ys = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
    if xs.size == 0 or not xs[0] <= at <= xs[-1]:
        return math.nan
    return float(np.interp(at, xs, ys))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stripes.experiments.context_quality [--contexts ...] [--out FILE]``: the MI table of BIN
    and its variants (what ``stripes reproduce --tables q1-context-quality`` writes to mi/context_mi.json)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m stripes.experiments.context_quality",
                                description="MI (nats) between input pitches and degraded BIN contexts")
    p.add_argument("--contexts", default="bin,bin_corrupt0.25,bin_corrupt0.5,bin_corrupt0.75,bin_corrupt1,"
                   "bin_shift1,bin_shift2,bin_shift4", help="comma-separated (default %(default)s)")
    p.add_argument("--out", default="results/q1/mi/context_mi.json", help="JSON file (extended, not redone)")
    p.add_argument("--content", default="input", choices=["input", "all", "target"],
                   help="pitches counted: input (melody + bridge, P1 Table I; default), all tracks, or "
                        "target (the piano alone)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    rows = ensure_context_mi(a.out, [c.strip() for c in a.contexts.split(",") if c.strip()], a.data_root,
                             a.cache_dir, content=a.content)
    if any(r.get("content", "input") != a.content for r in rows):
        raise DataError(f"{a.out} holds MI of other content than {a.content!r}: give another --out")
    print(f"{'context':<16} {'plug-in':>8} {'M-Madow':>8} {'shuffle':>8}")
    for r in rows:
        print(f"{r['context']:<16} {r['plugin']:>8.4f} {r.get('miller_madow', math.nan):>8.4f} "
              f"{r.get('shuffle', math.nan):>8.4f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
