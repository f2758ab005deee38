"""``stripes report``: markdown report with tables, figures and claim verdicts from run folders."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="report.md + figures + runs.csv from evaluated runs")
    p.add_argument("runs", nargs="+", help="run folders or folders of run folders")
    p.add_argument("--out", required=True, help="output folder for report.md and the PNGs")
    p.add_argument("--mi", default=None, help="MI table JSON (default: mi.json / mi/mi.json beside the runs)")
    p.add_argument("--table", default="",
                   help="value of the `table` column of runs.csv (e.g. p1-table3); `accompany`: generative "
                        "runs (task accompany) and their PE comparison")
    p.add_argument("--copy-runs", action="store_true",
                   help="also copy each reported run's record (config, log, metrics, DONE; no checkpoints) "
                        "into OUT/runs and the MI table to OUT/mi.json, small enough to commit; a sweep "
                        "skips those runs")
    p.add_argument("--with-pngs", action="store_true",
                   help="with --copy-runs: copy the example pianorolls too")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from stripes.experiments.report import make_report

    if args.table == "accompany":  # generative runs: P1's PE comparison on sampled accompaniments
        from stripes.experiments.report.accompany import make_accompany_report

        path = make_accompany_report(args.runs, args.out, table=args.table, copy_runs=args.copy_runs)
        print(f"wrote {path} and {path.parent / 'runs.csv'}")
        return 0
    path = make_report(args.runs, args.out, args.mi, table=args.table, copy_runs=args.copy_runs,
                       with_pngs=args.with_pngs)
    print(f"wrote {path} and {path.parent / 'runs.csv'}")
    if args.copy_runs:
        print(f"copied the run records to {path.parent / 'runs'} (and the MI table, if any, to mi.json)")
    return 0
