"""Question 3 of docs/results.md: why would RoPE fail to generalise from 16 to 64 bars on REP (P1 §V)?

REP numbers the chords of a window by the rank of their chord id (:func:`stripes.data.contexts.rep_labels`),
so a 64-bar window, holding about twice as many distinct chords as a 16-bar one, gives its chords larger
numbers than any the 16-bar training windows showed often. A RoPE rotates q and k by angles f·p, so the score
between two steps is a function of their label distance (P1 eq. (14)); with RoPE(B)'s fixed frequencies that
function cannot adapt to the new range.

**Hypothesis.** A model that reads REP through RoPE(B) is hurt at 64 bars exactly where the REP values are
ones training rarely showed: in the bars whose labels exceed the 99th percentile of the training ticks' labels
(``v99``), its BCE excess over a context-free control (the TIME models on the same windows) is larger than in
the other bars of the same windows. The test pairs the two kinds of bars within each 64-bar test window
(mean excess in rare-label bars minus mean excess in the others), and asks whether the mean of these paired
differences over windows is above zero (one-sample t-test, and the share of windows where it is); RoPEPool on
REP (learned frequencies) is tested the same way as a contrast.

The module also gives the distribution of REP values at 16 and 64 bars (tick-weighted histograms, per-window
maxima, label distances between steps) and, from a run's checkpoint, what its PE does with those values: the
content-matched score between two steps as a function of their label distance,
``k(Δ) = mean over heads and pairs of cos(θ(Δ) − θ(0))`` — P1 eq. (14) with q = k, and the expected
RoPEPool score for isotropic content (eq. (23) gives 2·cos(θ_m − θ_n) on average) — from the PE's own
``theta``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULT = "q3_rep_generalisation.json"
FIGURE = "q3_rep_generalisation.png"
POSITIONS = "metrics_{bars}_positions.json"
QUANTILE = 99.0


# ------------------------------------------------------------------------------------ label statistics


def value_histogram(windows: Iterable[np.ndarray], n_values: int | None = None) -> np.ndarray:
    """Tick counts of each label value over windows of integer labels ((T,) each) -> (V,) int64."""
    counts = [np.bincount(np.asarray(w, dtype=np.int64).ravel()) for w in windows]
    n = max([len(c) for c in counts] + [n_values or 0])
    return np.sum([np.pad(c, (0, n - len(c))) for c in counts], axis=0).astype(np.int64)


def distance_histogram(windows: Iterable[np.ndarray]) -> np.ndarray:
    """Counts of the label distance |p_m − p_n| over the ordered pairs of steps of each window -> (V,):
    entry d is Σ_windows Σ_v h[v]·h[v+d] (×2 for d > 0), h the window's value histogram."""
    out = np.zeros(1, dtype=np.float64)
    for w in windows:
        h = np.bincount(np.asarray(w, dtype=np.int64).ravel()).astype(np.float64)
        c = np.correlate(h, h, mode="full")[len(h) - 1:]  # c[d] = Σ_v h[v] h[v + d]
        c[1:] *= 2
        if len(c) > len(out):
            out = np.pad(out, (0, len(c) - len(out)))
        out[: len(c)] += c
    return out


def value_summary(train: Sequence[np.ndarray], test: Sequence[np.ndarray],
                  quantile: float = QUANTILE) -> dict[str, Any]:
    """How the test windows' REP values compare with the training windows'.

    Returns {"v_max_train", "v_quantile_train" (the ``quantile``-th percentile of training tick labels),
    "share_ticks_above_max", "share_ticks_above_quantile" (test ticks), "share_train_ticks_above_quantile",
    "window_max_train"/"window_max_test" (5/50/95/100th percentiles of per-window maxima),
    "share_windows_above_quantile", "hist_train"/"hist_test" (tick shares per value),
    "distance_train"/"distance_test" (pair shares per label distance)}."""
    tr, te = np.concatenate([np.ravel(w) for w in train]), np.concatenate([np.ravel(w) for w in test])
    vq = float(np.percentile(tr, quantile))
    n = int(max(tr.max(), te.max())) + 1
    ht, hs = value_histogram(train, n), value_histogram(test, n)
    dt, ds = distance_histogram(train), distance_histogram(test)
    m = max(len(dt), len(ds))
    dt, ds = np.pad(dt, (0, m - len(dt))), np.pad(ds, (0, m - len(ds)))
    pct = [5, 50, 95, 100]
    return {
        "quantile": quantile, "v_max_train": int(tr.max()), "v_quantile_train": vq,
        "v_max_test": int(te.max()),
        "share_ticks_above_max": float((te > tr.max()).mean()),
        "share_ticks_above_quantile": float((te > vq).mean()),
        "share_train_ticks_above_quantile": float((tr > vq).mean()),
        "share_windows_above_quantile": float(np.mean([(np.asarray(w) > vq).any() for w in test])),
        "window_max_train": [float(v) for v in np.percentile([np.max(w) for w in train], pct)],
        "window_max_test": [float(v) for v in np.percentile([np.max(w) for w in test], pct)],
        "hist_train": (ht / ht.sum()).tolist(), "hist_test": (hs / hs.sum()).tolist(),
        "distance_train": (dt / dt.sum()).tolist(), "distance_test": (ds / ds.sum()).tolist(),
        "median_distance_train": _median(dt), "median_distance_test": _median(ds),
    }


def _median(counts: np.ndarray) -> float:
    c = np.cumsum(counts)
    return float(np.searchsorted(c, c[-1] / 2.0))


def rare_share_per_bar(labels: np.ndarray, threshold: float, ticks_per_bar: int = 64) -> np.ndarray:
    """(T,) labels of one window -> (T / ticks_per_bar,) share of each bar's ticks labelled > threshold."""
    lab = np.asarray(labels)
    return (lab[: lab.size // ticks_per_bar * ticks_per_bar].reshape(-1, ticks_per_bar) > threshold).mean(1)


# --------------------------------------------------------------------------------------- the hypothesis


def paired_excess_test(model: np.ndarray, control: np.ndarray, rare: np.ndarray) -> dict[str, Any]:
    """Within-window test of "the excess BCE is larger in rare-label bars".

    Parameters
    ----------
    model, control : ndarray
        (W, B) BCE per window and bar of the model on REP and of the context-free control.
    rare : ndarray
        (W, B) bool, the bars holding labels rarely seen in training.

    Returns
    -------
    dict
        {"n_windows" (windows with both kinds of bars), "mean_diff" (mean over them of excess(rare) −
        excess(other)), "ci95", "p" (one-sample two-sided t-test), "share_positive", "excess_rare",
        "excess_other" (pooled means over bars), "n_rare_bars", "n_bars"}.
    """
    from scipy import stats

    excess = np.asarray(model, dtype=np.float64) - np.asarray(control, dtype=np.float64)
    rare = np.asarray(rare, dtype=bool)
    diffs = [excess[w][rare[w]].mean() - excess[w][~rare[w]].mean()
             for w in range(excess.shape[0]) if rare[w].any() and (~rare[w]).any()]
    d = np.asarray(diffs, dtype=np.float64)
    res: dict[str, Any] = {"n_windows": int(d.size), "n_rare_bars": int(rare.sum()), "n_bars": int(rare.size),
                           "excess_rare": float(excess[rare].mean()) if rare.any() else float("nan"),
                           "excess_other": float(excess[~rare].mean()) if (~rare).any() else float("nan")}
    if d.size < 2:
        return {**res, "mean_diff": float(d.mean()) if d.size else float("nan"), "ci95": None, "p": None,
                "share_positive": float((d > 0).mean()) if d.size else float("nan")}
    se = float(d.std(ddof=1) / np.sqrt(d.size))
    t = float(stats.t.ppf(0.975, d.size - 1))
    p = float(stats.ttest_1samp(d, 0.0).pvalue) if se > 0 else (0.0 if d.mean() != 0 else 1.0)
    return {**res, "mean_diff": float(d.mean()), "ci95": [float(d.mean() - t * se), float(d.mean() + t * se)],
            "p": p, "share_positive": float((d > 0).mean())}


def bar_level_test(curves: dict[str, np.ndarray], controls: Sequence[str], rare_share: np.ndarray,
                   train_bars: int = 16) -> dict[str, Any]:
    """The hypothesis from per-bar means only (records without per-window BCE, e.g. P1 Table III's).

    Parameters
    ----------
    curves : dict
        Cell label -> (B,) test BCE per bar (mean over windows and seeds).
    controls : sequence of str
        The context-free cells (TIME) whose mean is the control.
    rare_share : ndarray
        (B,) share of the test windows whose bar holds a label above the training ``v99``.

    Returns
    -------
    dict
        Per REP cell: Spearman's rho (and p) over bars between the rare-label share and the excess BCE over
        the control (the hypothesis predicts rho > 0), and the mean excess in bars 1..train_bars and after.
    """
    from scipy import stats

    control = np.mean([np.asarray(curves[c], dtype=np.float64) for c in controls], axis=0)
    out: dict[str, Any] = {"_control": " and ".join(controls)}
    for label, curve in sorted(curves.items()):
        if "on REP" not in label and not label.startswith("REP "):
            continue
        excess = np.asarray(curve, dtype=np.float64) - control
        rho = stats.spearmanr(rare_share, excess)
        out[label] = {"rho": float(rho.statistic), "p": float(rho.pvalue),
                      "excess_first": float(excess[:train_bars].mean()),
                      "excess_later": float(excess[train_bars:].mean())}
    return out


def analyse_curves(curves_json: str | os.PathLike, out_dir: str | os.PathLike, data_root: Any = None,
                   cache_dir: Any = None, train_bars: int = 16) -> dict[str, Any]:
    """Question 3 from a report's per-bar curves (``q3_bce_per_bar_64.json``) and the data: the REP value
    statistics, the share of test windows with rare labels in each bar, :func:`bar_level_test`, and the
    matched kernel of a RoPE(B) of the ``cpu`` shape (its frequencies are fixed, so no checkpoint is needed).
    Writes ``out_dir/q3_rep_generalisation_bars.json``; returns it."""
    from stripes.fileio import atomic_write_text
    from stripes.pe import build_pe

    data = json.loads(Path(curves_json).read_text())
    bars = int(data["bars"])
    curves = {k: np.asarray(v["bce_per_bar"], dtype=np.float64) for k, v in data["curves"].items()}
    train = list(_window_labels(data_root, cache_dir, "train", train_bars).values())
    test = list(_window_labels(data_root, cache_dir, "test", bars).values())
    summary = value_summary(train, test)
    vq = summary["v_quantile_train"]
    rare = np.stack([rare_share_per_bar(w, vq)[:bars] > 0 for w in test]).mean(axis=0)
    controls = sorted(k for k in curves if k.endswith("on TIME"))
    distances = np.arange(0, max(summary["v_max_test"], 1) + 1)
    rope_b = build_pe("rope", head_dim=32, n_heads=4, context_dim=1, variant="B")
    result = {"values": summary, "rare_share_per_bar": rare.tolist(),
              "tests": bar_level_test(curves, controls, rare, train_bars) if controls else {},
              "kernel_rope_b": kernel_summary(matched_kernel(rope_b, distances), distances, vq)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "q3_rep_generalisation_bars.json", json.dumps(result, indent=1) + "\n")
    return result


# ------------------------------------------------------------------------------------------- the kernel


def matched_kernel(pe: Any, distances: np.ndarray) -> np.ndarray:
    """Content-matched score between two steps at label distance Δ, per head: (H, len(distances)),
    ``mean over pairs of cos(θ(Δ) − θ(0))`` from ``pe.theta`` (a RoPE / RoPEPool of a scalar context)."""
    import torch

    with torch.no_grad():
        p = torch.as_tensor(np.r_[0.0, np.asarray(distances, dtype=np.float64)], dtype=torch.float32)
        theta = pe.theta(p.view(1, -1, 1)).double()[0]  # (1 + n, H, D/2)
        return torch.cos(theta[1:] - theta[:1]).mean(-1).T.numpy()


def kernel_summary(k: np.ndarray, distances: np.ndarray, v_train: float) -> dict[str, Any]:
    """Mean kernel (over heads) per distance, and how it behaves beyond the training values: the largest
    |k(Δ) − k(Δ')| for Δ ≤ v_train < Δ' (how unlike any trained distance a new one can look) and the lowest
    distance at which the kernel, once it has fallen more than 0.05 below k(0), comes back within 0.05 of it
    (aliasing; None when it never does)."""
    mean = k.mean(0)
    d = np.asarray(distances)
    inside, beyond = mean[d <= v_train], mean[d > v_train]
    near = np.abs(mean - mean[0]) < 0.05
    left = np.flatnonzero(~near)  # the kernel has fallen away from k(0) ...
    back = [float(d[i]) for i in np.flatnonzero(near) if left.size and i > left[0]]  # ... and comes back
    return {"distances": d.tolist(), "kernel_mean": mean.tolist(), "kernel_per_head": k.tolist(),
            "range_inside": [float(inside.min()), float(inside.max())] if inside.size else None,
            "range_beyond": [float(beyond.min()), float(beyond.max())] if beyond.size else None,
            "first_return": back[0] if back else None}


# --------------------------------------------------------------------------------------------- the runs


def run_label(config: dict[str, Any]) -> tuple[str, str]:
    """(context, method) of a run config, as the report names them (``REP``, ``RoPE(B)``)."""
    ctx = config.get("context", "time")
    ctx = "+".join(ctx) if isinstance(ctx, list) else str(ctx)
    pe = config.get("pe", "")
    if pe == "rope":
        pe = f"RoPE({config.get('model', {}).get('pe_options', {}).get('variant', 'C')})"
    else:
        pe = {"ropepool": "RoPEPool", "fstripe1": "F-StrIPE₁"}.get(pe, pe)
    return ctx.upper(), pe


def find_position_runs(paths: Sequence[str | os.PathLike], bars: int = 64) -> list[Path]:
    """Run folders (one or two levels under each path, or the path itself) holding a positions file."""
    name = POSITIONS.format(bars=bars)
    out: set[Path] = set()
    for raw in map(Path, paths):
        for pat in (name, f"*/{name}", f"*/*/{name}"):
            out.update(p.parent for p in raw.glob(pat))
    return sorted(out)


Windows = dict[tuple[int, int], np.ndarray]  # (song id, start tick) -> per-window array


def _window_labels(data_root: Any, cache_dir: Any, split: str, bars: int) -> Windows:
    from stripes.data import HarmonizationDataset
    from stripes.data.contexts import rep_labels

    ds = HarmonizationDataset(split, "rep", bars, data_root=data_root, cache_dir=cache_dir)
    a = ds.arrays()
    t = a["window_len"]
    return {(int(sid), int(w[1])): rep_labels(np.asarray(a["chord"][s: s + t]))
            for sid, w, s in zip(a["song_id"], ds.windows, a["starts"], strict=True)}


def _cell_matrices(runs: Sequence[Path], bars: int) -> dict[tuple[str, str], Windows]:
    """Per (context, method): {(song id, start): (bars,) BCE per bar, mean over the cell's seeds}."""
    acc: dict[tuple[str, str], dict[tuple[int, int], list[np.ndarray]]] = {}
    for run in runs:
        cfg = json.loads((run / "config.json").read_text())
        pos = json.loads((run / POSITIONS.format(bars=bars)).read_text())
        cell = acc.setdefault(run_label(cfg), {})
        for (sid, start), row in zip(pos["windows"], pos["bce_window_bar"], strict=True):
            cell.setdefault((int(sid), int(start)), []).append(np.asarray(row, dtype=np.float64))
    return {k: {w: np.mean(v, axis=0) for w, v in c.items()} for k, c in acc.items()}


def _kernels(runs: Sequence[Path], distances: np.ndarray, log: Any) -> dict[tuple[str, str], np.ndarray]:
    """Per (context, method) of scalar-context RoPE / RoPEPool runs with a checkpoint: the matched kernel
    (H, n), mean over layers and seeds."""
    from stripes.train.checkpoint import load_run

    acc: dict[tuple[str, str], list[np.ndarray]] = {}
    for run in runs:
        if not (run / "checkpoints").is_dir():
            continue
        cfg = json.loads((run / "config.json").read_text())
        if cfg.get("pe") not in ("rope", "ropepool") or isinstance(cfg.get("context"), list):
            continue
        try:
            _, model, _ = load_run(run)
        except Exception as exc:  # noqa: BLE001 - one unreadable checkpoint leaves the others
            log(f"q3: skipped the kernel of {run.name} ({type(exc).__name__}: {exc})")
            continue
        ks = [matched_kernel(b.attn.pe, distances) for b in model.blocks if getattr(b.attn, "pe", None)]
        if ks:
            acc.setdefault(run_label(cfg), []).append(np.mean(ks, axis=0))
    return {k: np.mean(v, axis=0) for k, v in acc.items()}


def analyse(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, data_root: Any = None,
            cache_dir: Any = None, bars: int = 64, train_bars: int = 16, log: Any = print) -> dict[str, Any]:
    """The question-3 analysis of the runs under ``paths`` (those with ``metrics_{bars}_positions.json``):
    writes ``out_dir/q3_rep_generalisation.json`` (value statistics, the hypothesis test per REP cell, the
    kernels of the runs with checkpoints) and ``out_dir/q3_rep_generalisation.png``; returns the JSON."""
    out = Path(out_dir)
    train = list(_window_labels(data_root, cache_dir, "train", train_bars).values())
    test = _window_labels(data_root, cache_dir, "test", bars)
    summary = value_summary(train, list(test.values()))
    vq = summary["v_quantile_train"]
    runs = find_position_runs(paths, bars)
    cells = _cell_matrices(runs, bars)
    controls = [c for (ctx, _), c in cells.items() if ctx == "TIME"]
    tests: dict[str, Any] = {}
    if controls:
        common = sorted(set.intersection(*(set(c) for c in cells.values())) & set(test))
        control = np.mean([[c[w] for w in common] for c in controls], axis=0)
        rare = np.stack([rare_share_per_bar(test[w], vq)[:bars] > 0 for w in common])
        for (ctx, m), c in sorted(cells.items()):
            if ctx == "REP":
                tests[f"{ctx} {m}"] = paired_excess_test(np.stack([c[w] for w in common]), control, rare)
        tests["_control"] = " and ".join(f"{m} on TIME" for (ctx, m) in sorted(cells) if ctx == "TIME")
    distances = np.arange(0, max(summary["v_max_test"], 1) + 1)
    kernels = {f"{c} {m}": kernel_summary(k, distances, vq)
               for (c, m), k in _kernels(runs, distances, log).items()}
    curves = {f"{c} {m}": np.mean(list(v.values()), axis=0).tolist() for (c, m), v in sorted(cells.items())}
    result = {"hypothesis": HYPOTHESIS, "bars": bars, "train_bars": train_bars, "values": summary,
              "tests": tests, "kernels": kernels, "bce_per_bar": curves,
              "runs": [str(os.path.relpath(r, out)) if r.is_absolute() == out.is_absolute() else str(r)
                       for r in runs]}
    out.mkdir(parents=True, exist_ok=True)
    from stripes.fileio import atomic_write_text

    atomic_write_text(out / RESULT, json.dumps(result, indent=1) + "\n")
    figure(result, out / FIGURE)
    return result


HYPOTHESIS = ("RoPE(B) on REP is hurt at 64 bars where the REP values exceed those seen often in training: "
              "in bars holding labels above the 99th percentile of the training ticks' labels its BCE excess "
              "over the TIME models (same windows) is larger than in the other bars of the same windows")


def figure(result: dict[str, Any], path: Path) -> None:
    """Three panels: REP value shares at 16 / 64 bars, label-distance shares, and the matched kernels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = result["values"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for key, lab in (("hist_train", f"train, {result['train_bars']} bars"),
                     ("hist_test", f"test, {result['bars']} bars")):
        axes[0].plot(v[key], marker=".", label=lab)
    axes[0].axvline(v["v_quantile_train"], color="k", ls=":", lw=1)
    axes[0].set(xlabel="REP value (dotted: training 99th percentile)", ylabel="share of ticks", yscale="log")
    for key, lab in (("distance_train", "train"), ("distance_test", "test")):
        axes[1].plot(v[key], marker=".", label=lab)
    axes[1].set(xlabel="label distance |p_m − p_n|", ylabel="share of step pairs", yscale="log")
    for name, k in sorted(result["kernels"].items()):
        axes[2].plot(k["distances"], k["kernel_mean"], marker=".", label=name)
    axes[2].axvline(v["v_quantile_train"], color="k", ls=":", lw=1)
    axes[2].set(xlabel="label distance Δ", ylabel="matched score mean cos(θ(Δ) − θ(0))")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    import io

    from stripes.fileio import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stripes.analysis.rep_generalisation RUNS... --out DIR``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m stripes.analysis.rep_generalisation")
    p.add_argument("runs", nargs="*")
    p.add_argument("--out", required=True)
    p.add_argument("--curves", default=None,
                   help="a report's q3_bce_per_bar_64.json: the bar-level test (no per-window records)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    if a.curves:
        res = analyse_curves(a.curves, a.out, a.data_root, a.cache_dir)
        print(json.dumps({"values": {k: v for k, v in res["values"].items() if not isinstance(v, list)},
                          "tests": res["tests"]}, indent=1))
        return 0
    if not a.runs:
        p.error("give run folders, or --curves")
    res = analyse(a.runs, a.out, a.data_root, a.cache_dir)
    print(json.dumps({"values": {k: v for k, v in res["values"].items() if not isinstance(v, list)},
                      "tests": res["tests"]}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
