"""Figures and the inputs they need: P1 Fig. 4 (scores against MI), per-position BCE curves, the MI table
files, the binarization summary and the pianorolls copied beside a report."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stripes.analysis.published import COLUMNS, P1_TABLE_I
from stripes.errors import DataError
from stripes.experiments.report.runs import (
    HIGHER,
    METRICS,
    P1_CONTEXTS,
    ROPES,
    Run,
    best_on_validation,
    scores,
)
from stripes.fileio import atomic_path, atomic_write_bytes

# -------------------------------------------------------------------------------------------------- MI


def find_mi(paths: Sequence[str | os.PathLike], mi_path: str | os.PathLike | None = None) -> Path | None:
    """The MI JSON to use: ``mi_path``, else ``mi.json`` or ``mi/mi.json`` in or beside a run path (beside:
    a committed report folder holds ``mi.json`` next to its ``runs/``)."""
    if mi_path is not None:
        p = Path(mi_path)
        if not p.is_file():
            raise DataError(f"MI table not found: {p}")
        return p
    for raw in paths:
        p = Path(raw)
        for c in (p / "mi.json", p / "mi" / "mi.json", p.parent / "mi" / "mi.json", p.parent / "mi.json"):
            if c.is_file():
                return c
    return None


def load_mi(path: Path) -> list[dict[str, Any]]:
    """Rows of an MI JSON written by :func:`stripes.analysis.mi.write_mi_table`."""
    try:
        d = json.loads(path.read_text())
        rows = d["rows"]
        for r in rows:
            float(r["plugin"])
            str(r["context"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path} is not an MI table (expected rows with 'context' and 'plugin')") from exc
    return rows


# ---------------------------------------------------------------------------------------------- figures


def _save_fig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def fig_mi(groups: dict[tuple[str, str], list[Run]], mi: dict[str, float], path: Path) -> None:
    """P1 Fig. 4: in-domain scores of the P1 methods against MI (log x), ours filled, P1 hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stripes.analysis.published import P1_TABLE_III

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    colors = {"RoPE": "C0", "F-StrIPE₁": "C1", "RoPEPool": "C2"}
    for ax, metric in zip(axes, METRICS, strict=True):
        col = COLUMNS.index((metric, 16))
        for fam, color in colors.items():
            xs, ys, es = [], [], []
            for ctx in P1_CONTEXTS:
                m = best_on_validation(groups, ctx, ROPES) if fam == "RoPE" else fam
                v = scores(groups.get((ctx, m), []), "at_selected", metric, 16) if m else []
                if v and ctx in mi and mi[ctx] > 0:
                    xs.append(mi[ctx])
                    ys.append(float(np.mean(v)))
                    es.append(float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
            if xs:
                ax.errorbar(xs, ys, yerr=es, fmt="o-", color=color, label=f"{fam} (ours)", capsize=3)
            pub = [(P1_TABLE_I[c], cell) for (c, m), row in P1_TABLE_III.items()
                   if (m == fam or (fam == "RoPE" and m in ROPES)) for cell in [row[col]]]
            pts = sorted((x, float(cell.split("±")[0])) for x, cell in pub)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "s--", mfc="none", color=color, alpha=0.6,
                    label=f"{fam} (P1)")
        ax.set_xscale("log")
        ax.set_xlabel("MI content/context (nats)")
        ax.set_title(f"{metric.upper()}{'↑' if HIGHER[metric] else '↓'} at 16 bars")
    axes[0].legend(fontsize=7)
    _save_fig(fig, path)


def _train_ticks(cfg: dict[str, Any]) -> int:
    """Longest training window of a run in ticks (train.max_len, else data.bars x 64)."""
    t = cfg.get("train", {}).get("max_len")
    return int(t) if t else int(cfg.get("data", {}).get("bars", 16)) * 64


def fig_bce(
    groups: dict[tuple[str, str], list[Run]], path: Path, bars: int = 64, bin_ticks: int = 64
) -> bool:
    """Per-position test BCE at ``bars`` bars (mean over seeds, averaged per bar); one panel per context;
    a dotted line marks the training length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for (ctx, m), runs in groups.items():
        arrs = [np.asarray(r.metrics[bars]["bce_per_position"], dtype=float) for r in runs
                if bars in r.metrics and r.metrics[bars].get("bce_per_position")]
        if not arrs:
            continue
        n = min(len(a) for a in arrs)
        mean = np.mean([a[:n] for a in arrs], axis=0)
        nb = max(1, n // bin_ticks)
        curves[ctx][m] = mean[: nb * bin_ticks].reshape(nb, -1).mean(axis=1) if n >= bin_ticks else mean
    if not curves:
        return False
    train_ticks = max(_train_ticks(r.config) for rs in groups.values() for r in rs)
    ctxs = sorted(curves, key=lambda c: (P1_CONTEXTS.index(c) if c in P1_CONTEXTS else 9, c))
    fig, axes = plt.subplots(1, len(ctxs), figsize=(4.2 * len(ctxs), 3.5), squeeze=False)
    for ax, ctx in zip(axes[0], ctxs, strict=True):
        for m, y in sorted(curves[ctx].items()):
            x = (np.arange(len(y)) + 0.5) * bin_ticks
            ax.plot(x, y, label=m)
        ax.axvline(train_ticks, color="k", ls=":", lw=1)
        ax.set_title(ctx)
        ax.set_xlabel("position (ticks); dotted = training length")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"test BCE at {bars} bars")
    _save_fig(fig, path)
    return True


def binarization_summary(runs: Sequence[Run]) -> list[str]:
    """Markdown lines: how often each (threshold, merge) was chosen on validation, per window length, and
    a warning when some choices sit at the edge of the threshold grid."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    edge = 0
    for r in runs:
        for bars, m in r.metrics.items():
            sel = m.get("selected", {})
            merge = sel.get("merge")
            counts[bars][("mono " if sel.get("mono") else "") + f"{sel.get('threshold')}"
                         + ("" if merge is None else f" + merge {merge}")] += 1
            edge += bool(sel.get("at_grid_edge"))
    if not counts:
        return []
    lines = ["Binarization chosen on validation (threshold [+ merge]: runs): " + "; ".join(
        f"{bars} bars: " + ", ".join(f"{k}: {n}" for k, n in sorted(c.items(), key=lambda kv: -kv[1]))
        for bars, c in sorted(counts.items())), ""]
    if edge:
        lines += [f"⚠ {edge} choices lie at the edge of the threshold grid: widen "
                  "`eval.thresholds` (`stripes evaluate RUN --set eval.thresholds=[...]`).", ""]
    return lines


def _run_pngs(run: Run, kept: set[str]) -> dict[str, tuple[str, Path | None]]:
    """Example folder (``examples_16``) -> (file name in the report, PNG to copy): the run's own first PNG of
    each folder; a run without examples of its own (a committed record) keeps the ones an earlier report
    of it left under its name (source None: already in place)."""
    out: dict[str, tuple[str, Path | None]] = {}
    for png in run.pianorolls:
        out.setdefault(png.parent.name, (f"{run.path.name}_{png.parent.name}_{png.name}", png))
    if not out:
        prefix = f"{run.path.name}_examples_"
        for name in sorted(kept):
            if name.startswith(prefix):
                # <run>_examples_16_song006_t0.png -> examples_16
                folder = "_".join(name[len(run.path.name) + 1:].split("_", 2)[:2])
                out.setdefault(folder, (name, None))
    return out


def copy_pianorolls(groups: dict[tuple[str, str], list[Run]], dest: Path) -> list[tuple[str, str, str]]:
    """Copy the first 16- and 64-bar example PNG of each method's lowest-seed run, for one context (BIN when
    present), into ``dest`` so that the report is self-contained. Returns (context, method, path relative
    to ``dest.parent``) per copied image. Old PNGs in ``dest`` are removed, except those of shown runs whose
    folder has no examples (a report remade from its committed records keeps its pianorolls)."""
    kept = {p.name for p in dest.glob("*.png")} if dest.is_dir() else set()
    pngs = {id(r): _run_pngs(r, kept) for rs in groups.values() for r in rs}
    ctxs = sorted({c for (c, _), rs in groups.items() if any(pngs[id(r)] for r in rs)},
                  key=lambda c: (c != "BIN", c))
    shown = []
    for (ctx, m), rs in sorted(groups.items()):
        if not ctxs or ctx != ctxs[0]:
            continue
        runs = sorted((r for r in rs if pngs[id(r)]), key=lambda r: r.seed)
        if not runs:
            continue
        for name, src in pngs[id(runs[0])].values():
            if src is not None:
                atomic_write_bytes(dest / name, src.read_bytes())
            shown.append((ctx, m, f"{dest.name}/{name}"))
    for name in kept - {rel.split("/", 1)[1] for _, _, rel in shown}:
        (dest / name).unlink()
    return shown


