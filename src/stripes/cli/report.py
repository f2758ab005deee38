"""``stripes report``: markdown report with tables, figures and claim verdicts from run folders."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="report.md + figures from evaluated runs")
    p.add_argument("runs", nargs="+", help="run folders or folders of run folders")
    p.add_argument("--out", required=True, help="output folder for report.md and the PNGs")
    p.add_argument("--mi", default=None, help="MI table JSON (default: mi.json / mi/mi.json beside the runs)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from stripes.experiments.report import make_report

    path = make_report(args.runs, args.out, args.mi)
    print(f"wrote {path}")
    return 0
