"""Report section of question 1, "is it the information?": test BCE and CS@0.5 of the runs on BIN and its
degraded variants against the variants' MI (``context_mi.json``), Spearman's correlation, where the curve
bends, whether shifted chords sit on the corruption curve, and a figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stripes.experiments.context_quality import describe, hinge_fit, interpolate, is_bin_family, spearman
from stripes.experiments.report.runs import Run, scores
from stripes.experiments.report.verdicts import _test

FIGURE = "q1_context_quality.png"
PRIMARY = "RoPEPool"
# (label, metric, setting, scale, lower is better)
MEASURES = (("test BCE×100, 16 bars", "bce", "at_selected", 100.0, True),
            ("CS@0.5, 16 bars", "cs", "at_0.5", 1.0, False))


def q1_groups(groups: dict[tuple[str, str], list[Run]]) -> dict[tuple[str, str], list[Run]]:
    """The (context, method) groups of BIN and its variants, when at least one variant was run (else {})."""
    fam = {k: v for k, v in groups.items() if is_bin_family(k[0])}
    return fam if any(c != "BIN" for c, _ in fam) else {}


def _label(ctx: str) -> str:
    kind, value = describe(ctx)
    if kind == "shift":
        return f"shift {value:+g} beat{'s' if abs(value) != 1 else ''}"
    return "none (BIN)" if value == 0 else f"corrupt {value:g}"


def _order(ctx: str) -> tuple[int, float]:
    kind, value = describe(ctx)
    return (0 if kind == "corrupt" else 1, value)


def _vals(runs: Sequence[Run], metric: str, setting: str, scale: float, bars: int = 16) -> list[float]:
    return [v * scale for v in scores(runs, setting, metric, bars)]


def _fmt(v: Sequence[float], digits: int = 2) -> str:
    if not v:
        return "–"
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{np.mean(v):.{digits}f} ± {np.std(v, ddof=1):.{digits}f}"


def _p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def _points(g: dict[tuple[str, str], list[Run]], method: str, mi: dict[str, float], metric: str,
            setting: str, scale: float, kinds: Sequence[str] = ("corrupt", "shift")
            ) -> tuple[list[float], list[float], list[tuple[str, float, list[float]]]]:
    """(per-run MI, per-run values, per-context (ctx, MI, values)) of one method."""
    xs: list[float] = []
    ys: list[float] = []
    per_ctx = []
    for ctx in sorted({c for c, m in g if m == method}, key=_order):
        if ctx not in mi or describe(ctx)[0] not in kinds:
            continue
        v = _vals(g[(ctx, method)], metric, setting, scale)
        if v:
            xs += [mi[ctx]] * len(v)
            ys += v
            per_ctx.append((ctx, mi[ctx], v))
    return xs, ys, per_ctx


def q1_section(groups: dict[tuple[str, str], list[Run]], mi_rows: Sequence[dict[str, Any]],
               out_dir: Path, mi_source: str) -> list[str]:
    """Markdown lines of the Q1 section (and ``out_dir/q1_context_quality.png``); [] without BIN variants."""
    g = q1_groups(groups)
    if not g:
        return []
    mi = {str(r["context"]).upper(): float(r["plugin"]) for r in mi_rows}
    shuffle = {str(r["context"]).upper(): float(r.get("shuffle", math.nan)) for r in mi_rows}
    methods = sorted({m for _, m in g}, key=lambda m: (m != PRIMARY, m))
    ctxs = sorted({c for c, _ in g}, key=_order)
    md = ["## Q1 — context quality against performance (is it the information?)", "",
          "BIN with its chords degraded on purpose: each chord span's chroma replaced, with probability r, "
          "by another chord's (drawn from the training songs' chord distribution, one draw per song for "
          "every split and window), or the chords moved k beats later. The model is trained, validated and "
          "tested with the degraded context. MI: pitch of the melody/bridge cells vs the context's "
          f"chroma, training windows, nats (plug-in and shuffle-corrected, as P1 Table I; {mi_source}).", ""]
    if not mi:
        md += ["No context MI table found (`context_mi.json`; `stripes reproduce --tables "
               "q1-context-quality` writes it): the table below has no MI column and no correlation.", ""]
    head = "| context | degradation | MI plug-in | MI shuffle | " + " | ".join(
        f"{m}: n, BCE×100 16 / CS@0.5 16 / BCE×100 64" for m in methods) + " |"
    md += [head, "|" + "---|" * (4 + len(methods))]
    for ctx in ctxs:
        cells = []
        for m in methods:
            rs = g.get((ctx, m), [])
            cells.append("–" if not rs else f"{len(rs)}: {_fmt(_vals(rs, 'bce', 'at_selected', 100.0))} / "
                         f"{_fmt(_vals(rs, 'cs', 'at_0.5', 1.0), 1)} / "
                         f"{_fmt(_vals(rs, 'bce', 'at_selected', 100.0, 64))}")
        mi_txt = f"{mi[ctx]:.4f}" if ctx in mi else "–"
        sh_txt = f"{shuffle[ctx]:.4f}" if ctx in shuffle and math.isfinite(shuffle[ctx]) else "–"
        md.append(f"| {ctx} | {_label(ctx)} | {mi_txt} | {sh_txt} | " + " | ".join(cells) + " |")
    md.append("")
    main = PRIMARY if PRIMARY in methods else methods[0]
    if mi:
        md += _correlations(g, main, mi) + _kept(g, main, mi) + _shift_vs_corrupt(g, main, mi)
    md += _method_gap(g, methods)
    if mi and _figure(g, methods, mi, out_dir / FIGURE):
        md += [f"![Q1: BCE and CS@0.5 against MI]({FIGURE})", ""]
    return md


def _correlations(g: dict[tuple[str, str], list[Run]], method: str, mi: dict[str, float]) -> list[str]:
    md = [f"### {method}: performance against MI", "",
          "Spearman's ρ (two-sided p: exact, over every permutation, up to 8 points; scipy's t "
          "approximation beyond) over runs (every seed a point) and over context means; "
          "the bend is the best continuous two-segment line through the context means (break among the "
          "measured MI values; *explained* = share of a single line's squared error it removes).", "",
          "| measure | contexts | ρ over runs (p, n) | ρ over means (p, n) | bend at MI "
          "| slope below / above |",
          "|---|---|---|---|---|---|"]
    for label, metric, setting, scale, _lower in MEASURES:
        for subset, kinds in (("all", ("corrupt", "shift")), ("corruption only", ("corrupt",))):
            xs, ys, per_ctx = _points(g, method, mi, metric, setting, scale, kinds)
            if len(per_ctx) < 2:
                continue
            rho, p, n = spearman(xs, ys)
            mx = [x for _, x, _ in per_ctx]
            my = [float(np.mean(v)) for _, _, v in per_ctx]
            rho_m, p_m, n_m = spearman(mx, my)
            h = hinge_fit(mx, my)
            bend = (f"{h['break']:.3f} nats ({h['explained']:.0%} explained)",
                    f"{h['slope_below']:.3g} / {h['slope_above']:.3g} per nat") if h else ("–", "–")
            md.append(f"| {label} | {subset} | {rho:.2f} ({_p(p)}, {n}) | {rho_m:.2f} ({_p(p_m)}, {n_m}) | "
                      f"{bend[0]} | {bend[1]} |")
    md.append("")
    return md


def _kept(g: dict[tuple[str, str], list[Run]], method: str, mi: dict[str, float]) -> list[str]:
    """Each context's share of what BIN has: of its MI, and of its gain over the fully corrupted context
    (rate 1, chords unrelated to the music) in BCE and CS@0.5."""
    ends = {}
    for label, metric, setting, scale, _lower in MEASURES:
        v0 = _vals(g.get(("BIN", method), []), metric, setting, scale)
        v1 = _vals(g.get(("BIN_CORRUPT1", method), []), metric, setting, scale)
        if v0 and v1 and np.mean(v0) != np.mean(v1):
            ends[label] = (float(np.mean(v0)), float(np.mean(v1)))
    if not ends or "BIN" not in mi:
        return []
    lines = []
    for ctx in sorted({c for c, m in g if m == method and c in mi}, key=_order):
        cells = []
        for label, metric, setting, scale, _lower in MEASURES:
            v = _vals(g[(ctx, method)], metric, setting, scale)
            if label in ends and v:
                best, none = ends[label]
                share = 100 * (float(np.mean(v)) - none) / (best - none)
                cells.append(f"{share:.0f} %" if abs(share) >= 0.5 else "0 %")
            else:
                cells.append("–")
        lines.append(f"| {ctx} | {100 * mi[ctx] / mi['BIN']:.0f} % | " + " | ".join(cells) + " |")
    return [f"### {method}: what each context keeps of BIN", "",
            "MI as a share of BIN's; performance as the share of BIN's gain over the fully corrupted context "
            "(rate 1: chords unrelated to the music), means over seeds.", "",
            "| context | MI kept | " + " | ".join(f"{lab} gain kept" for lab, *_ in MEASURES) + " |",
            "|---|---|" + "---|" * len(MEASURES), *lines, ""]


def _shift_vs_corrupt(g: dict[tuple[str, str], list[Run]], method: str, mi: dict[str, float]) -> list[str]:
    """Do the shifted contexts sit on the curve the corrupted ones draw (MI explains them), or off it?"""
    lines = []
    for label, metric, setting, scale, lower in MEASURES:
        _, _, corrupt = _points(g, method, mi, metric, setting, scale, ("corrupt",))
        _, _, shifted = _points(g, method, mi, metric, setting, scale, ("shift",))
        if len(corrupt) < 2 or not shifted:
            continue
        cx = [x for _, x, _ in corrupt]
        cy = [float(np.mean(v)) for _, _, v in corrupt]
        for ctx, x, v in shifted:
            at = interpolate(cx, cy, x)
            if math.isfinite(at):
                d = float(np.mean(v)) - at
                better = (d < 0) == lower
                lines.append(f"| {ctx} | {label} | {x:.4f} | {np.mean(v):.2f} | {at:.2f} | {d:+.2f} "
                             f"({'better' if better else 'worse'} than corruption at equal MI) |")
            else:
                lines.append(f"| {ctx} | {label} | {x:.4f} | {np.mean(v):.2f} | outside the corruption "
                             "curve's MI range | – |")
    if not lines:
        return []
    return [f"### {method}: shifted chords against the corruption curve at the same MI", "",
            "The corruption curve (context means, linearly interpolated in MI) read at each shifted "
            "context's MI; a shifted context off the curve performs differently from what its MI predicts.",
            "", "| context | measure | MI | mean | corruption curve at that MI | difference |",
            "|---|---|---|---|---|---|", *lines, ""]


def _method_gap(g: dict[tuple[str, str], list[Run]], methods: Sequence[str]) -> list[str]:
    """Each pair of methods on the contexts both ran: means and the t-test of the report (Levene, then
    Student or Welch)."""
    if len(methods) < 2:
        return []
    a = methods[0]
    lines = []
    for b in methods[1:]:
        for ctx in sorted({c for c, m in g if m == b and (c, a) in g}, key=_order):
            for label, metric, setting, scale, _lower in MEASURES:
                va = _vals(g[(ctx, a)], metric, setting, scale)
                vb = _vals(g[(ctx, b)], metric, setting, scale)
                if va and vb:
                    diff = float(np.mean(va) - np.mean(vb))
                    lines.append(f"| {ctx} | {label} | {_fmt(va)} | {_fmt(vb)} | {diff:+.2f} "
                                 f"| {_p(_test(va, vb))} |")
    if not lines:
        return []
    return ["### Methods on the same degraded context", "",
            f"| context | measure | {a} | other ({', '.join(methods[1:])}) | difference | p |",
            "|---|---|---|---|---|---|", *lines, ""]


def _figure(g: dict[tuple[str, str], list[Run]], methods: Sequence[str], mi: dict[str, float],
            path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stripes.experiments.report.figures import _save_fig

    fig, axes = plt.subplots(1, len(MEASURES), figsize=(6.2 * len(MEASURES), 4.2))
    drawn = False
    for ax, (label, metric, setting, scale, lower) in zip(axes, MEASURES, strict=True):
        for i, m in enumerate(methods):
            color = f"C{i}"
            for kinds, fmt, ls in ((("corrupt",), "o", "-"), (("shift",), "^", ":")):
                _, _, per = _points(g, m, mi, metric, setting, scale, kinds)
                if not per:
                    continue
                per = sorted(per, key=lambda t: t[1])
                x = [p[1] for p in per]
                y = [float(np.mean(p[2])) for p in per]
                e = [float(np.std(p[2], ddof=1)) if len(p[2]) > 1 else 0.0 for p in per]
                name = f"{m}, {'corrupted' if kinds == ('corrupt',) else 'shifted'}"
                ax.errorbar(x, y, yerr=e, fmt=fmt, ls=ls, color=color, capsize=3, label=name)
                for (ctx, xx, _), yy in zip(per, y, strict=True):
                    kind, value = describe(ctx)
                    ax.annotate(f"r={value:g}" if kind == "corrupt" else f"+{value:g}b", (xx, yy),
                                textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
                drawn = True
        _, _, per = _points(g, methods[0], mi, metric, setting, scale, ("corrupt",))
        h = hinge_fit([p[1] for p in per], [float(np.mean(p[2])) for p in per]) if per else None
        if h is not None:
            ax.axvline(h["break"], color="grey", ls="--", lw=0.8, label=f"bend ({methods[0]}, corrupted)")
        ax.set_xlabel("MI content/context (nats, plug-in)")
        ax.set_title(f"{label} ({'lower' if lower else 'higher'} is better)")
    if not drawn:
        plt.close(fig)
        return False
    axes[0].legend(fontsize=7)
    _save_fig(fig, path)
    return True
