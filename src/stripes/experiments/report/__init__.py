"""Markdown report of finished runs in the layout of P1 Tables II-III and P2 Table I, with figures.

:func:`make_report` collects run folders (:mod:`.runs`), keeps per (context, method) the learning rate with
the lowest mean validation BCE, and writes ``report.md`` with mean ± std over seeds next to the published
numbers and P1's significance marks (:mod:`.tables`), a threshold-free companion table, the binarizations
chosen on validation, MI table and Fig. 4, per-position BCE curves and pianorolls (:mod:`.figures`), verdicts
on the papers' claims (:mod:`.verdicts`), the context-quality study of question 1 when runs on degraded BIN
contexts are given (:mod:`.quality`), and ``runs.csv``. Every choice is made on validation.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from stripes.analysis.published import P1_TABLE_I, TABLES
from stripes.errors import DataError
from stripes.experiments.context_quality import CONTEXT_MI, find_context_mi, load_context_mi
from stripes.experiments.report.figures import (
    binarization_summary,
    copy_pianorolls,
    fig_bce,
    fig_mi,
    find_mi,
    load_mi,
)
from stripes.experiments.report.generalisation import q3_section
from stripes.experiments.report.learned import q2_section
from stripes.experiments.report.quality import q1_section
from stripes.experiments.report.runs import (
    ALPHA,
    EXTRA_COLUMNS,
    P1_CONTEXTS,
    P1_T3_OTHERS,
    ROPES,
    SETTINGS,
    VALIDATION_SCORE,
    Run,
    check_cells,
    collect_runs,
    context_label,
    export_runs,
    method_label,
    select_lr,
)
from stripes.experiments.report.tables import plan_tables, render_table, write_runs_csv
from stripes.experiments.report.transfer import q4_section
from stripes.experiments.report.verdicts import Comparison, claims, p2_claims, verdict
from stripes.fileio import atomic_write_text

P1_METHODS = ROPES + P1_T3_OTHERS

__all__ = ["Comparison", "collect_runs", "context_label", "export_runs", "make_report", "method_label",
           "select_lr", "verdict", "write_runs_csv"]

# ----------------------------------------------------------------------------------------------- report

PROTOCOL = """\
Each run trains on 16-bar windows and is evaluated on the test split at 16 bars (in-domain) and 64 bars
(length generalization) in one parallel forward pass. The sigmoid outputs must be binarized before CS, SSMD,
GS and NDD can be computed; P1/P2 grid-search the binarization (threshold, threshold + merge) without saying
on which data or by which criterion. Choosing it on the test set would leak the test labels into the scores,
so we choose it on the **validation** split by **note-onset F1**: onset F1 rewards getting the notes right
without favouring any one of the four reported metrics (three of which are onset-based), and it is defined
for every threshold/merge pair. Every other choice is made on validation too: the learning rate (when
several were run, per context and method), the RoPE variant shown in Table III and the "best method per
context" of the claims all take the lowest mean validation BCE over seeds (best epoch of each run's
`log.csv`); no test score chooses anything. Because the selected binarization can differ between runs, the
tables are also given at a fixed 0.5 threshold, the same for every run. Scores are mean ± sample std over
seeds; P1's marks: ∗ best vs next-best p < 0.05, † not significant vs next-best but significant vs third-best
(Levene, then Student's or Welch's two-sided t-test; docs/papers.md §10.5). Bold = best mean in the context.
"""


_AT_05 = " at the fixed 0.5 threshold"


def make_report(paths: Sequence[str | os.PathLike], out: str | os.PathLike,
                mi_path: str | os.PathLike | None = None, table: str = "", copy_runs: bool = False,
                with_pngs: bool = False) -> Path:
    """Write ``out/report.md`` (+ PNG figures) and ``out/runs.csv`` (every evaluated run, one row per window
    length, ``table`` in its first column) from the runs under ``paths``; returns the report path.
    ``copy_runs``: also make ``out`` self-contained, with each run's record in ``out/runs/``
    (:func:`export_runs`, example PNGs with ``with_pngs``) and the MI table used as ``out/mi.json``."""
    runs = collect_runs(paths)
    if not runs:
        where = ", ".join(map(str, paths))
        raise DataError(f"no evaluated runs (config.json + metrics_*.json) under {where}")
    profiles = sorted({str(r.config.get("profile", "?")) for r in runs})
    if len(profiles) > 1:
        raise DataError(f"runs from several profiles ({', '.join(profiles)}): report each profile separately")
    sources = sorted({str(r.config.get("data", {}).get("source", "?")) for r in runs})
    tasks = sorted({r.task for r in runs})
    if len(tasks) > 1:
        raise DataError(f"runs of several tasks ({', '.join(tasks)}): report each task separately")
    melody = tasks == ["melody"]  # question 4: the paper's tables' layout, but not the paper's task
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_cells(runs)
    kept, chosen_lr = select_lr(runs)
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for r in kept:
        groups[(r.context, r.method)].append(r)

    mi_file = find_mi(paths, mi_path)
    mi_rows = load_mi(mi_file) if mi_file else []
    mi = {str(r["context"]).upper(): float(r["plugin"]) for r in mi_rows}

    md = ["# stripes: reproduction report", "",
          f"{len(runs)} evaluated runs ({len(kept)} after learning-rate selection), profile "
          f"{profiles[0]}, data {', '.join(sources)}"
          + (", task **melody from the piano** (question 4; P1's published numbers are for melody "
             "harmonization and are not shown)" if melody else "") + ".", "", "## Protocol", "", PROTOCOL]
    lr_multi = {k: v for k, v in chosen_lr.items()
                if len({r.lr for r in runs if (r.context, r.method) == k}) > 1}
    if lr_multi:
        md += ["Learning rates chosen: "
               + "; ".join(f"{c} {m}: {lr:g}" for (c, m), lr in sorted(lr_multi.items())), ""]

    md += binarization_summary(kept)
    tables = plan_tables(groups)
    for t in tables:
        title = f"Q4 melody task, grid of {TABLES[t.key]}" if melody else TABLES[t.key]
        for setting, desc in SETTINGS.items():
            md += [f"## {title} — {desc}", ""]
            md += render_table(t, groups, setting, published=not melody)
            md.append("")
        md += [f"## {title} — threshold-free test BCE and note-level F1", "",
               "Mean test BCE per cell (no binarization) and note F1 on onsets and frames at the "
               "validation-selected binarization, all ×100; marks as above.", ""]
        md += render_table(t, groups, "at_selected", EXTRA_COLUMNS)
        md.append("")
        md += [f"- {n}" for n in t.notes]
        if t.notes:
            md.append("")
    ctx_mi_file = find_context_mi(paths)
    q1 = q1_section(groups, load_context_mi(ctx_mi_file) if ctx_mi_file else [], out_dir,
                    "from `context_mi.json` beside this report" if copy_runs or ctx_mi_file is None
                    or ctx_mi_file.resolve() == (out_dir / CONTEXT_MI).resolve()
                    else f"from `{os.path.relpath(ctx_mi_file, out_dir)}`")
    md += q1
    md += q2_section(groups)  # question 2: learned contexts beside the hand-made one
    md += q3_section(groups, out_dir, paths)  # question 3: BCE per bar at 64 bars, REP analysis
    if melody:
        md += q4_section(groups)
    if not tables and not q1:
        names = ", ".join(sorted({m for _, m in groups}))
        md += [f"No run matches a paper table (methods: {names}).", ""]

    has_p1 = any(c in P1_CONTEXTS and m in P1_METHODS for c, m in groups)
    if mi_rows:
        md += ["## P1 Table I — mutual information content/context (nats)", "",
               # a self-contained report names its own copy, not a path of the machine that made it
               "From `mi.json` (beside this report)."
               if copy_runs or mi_file.resolve() == (out_dir / "mi.json").resolve() else
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
    elif has_p1:  # a P2-only report has no use for P1's MI table
        md += ["## P1 Table I — mutual information", "",
               "No MI table given or found (run `stripes analyze mi --out <dir>/mi`).", ""]

    md += ["## Length generalization: per-position BCE at 64 bars", ""]
    if fig_bce(groups, out_dir / "bce_per_position_64.png"):
        md += ["![per-position BCE](bce_per_position_64.png)", ""]
    else:
        md += ["No 64-bar metrics with `bce_per_position`.", ""]

    # each paper's claims at the validation-selected binarization (with the threshold-free BCE), then on the
    # binarized metrics again at the fixed 0.5 threshold, the setting of the "(comparable to P1)" tables
    sections = [("P1", "", claims(groups, mi or None))] if has_p1 else []
    sections += [("P2", "", p2_claims(groups))]
    sections += [("P1", _AT_05, claims(groups, None, "at_0.5", with_bce=False))] if has_p1 else []
    sections += [("P2", _AT_05, p2_claims(groups, "at_0.5", with_bce=False))]
    for paper, where, found in sections:
        if not found:
            continue
        setting = "the fixed 0.5 threshold (no BCE: it needs no threshold)" if where else (
            "the validation-selected binarization")
        on = " on the melody task (question 4)" if melody else ""
        md += [f"## Claims of {paper}{where}{on}", "",
               f"Verdicts at {setting}; a comparison *holds* when "
               f"the difference has the claimed sign with p < {ALPHA} (two-sided t-test over seeds, Levene "
               "then Student or Welch); *not separable* when some comparison is within noise.", ""]
        for c in found:
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
    write_runs_csv(runs, out_dir / "runs.csv", table)
    md += ["## Data", "", f"`runs.csv`: one row per evaluated run and window length ({len(runs)} runs; "
           f"choices above by {VALIDATION_SCORE}).", ""]
    if copy_runs:
        export_runs(runs, out_dir / "runs", pngs=with_pngs)
        if mi_file and mi_file.resolve() != (out_dir / "mi.json").resolve():
            atomic_write_text(out_dir / "mi.json", mi_file.read_text())
        if ctx_mi_file and ctx_mi_file.resolve() != (out_dir / CONTEXT_MI).resolve():
            atomic_write_text(out_dir / CONTEXT_MI, ctx_mi_file.read_text())
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(md))
    return path
