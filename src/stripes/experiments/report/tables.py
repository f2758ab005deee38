"""Markdown tables in the layout of P1 Tables II-III and P2 Table I, beside the published numbers, and the
machine-readable ``runs.csv`` (one row per run and window length)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stripes.analysis.published import COLUMNS, P1_BEST_ROPE, P2_CONTEXT, Cell, published_cells
from stripes.experiments.report.runs import (
    EXTRA_NAMES,
    HIGHER,
    P1_CONTEXTS,
    P1_T3_OTHERS,
    P2_METHODS,
    ROPES,
    VALIDATION_SCORE,
    Run,
    best_on_validation,
    cli_method,
    scores,
)
from stripes.experiments.report.verdicts import _marks

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
            rope = best_on_validation(groups, c, ROPES)
            if rope is not None:
                t3.append((c, rope))
                n_var = sum(1 for m in ROPES if groups.get((c, m)))
                how = f"best of {n_var} RoPE variants by {VALIDATION_SCORE}" if n_var > 1 else "the RoPE run"
                notes.append(f"{c}: {rope} ({how}; P1 chose {P1_BEST_ROPE[c]})")
            t3.extend((c, m) for m in P1_T3_OTHERS if groups.get((c, m)))
        tables.append(Table("p1-table3", t3, notes))
    p2 = []
    for m in P2_METHODS:
        ctxs = sorted(c for (c, mm) in groups if mm == m)
        p2.extend((c, m) for c in ctxs)
    if p2:
        tables.append(Table("p2-table1", p2, ["SSMD of our runs is shown ×2 (P2 scales SSMD by 100, "
                                              "P1 and our metrics by 50; docs/papers.md §10.2)"]))
    return tables


def render_table(table: Table, groups: dict[tuple[str, str], list[Run]], setting: str,
                 columns: Sequence[tuple[str, int]] = COLUMNS, published: bool = True) -> list[str]:
    """Markdown lines of one table at one binarization setting: our mean ± std and marks, then the
    published row (paper columns only; none with ``published=False``, e.g. for another task than the
    paper's). ``columns`` = (metric, bars) pairs; :data:`EXTRA_COLUMNS` gives the threshold-free /
    note-level table, shown ×100."""
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
            pub = published_cells(table.key, ctx if p1 else None, m) if paper_cols and published else None
            if pub is not None and (p1 or ctx == _p2_context(m)):
                pcells = ["⧹" if pub[col] is None else _pub_text(pub[col]) for col in COLUMNS]
                n = "5" if p1 else "3"
                lines.append("| " + " | ".join([lab, m, "P1" if p1 else "P2", n] + pcells) + " |")
    return lines


def _pub_text(cell: Cell | None) -> str:
    return "⧹" if cell is None else cell.text


def _p2_context(method: str) -> str:
    return P2_CONTEXT.get(method, "")


# ------------------------------------------------------------------------------------------------ runs.csv

RUNS_CSV_FIELDS = ("table", "context", "method", "seed", "bars", "test_bce", "onset_f1", "frame_f1", "cs",
                   "ssmd", "gs", "ndd", "cs_at_0_5", "ndd_at_0_5", "threshold", "merge", "steps",
                   "train_seconds")


def write_runs_csv(runs: Sequence[Run], path: Path, table: str = "") -> Path:
    """One row per (run, bars) with the fields :data:`RUNS_CSV_FIELDS`: method as the CLI spells it
    (``ropepool``, ``rope_c``, ``fstripe1``), context in lower case, metrics at the validation-selected
    binarization plus CS/NDD at 0.5, the chosen binarization, training steps and seconds (log.csv)."""
    import csv
    import io

    from stripes.fileio import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(RUNS_CSV_FIELDS), lineterminator="\n")
    w.writeheader()
    for r in sorted(runs, key=lambda r: (r.context, cli_method(r.config), r.seed)):
        steps, secs = r.train_cost
        for bars in sorted(r.metrics):
            m = r.metrics[bars]
            sel, p5 = m.get("at_selected", {}), m.get("at_0.5", {})
            chosen = m.get("selected", {})
            w.writerow({
                "table": table, "context": r.context.lower(), "method": cli_method(r.config),
                "seed": r.seed, "bars": bars, "test_bce": m.get("bce"),
                "onset_f1": sel.get("onset_f1"), "frame_f1": sel.get("frame_f1"),
                **{k: sel.get(k) for k in ("cs", "ssmd", "gs", "ndd")},
                "cs_at_0_5": p5.get("cs"), "ndd_at_0_5": p5.get("ndd"),
                "threshold": chosen.get("threshold"),
                "merge": "" if chosen.get("merge") is None else chosen.get("merge"),
                "steps": steps, "train_seconds": None if secs is None else round(secs, 1),
            })
    atomic_write_text(path, buf.getvalue())
    return path
