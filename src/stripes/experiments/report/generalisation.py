"""Report section of question 3, "why does RoPE fail to generalise 16 → 64 bars on REP?": the test BCE per
bar position at 64 bars of models trained on 16-bar windows (``metrics_64_positions.json``, written when
``eval.positions`` is set), one line per method and context (figure + data JSON), a table of the first 16
bars against the 48 after them, and the analysis of :mod:`stripes.analysis.rep_generalisation` when its
``q3_rep_generalisation.json`` is beside the report."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stripes.experiments.report.quality import _fmt, _p
from stripes.experiments.report.runs import Run, scores
from stripes.fileio import atomic_write_text

FIGURE = "q3_bce_per_bar_64.png"
DATA = "q3_bce_per_bar_64.json"
ANALYSIS = "q3_rep_generalisation.json"
ANALYSIS_FIGURE = "q3_rep_generalisation.png"


def position_curves(groups: dict[tuple[str, str], list[Run]], bars: int = 64
                    ) -> dict[tuple[str, str], list[np.ndarray]]:
    """Per (context, method), each seed's test BCE per bar at ``bars`` bars: from
    ``metrics_{bars}_positions.json`` (``eval.positions``), else from the per-tick ``bce_per_position`` that
    every ``metrics_{bars}.json`` holds (mean over windows; averaged here over each bar's ticks, which is the
    same mean when every window has all its bars). Runs with neither are skipped."""
    out: dict[tuple[str, str], list[np.ndarray]] = {}
    for key, runs in groups.items():
        for r in runs:
            f = r.path / f"metrics_{bars}_positions.json"
            if f.is_file():
                out.setdefault(key, []).append(np.asarray(json.loads(f.read_text())["bce_per_bar"], float))
                continue
            g = r.path / f"metrics_{bars}.json"
            per_tick = json.loads(g.read_text()).get("bce_per_position") if g.is_file() else None
            if per_tick and len(per_tick) % bars == 0:
                out.setdefault(key, []).append(np.asarray(per_tick, float).reshape(bars, -1).mean(axis=1))
    return out


def _figure(curves: dict[tuple[str, str], list[np.ndarray]], train_bars: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stripes.experiments.report.figures import _save_fig

    fig, ax = plt.subplots(figsize=(8, 4))
    for (ctx, m), arrs in sorted(curves.items()):
        y = np.mean(arrs, axis=0) * 100
        ax.plot(np.arange(1, len(y) + 1), y, label=f"{m} on {ctx} ({len(arrs)} seeds)",
                ls="-" if ctx == "REP" else "--")
    ax.axvline(train_bars + 0.5, color="k", ls=":", lw=1)
    ax.set_xlabel("bar of the 64-bar test window (dotted: training length)")
    ax.set_ylabel("test BCE×100 (mean over windows and seeds)")
    ax.legend(fontsize=7)
    _save_fig(fig, path)


def find_analysis(paths: Sequence[str | os.PathLike], out_dir: Path) -> Path | None:
    """``q3_rep_generalisation.json`` in ``out_dir``, else beside a runs folder (in it, its parent or the
    parent's ``report/``); one found elsewhere is copied into ``out_dir`` with its figure, so that a report
    folder is self-contained."""
    if (out_dir / ANALYSIS).is_file():
        return out_dir / ANALYSIS
    for raw in map(Path, paths):
        for cand in (raw / ANALYSIS, raw.parent / ANALYSIS, raw.parent / "report" / ANALYSIS):
            if cand.is_file():
                for name in (ANALYSIS, ANALYSIS_FIGURE):
                    if (cand.parent / name).is_file():
                        shutil.copyfile(cand.parent / name, out_dir / name)
                return out_dir / ANALYSIS
    return None


def q3_section(groups: dict[tuple[str, str], list[Run]], out_dir: Path,
               paths: Sequence[str | os.PathLike] = (), bars: int = 64) -> list[str]:
    """Markdown lines of the Q3 section (and the figure + data JSON); [] without per-bar curves of REP."""
    curves = position_curves(groups, bars)
    if not any(ctx == "REP" for ctx, _ in curves):  # the question is about REP; other reports go without
        return []
    train_bars = max(float(r.config.get("data", {}).get("bars", 16)) for k in curves for r in groups[k])
    tb = int(train_bars)
    _figure(curves, train_bars, out_dir / FIGURE)
    data = {"bars": bars, "train_bars": train_bars,
            "curves": {f"{m} on {c}": {"seeds": len(a), "bce_per_bar": np.mean(a, axis=0).tolist()}
                       for (c, m), a in sorted(curves.items())}}
    atomic_write_text(out_dir / DATA, json.dumps(data, indent=1) + "\n")
    md = ["## Q3 — REP and length generalisation: test BCE per bar at 64 bars", "",
          f"Models trained on {tb}-bar windows, evaluated on the {bars}-bar test windows; BCE per bar "
          f"position (mean over windows, then seeds). Figure `{FIGURE}`, data `{DATA}`. Columns: mean "
          f"BCE×100 of bars 1–{tb} and {tb + 1}–{bars}, their difference per seed (p: t-test of the "
          "differences over seeds), and the 16-bar test BCE.", "", f"![BCE per bar]({FIGURE})", "",
          f"| context | method | seeds | bars 1–{tb} | bars {tb + 1}–{bars} | later − first | p | "
          "BCE×100 at 16 bars |", "|---|---|---|---|---|---|---|---|"]
    for (ctx, m), arrs in sorted(curves.items()):
        first = [100 * a[:tb].mean() for a in arrs]
        later = [100 * a[tb:].mean() for a in arrs]
        diff = [b - a for a, b in zip(first, later, strict=True)]
        p = _one_sample_p(diff)
        b16 = [100 * v for v in scores(groups[(ctx, m)], "at_selected", "bce", 16)]
        md.append(f"| {ctx} | {m} | {len(arrs)} | {_fmt(first)} | {_fmt(later)} | {_fmt(diff, 3)} | "
                  f"{_p(p)} | {_fmt(b16)} |")
    md.append("")
    md += _analysis_lines(find_analysis(paths, out_dir))
    return md


def _one_sample_p(x: list[float]) -> float | None:
    if len(x) < 2 or float(np.std(x)) == 0.0:
        return None
    from scipy import stats

    return float(stats.ttest_1samp(x, 0.0).pvalue)


def _analysis_lines(path: Path | None) -> list[str]:
    if path is None:
        return ["(No `q3_rep_generalisation.json` beside this report: `stripes reproduce --tables "
                "q3-rep-generalisation` writes it from the runs' checkpoints and the data.)", ""]
    res: dict[str, Any] = json.loads(path.read_text())
    v = res["values"]
    md = ["### REP values at 16 and 64 bars, and the hypothesis", "",
          f"From `{ANALYSIS}` (figure `{ANALYSIS_FIGURE}`). Training windows ({res['train_bars']} bars): "
          f"REP values up to {v['v_max_train']}, 99th percentile of the ticks {v['v_quantile_train']:g}; "
          f"per-window maximum 5/50/95/100th percentiles {_pcts(v['window_max_train'])}. Test windows at "
          f"{res['bars']} bars: maximum {v['v_max_test']}, per-window maximum {_pcts(v['window_max_test'])}; "
          f"{100 * v['share_ticks_above_quantile']:.1f} % of their ticks are above the training 99th "
          f"percentile ({100 * v['share_train_ticks_above_quantile']:.1f} % in training), "
          f"{100 * v['share_ticks_above_max']:.2f} % above the training maximum, in "
          f"{100 * v['share_windows_above_quantile']:.0f} % of the windows. Median label distance between "
          f"two steps: {v['median_distance_train']:g} (training) vs {v['median_distance_test']:g} (test).",
          "",
          f"**Hypothesis.** {res['hypothesis']}.", ""]
    tests = {k: t for k, t in res.get("tests", {}).items() if not k.startswith("_")}
    if tests:
        md += [f"Control: {res['tests'].get('_control', 'TIME')}. Excess = BCE of the REP model − control's, "
               "per window and bar (×100).", "",
               "| REP model | windows | rare bars / bars | excess, rare bars | excess, other bars | "
               "paired diff (95 % CI) | p | windows diff > 0 |", "|---|---|---|---|---|---|---|---|"]
        for name, t in sorted(tests.items()):
            ci = t.get("ci95")
            ci_s = f"[{100 * ci[0]:.3f}, {100 * ci[1]:.3f}]" if ci else "–"
            md.append(f"| {name} | {t['n_windows']} | {t['n_rare_bars']} / {t['n_bars']} | "
                      f"{_x100(t['excess_rare'])} | {_x100(t['excess_other'])} | "
                      f"{_x100(t['mean_diff'])} {ci_s} | {_p(t['p'])} | {100 * t['share_positive']:.0f} % |")
        md.append("")
    ks = res.get("kernels", {})
    if ks:
        md += ["Matched score between two steps at label distance Δ (mean over heads, layers and seeds of "
               "cos(θ(Δ) − θ(0)); 1 at Δ = 0):", "",
               "| model | k(1) | k(2) | k(4) | k(8) | range for Δ ≤ v99 | range for Δ > v99 | "
               "first Δ back near 1 |",
               "|---|---|---|---|---|---|---|---|"]
        for name, k in sorted(ks.items()):
            mean = k["kernel_mean"]
            at = [f"{mean[d]:.2f}" if d < len(mean) else "–" for d in (1, 2, 4, 8)]
            ret = "–" if k["first_return"] is None else f"{k['first_return']:g}"
            md.append(f"| {name} | " + " | ".join(at) + f" | {_rng(k['range_inside'])} | "
                      f"{_rng(k['range_beyond'])} | {ret} |")
        md.append("")
    return md


def _pcts(v: list[float]) -> str:
    return "/".join(f"{x:g}" for x in v)


def _x100(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.3f}"


def _rng(r: list[float] | None) -> str:
    return "–" if not r else f"{r[0]:.2f} … {r[1]:.2f}"
