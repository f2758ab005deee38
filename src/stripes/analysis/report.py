"""Markdown report of finished runs in the layout of P1 Tables II-III and P2 Table I, with figures.

:func:`make_report` collects run folders (``config.json`` + ``metrics_{16,64}.json``), groups them by
(context, method), keeps per (context, method) the learning rate with the lowest mean validation BCE (from
``log.csv``), and writes ``report.md`` with mean ± std over seeds next to the published numbers, P1's
significance marks (§10.5, :func:`stripes.analysis.stats.significance_marks`), a threshold-free companion
table (test BCE, note F1), the binarizations chosen on validation, MI table and Fig. 4, per-position BCE
curves at 64 bars, a few pianorolls copied beside the report, and verdicts on P1's claims.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stripes.analysis.published import (
    COLUMNS,
    P1_BEST_ROPE,
    P1_TABLE_I,
    TABLES,
    Cell,
    published_cells,
)
from stripes.errors import DataError
from stripes.fileio import atomic_path, atomic_write_bytes, atomic_write_text

METRICS = ("cs", "ssmd", "gs", "ndd")
HIGHER = {"cs": True, "ssmd": False, "gs": True, "ndd": False,
          "bce": False, "onset_f1": True, "frame_f1": True}
# threshold-free test BCE and note-level F1 (at the selected binarization); shown x100
EXTRA_COLUMNS: tuple[tuple[str, int], ...] = tuple(
    (m, b) for m in ("bce", "onset_f1", "frame_f1") for b in (16, 64))
EXTRA_NAMES = {"bce": "BCE×100", "onset_f1": "onset F1 %", "frame_f1": "frame F1 %"}
P1_CONTEXTS = ("TIME", "REP", "KEY", "BIN")
ROPES = ("RoPE(A)", "RoPE(B)", "RoPE(C)")
P1_T3_OTHERS = ("F-StrIPE₁", "RoPEPool")
P2_METHODS = ("NoPE", "S S-RPE", "SPE", "F-StrIPE", "F-StrIPE:M", "F-StrIPE:C", "F-StrIPE:P", "F-StrIPE:SFF",
              "F-StrIPE:SFF:C")
SETTINGS = {
    "at_selected": "binarization selected on validation (onset F1)",
    "at_0.5": "fixed 0.5 threshold (comparable to P1)",
}
ALPHA = 0.05
_P2_LEVELS = {"melody": "M", "m": "M", "chord": "C", "c": "C", "phrase": "P", "p": "P"}


# ------------------------------------------------------------------------------------------------ labels


def _contexts(cfg: dict[str, Any]) -> list[str]:
    c = cfg.get("context", "time")
    return [c] if isinstance(c, str) else list(c)


def context_label(cfg: dict[str, Any]) -> str:
    """``"bin"`` -> ``"BIN"``; several contexts -> ``"MELODY+CHORD+PHRASE"``."""
    return "+".join(c.upper() for c in _contexts(cfg))


def method_label(cfg: dict[str, Any]) -> str:
    """Paper name of a run's method from its resolved config (pe, pe_options, context)."""
    pe = cfg.get("pe", "")
    opts = cfg.get("model", {}).get("pe_options", {}) or {}
    if pe == "rope":
        return f"RoPE({opts.get('variant', 'C')})"
    if pe in ("fstripe", "fstripe_sff"):
        levels = [_P2_LEVELS.get(c.lower()) for c in _contexts(cfg)]
        base = "F-StrIPE" if pe == "fstripe" else "F-StrIPE:SFF"
        if None in levels:
            return f"{base}[{context_label(cfg)}]"
        if sorted(levels, key="MCP".index) == ["M", "C", "P"]:  # type: ignore[arg-type]
            return base
        return f"{base}:{''.join(sorted(levels, key='MCP'.index))}"  # type: ignore[arg-type]
    names = {"nope": "NoPE", "srpe": "S S-RPE", "spe": "SPE", "fstripe1": "F-StrIPE₁", "ropepool": "RoPEPool",
             "ape": "APE", "sape": "S-APE"}
    return names.get(pe, pe)


# ------------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One finished (or partly evaluated) run folder."""

    path: Path
    config: dict[str, Any]
    metrics: dict[int, dict[str, Any]]
    val_bce: float | None = None
    pianorolls: list[Path] = field(default_factory=list)

    @property
    def method(self) -> str:
        return method_label(self.config)

    @property
    def context(self) -> str:
        return context_label(self.config)

    @property
    def lr(self) -> float:
        return float(self.config.get("train", {}).get("lr", float("nan")))

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))


def _best_val_bce(log: Path) -> float | None:
    try:
        with open(log, newline="") as fh:
            vals = [float(r["val_bce"]) for r in csv.DictReader(fh) if r.get("val_bce") not in (None, "")]
    except (OSError, KeyError, ValueError):
        return None
    vals = [v for v in vals if math.isfinite(v)]
    return min(vals) if vals else None


def load_run(path: str | os.PathLike) -> Run | None:
    """A run from its folder, or None when it has no metrics yet. Malformed files raise DataError."""
    p = Path(path)
    try:
        config = json.loads((p / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{p / 'config.json'} is not valid JSON: {exc}") from exc
    metrics: dict[int, dict[str, Any]] = {}
    for f in sorted(p.glob("metrics_*.json")):
        stem = f.stem.split("_", 1)[1]
        if not stem.isdigit():
            continue
        try:
            m = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{f} is not valid JSON: {exc}") from exc
        if "at_selected" not in m or "at_0.5" not in m:
            raise DataError(f"{f} lacks 'at_selected' / 'at_0.5' (not a metrics file of stripes.evaluate)")
        metrics[int(stem)] = m
    if not metrics:
        return None
    pngs = sorted(p.glob("examples_*/*.png"))
    return Run(p, config, metrics, _best_val_bce(p / "log.csv"), pngs)


def collect_runs(paths: Sequence[str | os.PathLike]) -> list[Run]:
    """Runs found in ``paths``: each a run folder or a folder holding run folders (two levels deep)."""
    found: dict[Path, Run] = {}
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"no such run folder: {p}")
        cands = [p] if (p / "config.json").is_file() else sorted(
            {c.parent for pat in ("*/config.json", "*/*/config.json") for c in p.glob(pat)})
        for c in cands:
            r = load_run(c)
            if r is not None:
                found[c.resolve()] = r
    return list(found.values())


def select_lr(runs: Sequence[Run]) -> tuple[list[Run], dict[tuple[str, str], float]]:
    """Per (context, method) keep the runs of the learning rate with the lowest mean validation BCE (ties or
    no log: the lr with most seeds, then the smallest). Returns the kept runs and the chosen lr per group."""
    groups: dict[tuple[str, str], dict[float, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r.context, r.method)][r.lr].append(r)
    kept: list[Run] = []
    chosen: dict[tuple[str, str], float] = {}
    for key, by_lr in groups.items():
        def score(lr: float, by_lr: dict[float, list[Run]] = by_lr) -> tuple[float, int, float]:
            vals = [r.val_bce for r in by_lr[lr] if r.val_bce is not None]
            return (float(np.mean(vals)) if vals else math.inf, -len(by_lr[lr]), lr)

        best = min(by_lr, key=score)
        chosen[key] = best
        kept.extend(sorted(by_lr[best], key=lambda r: r.seed))
    return kept, chosen


def scores(runs: Sequence[Run], setting: str, metric: str, bars: int) -> list[float]:
    """Per-seed values of one metric (runs lacking that evaluation are skipped). ``"bce"`` is threshold-free:
    it is read from the top level of the metrics whatever ``setting`` says."""
    out = []
    for r in runs:
        m = r.metrics.get(bars)
        if m is None:
            continue
        src = m if metric == "bce" else m.get(setting, {})
        if metric in src:
            out.append(float(src[metric]))
    return out


# ------------------------------------------------------------------------------------------------ stats


def _marks(group: dict[Any, list[float]], higher: bool) -> dict[Any, str]:
    """P1's marks over the methods with >= 2 seeds (fewer: no test, no marks)."""
    from stripes.analysis.stats import significance_marks

    ok = {k: v for k, v in group.items() if len(v) >= 2}
    if len(ok) < 2:
        return {}
    with warnings.catch_warnings():  # Levene on constant samples divides by zero; stats handles the NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return significance_marks(ok, higher)


def _test(a: Sequence[float], b: Sequence[float]) -> float | None:
    from stripes.analysis.stats import compare

    if len(a) < 2 or len(b) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(compare(a, b)["p"])


@dataclass
class Comparison:
    """``a`` claimed better than ``b`` on one metric."""

    what: str
    a: list[float]
    b: list[float]
    higher: bool

    @property
    def p(self) -> float | None:
        return _test(self.a, self.b)

    @property
    def status(self) -> str:
        if not self.a or not self.b:
            return "missing"
        diff = float(np.mean(self.a) - np.mean(self.b)) * (1 if self.higher else -1)
        p = self.p
        if p is not None and p < ALPHA:
            return "holds" if diff > 0 else "reversed"
        return "within noise"

    def describe(self) -> str:
        if not self.a or not self.b:
            return f"{self.what}: no runs"
        p = self.p
        ptxt = "no test (<2 seeds)" if p is None else f"p={p:.3g}"
        a, b = _short(np.mean(self.a)), _short(np.mean(self.b))
        return f"{self.what}: {a} vs {b} ({ptxt}, n={len(self.a)}/{len(self.b)}) → {self.status}"


def _short(x: float) -> str:
    """Two decimals for scores, four for small quantities such as BCE."""
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.4f}"


def verdict(comps: Sequence[Comparison]) -> str:
    """reproduced (all hold) / not reproduced (one significantly reversed) / not separable at this scale."""
    comps = [c for c in comps if c.status != "missing"]
    if not comps:
        return "not evaluated (no runs)"
    if any(c.status == "reversed" for c in comps):
        return "not reproduced"
    if all(c.status == "holds" for c in comps):
        return "reproduced"
    return "not separable at this scale"


# ----------------------------------------------------------------------------------------------- tables


@dataclass
class Table:
    key: str
    rows: list[tuple[str, str]]  # (context, method); context "" for P2
    notes: list[str] = field(default_factory=list)


def _fmt(vals: list[float], scale: float = 1.0) -> str:
    if not vals:
        return "–"
    a = np.asarray(vals) * scale
    if a.size == 1:  # one seed: no spread to report
        return f"{a[0]:.2f}"
    return f"{a.mean():.2f} ± {float(a.std(ddof=1)):.2f}"


def _best_rope(groups: dict[tuple[str, str], list[Run]], ctx: str) -> str | None:
    cands = [m for m in ROPES if groups.get((ctx, m))]
    if not cands:
        return None
    return max(cands, key=lambda m: np.mean(scores(groups[(ctx, m)], "at_selected", "cs", 16) or [-math.inf]))


def plan_tables(groups: dict[tuple[str, str], list[Run]]) -> list[Table]:
    """Which paper tables the runs fill, with their rows."""
    tables = []
    t2 = [(c, m) for c in P1_CONTEXTS for m in ROPES if groups.get((c, m))]
    t2_full = any(sum(1 for cc, _ in t2 if cc == c) > 1 for c in P1_CONTEXTS)
    has_t3 = any(groups.get((c, m)) for c in P1_CONTEXTS for m in P1_T3_OTHERS)
    if t2 and (t2_full or not has_t3):
        tables.append(Table("p1-table2", t2))
    t3: list[tuple[str, str]] = []
    notes = []
    if t2 and not t2_full and has_t3:
        notes.append("P1 Table II is not shown: one RoPE variant per context was run (the rows of "
                     "Table III); run the p1-table2 sweep for all three")
    if any(groups.get((c, m)) for c in P1_CONTEXTS for m in P1_T3_OTHERS):
        for c in P1_CONTEXTS:
            rope = _best_rope(groups, c)
            if rope is not None:
                t3.append((c, rope))
                notes.append(f"{c}: best RoPE by our in-domain CS is {rope} (P1 chose {P1_BEST_ROPE[c]})")
            t3.extend((c, m) for m in P1_T3_OTHERS if groups.get((c, m)))
        tables.append(Table("p1-table3", t3, notes))
    p2 = []
    for m in P2_METHODS:
        ctxs = sorted(c for (c, mm) in groups if mm == m)
        p2.extend((c, m) for c in ctxs)
    if p2:
        tables.append(Table("p2-table1", p2, ["SSMD of our runs is shown ×2 (P2 scales SSMD by 100, "
                                              "P1 and our metrics by 50; papers.md §10.2)"]))
    return tables


def render_table(table: Table, groups: dict[tuple[str, str], list[Run]], setting: str,
                 columns: Sequence[tuple[str, int]] = COLUMNS) -> list[str]:
    """Markdown lines of one table at one binarization setting: our mean ± std and marks, then the
    published row (paper columns only). ``columns`` = (metric, bars) pairs; :data:`EXTRA_COLUMNS` gives the
    threshold-free / note-level table, shown ×100."""
    p1 = table.key.startswith("p1")
    paper_cols = tuple(columns) == COLUMNS
    scale = dict.fromkeys(HIGHER, 100.0)
    if paper_cols:
        scale = {"ssmd": 2.0} if table.key == "p2-table1" else {}
    head = ["context", "method", "source", "n"] + [
        f"{EXTRA_NAMES.get(m, m.upper())}{'↑' if HIGHER[m] else '↓'}{'' if b == 16 else ' (64)'}"
        for m, b in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    # P1: methods compared within a context; P2: all rows compared together
    blocks = ([[r for r in table.rows if r[0] == c] for c in dict.fromkeys(c for c, _ in table.rows)]
              if p1 else [list(table.rows)])
    for block in blocks:
        marks: dict[tuple[str, int], dict[tuple[str, str], str]] = {}
        best: dict[tuple[str, int], tuple[str, str]] = {}
        for metric, bars in columns:
            grp = {row: scores(groups[row], setting, metric, bars) for row in block}
            grp = {row: v for row, v in grp.items() if v}
            if p1:
                marks[(metric, bars)] = _marks(grp, HIGHER[metric])
            if len(grp) > 1:
                sign = 1 if HIGHER[metric] else -1
                best[(metric, bars)] = max(grp, key=lambda k, g=grp, s=sign: s * float(np.mean(g[k])))
        for ctx, m in block:
            runs = groups[(ctx, m)]
            cells = []
            for metric, bars in columns:
                txt = _fmt(scores(runs, setting, metric, bars), scale.get(metric, 1.0))
                txt += marks.get((metric, bars), {}).get((ctx, m), "")
                if best.get((metric, bars)) == (ctx, m):
                    txt = f"**{txt}**"
                cells.append(txt)
            lab = ctx if p1 else ctx.lower()
            lines.append("| " + " | ".join([lab, m, "ours", str(len(runs))] + cells) + " |")
            pub = published_cells(table.key, ctx if p1 else None, m) if paper_cols else None
            if pub is not None and (p1 or ctx == _p2_context(m)):
                pcells = ["⧹" if pub[col] is None else _pub_text(pub[col]) for col in COLUMNS]
                n = "5" if p1 else "3"
                lines.append("| " + " | ".join([lab, m, "P1" if p1 else "P2", n] + pcells) + " |")
    return lines


def _pub_text(cell: Cell | None) -> str:
    return "⧹" if cell is None else cell.text


def _p2_context(method: str) -> str:
    from stripes.sweep import load_sweep

    for m in load_sweep("p2-table1")["methods"]:
        if m["label"] == method:
            c = m["context"]
            return "+".join(x.upper() for x in ([c] if isinstance(c, str) else c))
    return ""


# ----------------------------------------------------------------------------------------------- claims


def claims(groups: dict[tuple[str, str], list[Run]], mi: dict[str, float] | None,
           setting: str = "at_selected") -> list[dict[str, Any]]:
    """P1's claims with a verdict and the comparisons behind it."""
    out: list[dict[str, Any]] = []
    p1_methods = ROPES + P1_T3_OTHERS
    if mi and all(c in mi for c in P1_CONTEXTS):
        order = sorted(P1_CONTEXTS, key=lambda c: -mi[c])
        ok = order == ["BIN", "KEY", "REP", "TIME"]
        out.append({"claim": "MI ranking BIN > KEY > REP > TIME (P1 Table I)",
                    "verdict": "reproduced" if ok else "not reproduced",
                    "details": [" > ".join(f"{c} {mi[c]:.4f}" for c in order) + " nats (plug-in)"]})

    def best_of(ctx: str, metric: str) -> tuple[str, list[float]] | None:
        cands = {m: scores(groups.get((ctx, m), []), setting, metric, 16) for m in p1_methods}
        cands = {m: v for m, v in cands.items() if v}
        if not cands:
            return None
        sign = 1.0 if HIGHER[metric] else -1.0
        m = max(cands, key=lambda k: sign * float(np.mean(cands[k])))
        return m, cands[m]

    rope = _best_rope(groups, "BIN")
    for metric, suffix in (("cs", ""), ("bce", " — threshold-free test BCE")):
        name = "BCE" if metric == "bce" else "CS"
        comps = []
        ranking = ["BIN", "KEY", "REP", "TIME"]
        for hi, lo in zip(ranking, ranking[1:], strict=False):
            a, b = best_of(hi, metric), best_of(lo, metric)
            what = f"{name}@16 best {hi} ({a[0] if a else '-'}) vs best {lo} ({b[0] if b else '-'})"
            comps.append(Comparison(what, a[1] if a else [], b[1] if b else [], HIGHER[metric]))
        claim = f"Context ranking BIN > KEY > REP > TIME (best method per context, {name} at 16 bars){suffix}"
        out.append({"claim": claim, "verdict": verdict(comps), "details": [c.describe() for c in comps]})

        comps = []
        for other in P1_T3_OTHERS:
            for bars in (16, 64):
                a = scores(groups.get(("BIN", other), []), setting, metric, bars)
                b = scores(groups.get(("BIN", rope), []), setting, metric, bars) if rope else []
                what = f"BIN {name}@{bars}: {other} vs {rope or 'RoPE'}"
                comps.append(Comparison(what, a, b, HIGHER[metric]))
        out.append({"claim": f"RoPEPool and F-StrIPE₁ ahead of (the best) RoPE on BIN{suffix}",
                    "verdict": verdict(comps), "details": [c.describe() for c in comps]})

    comps = []
    for ctx in P1_CONTEXTS:
        for m in p1_methods:
            if (ctx == "REP" and m in ROPES) or not groups.get((ctx, m)):
                continue
            for metric in METRICS:
                a = scores(groups[(ctx, m)], setting, metric, 64)
                b = scores(groups[(ctx, m)], setting, metric, 16)
                comps.append(Comparison(f"{ctx} {m} {metric.upper()} 64 bars vs 16", a, b, HIGHER[metric]))
    v = verdict(comps)
    counts = defaultdict(int)
    for c in comps:
        counts[c.status] += 1
    summary = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
    order = {"reversed": 0, "within noise": 1, "holds": 2, "missing": 3}
    ranked = sorted(comps, key=lambda c: order[c.status])  # counter-evidence first
    out.append({"claim": "Scores improve from 16 to 64 bars (all but RoPE on REP)", "verdict": v,
                "details": [f"{len(comps)} comparisons ({summary})"] + [c.describe() for c in ranked]})
    return out


# -------------------------------------------------------------------------------------------------- MI


def find_mi(paths: Sequence[str | os.PathLike], mi_path: str | os.PathLike | None = None) -> Path | None:
    """The MI JSON to use: ``mi_path``, else ``mi.json`` or ``mi/mi.json`` in or beside a run path."""
    if mi_path is not None:
        p = Path(mi_path)
        if not p.is_file():
            raise DataError(f"MI table not found: {p}")
        return p
    for raw in paths:
        p = Path(raw)
        for c in (p / "mi.json", p / "mi" / "mi.json", p.parent / "mi" / "mi.json"):
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
                m = _best_rope(groups, ctx) if fam == "RoPE" else fam
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
            counts[bars][f"{sel.get('threshold')}" + ("" if merge is None else f" + merge {merge}")] += 1
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


def copy_pianorolls(groups: dict[tuple[str, str], list[Run]], dest: Path) -> list[tuple[str, str, str]]:
    """Copy the first 16- and 64-bar example PNG of each method's lowest-seed run, for one context (BIN when
    present), into ``dest`` so that the report is self-contained. Returns (context, method, path relative
    to ``dest.parent``) per copied image. Old PNGs in ``dest`` are removed first."""
    ctxs = sorted({c for (c, _), rs in groups.items() if any(r.pianorolls for r in rs)},
                  key=lambda c: (c != "BIN", c))
    if dest.is_dir():
        for old in dest.glob("*.png"):
            old.unlink()
    if not ctxs:
        return []
    shown = []
    for (ctx, m), rs in sorted(groups.items()):
        if ctx != ctxs[0]:
            continue
        runs = sorted((r for r in rs if r.pianorolls), key=lambda r: r.seed)
        if not runs:
            continue
        first = {}
        for png in runs[0].pianorolls:
            first.setdefault(png.parent.name, png)
        for png in first.values():
            name = f"{runs[0].path.name}_{png.parent.name}_{png.name}"
            atomic_write_bytes(dest / name, png.read_bytes())
            shown.append((ctx, m, f"{dest.name}/{name}"))
    return shown


# ----------------------------------------------------------------------------------------------- report

PROTOCOL = """\
Each run trains on 16-bar windows and is evaluated on the test split at 16 bars (in-domain) and 64 bars
(length generalization) in one parallel forward pass. The sigmoid outputs must be binarized before CS, SSMD,
GS and NDD can be computed; P1/P2 grid-search the binarization (threshold, threshold + merge) without saying
on which data or by which criterion. Choosing it on the test set would leak the test labels into the scores,
so we choose it on the **validation** split by **note-onset F1**: onset F1 rewards getting the notes right
without favouring any one of the four reported metrics (three of which are onset-based), and it is defined
for every threshold/merge pair. The learning rate, when several were run, is chosen per (context, method) by
the lowest mean validation BCE. Because the selected binarization can differ between runs, the tables are
also given at a fixed 0.5 threshold, the same for every run. Scores are mean ± sample std over seeds;
P1's marks: ∗ best vs next-best p < 0.05, † not significant vs next-best but significant vs third-best
(Levene, then Student's or Welch's two-sided t-test; papers.md §10.5). Bold = best mean in the context.
"""


def make_report(paths: Sequence[str | os.PathLike], out: str | os.PathLike,
                mi_path: str | os.PathLike | None = None) -> Path:
    """Write ``out/report.md`` (+ PNG figures) from the runs under ``paths``; returns the report path."""
    runs = collect_runs(paths)
    if not runs:
        where = ", ".join(map(str, paths))
        raise DataError(f"no evaluated runs (config.json + metrics_*.json) under {where}")
    profiles = sorted({str(r.config.get("profile", "?")) for r in runs})
    if len(profiles) > 1:
        raise DataError(f"runs from several profiles ({', '.join(profiles)}): report each profile separately")
    sources = sorted({str(r.config.get("data", {}).get("source", "?")) for r in runs})
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    kept, chosen_lr = select_lr(runs)
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in kept:
        groups[(r.context, r.method)].append(r)

    mi_file = find_mi(paths, mi_path)
    mi_rows = load_mi(mi_file) if mi_file else []
    mi = {str(r["context"]).upper(): float(r["plugin"]) for r in mi_rows}

    md = ["# stripes: reproduction report", "",
          f"{len(runs)} evaluated runs ({len(kept)} after learning-rate selection), profile "
          f"{profiles[0]}, data {', '.join(sources)}.", "", "## Protocol", "", PROTOCOL]
    lr_multi = {k: v for k, v in chosen_lr.items()
                if len({r.lr for r in runs if (r.context, r.method) == k}) > 1}
    if lr_multi:
        md += ["Learning rates chosen: "
               + "; ".join(f"{c} {m}: {lr:g}" for (c, m), lr in sorted(lr_multi.items())), ""]

    md += binarization_summary(kept)
    tables = plan_tables(groups)
    for t in tables:
        for setting, desc in SETTINGS.items():
            md += [f"## {TABLES[t.key]} — {desc}", ""]
            md += render_table(t, groups, setting)
            md.append("")
        md += [f"## {TABLES[t.key]} — threshold-free test BCE and note-level F1", "",
               "Mean test BCE per cell (no binarization) and note F1 on onsets and frames at the "
               "validation-selected binarization, all ×100; marks as above.", ""]
        md += render_table(t, groups, "at_selected", EXTRA_COLUMNS)
        md.append("")
        md += [f"- {n}" for n in t.notes]
        if t.notes:
            md.append("")
    if not tables:
        names = ", ".join(sorted({m for _, m in groups}))
        md += [f"No run matches a paper table (methods: {names}).", ""]

    if mi_rows:
        md += ["## P1 Table I — mutual information content/context (nats)", "",
               f"From `{os.path.relpath(mi_file, out_dir)}`.", "",
               "| context | plug-in | Miller-Madow | shuffle-corrected | P1 |", "|---|---|---|---|---|"]
        for r in mi_rows:
            c = str(r["context"]).upper()
            mm, sh = r.get("miller_madow", float("nan")), r.get("shuffle", float("nan"))
            md.append(f"| {c} | {float(r['plugin']):.4f} | {float(mm):.4f} | {float(sh):.4f} | "
                      f"{P1_TABLE_I.get(c, float('nan')):.4f} |")
        md.append("")
        if any(c in mi for c in P1_CONTEXTS) and any(c in P1_CONTEXTS for c, _ in groups):
            fig_mi(groups, mi, out_dir / "fig4_mi.png")
            md += ["### Fig. 4 — in-domain performance against MI", "", "![Fig. 4](fig4_mi.png)", ""]
    else:
        md += ["## P1 Table I — mutual information", "",
               "No MI table given or found (run `stripes analyze mi --out <dir>/mi`).", ""]

    md += ["## Length generalization: per-position BCE at 64 bars", ""]
    if fig_bce(groups, out_dir / "bce_per_position_64.png"):
        md += ["![per-position BCE](bce_per_position_64.png)", ""]
    else:
        md += ["No 64-bar metrics with `bce_per_position`.", ""]

    md += ["## Claims of P1", "",
           "Verdicts at the validation-selected binarization; a comparison *holds* when "
           f"the difference has the claimed sign with p < {ALPHA} (t-test over seeds).", ""]
    for c in claims(groups, mi or None):
        md.append(f"- **{c['claim']}** — *{c['verdict']}*")
        md += [f"  - {d}" for d in c["details"][:25]]
        if len(c["details"]) > 25:
            md.append(f"  - … {len(c['details']) - 25} more")
    md.append("")

    md += ["## Pianorolls", ""]
    shown = copy_pianorolls(groups, out_dir / "pianorolls")
    if shown:
        md += ["Target (top), binarized prediction (middle) and probabilities (bottom) of the first test "
               f"examples, lowest seed of each method, context {shown[0][0]}; every run keeps its examples "
               "(MIDI + PNG) in its `examples_16/` and `examples_64/` folders.", ""]
        for ctx, m, rel in shown:
            md += [f"**{ctx} {m}** — `{rel.split('/', 1)[1]}`", "", f"![{ctx} {m}]({rel})", ""]
    else:
        md += ["No pianoroll PNGs found in the runs.", ""]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path
