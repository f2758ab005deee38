"""``stripes reproduce``: run the paper sweeps (resumable), the MI table and the report in one command."""

from __future__ import annotations

import argparse

from stripes.cli.sweep import add_common, launcher_from_args, parse_lrs

DEFAULT_TABLES = "p1-table2,p1-table3,p2-table1"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reproduce", help="sweeps + MI + report (resumable)")
    p.add_argument("--out", default=None, help="output folder (default results/reproduce/<profile>)")
    p.add_argument("--tables", default=DEFAULT_TABLES, help="comma-separated sweeps (default %(default)s)")
    p.add_argument("--no-mi", action="store_true", help="skip the MI table (P1 Table I, Fig. 4)")
    p.add_argument("--reuse", action="append", default=[], metavar="DIR",
                   help="a committed report folder (e.g. docs/results/p1-table3-cpu): its finished run "
                        "records and mi.json are copied in first and not rerun (repeatable)")
    add_common(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from stripes.config import parse_overrides
    from stripes.errors import ConfigError
    from stripes.experiments.reproduce import reproduce

    if args.jobs < 1:
        raise ConfigError("--jobs must be >= 1")
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    res = reproduce(tables, profile=args.profile or "quick", out=args.out, n_seeds=args.seeds, jobs=args.jobs,
                    overrides=parse_overrides(args.overrides), data_root=args.data_root,
                    cache_dir=args.cache_dir, mi=not args.no_mi, contexts=args.contexts, methods=args.methods,
                    launcher=launcher_from_args(args), budget_min=args.budget_min, lrs=parse_lrs(args.lrs),
                    reuse=args.reuse)
    print(f"report: {res['report']}")
    if res["paused"]:
        print(f"{len(res['paused'])} run(s) paused by the time budget (rerun the same command to continue)")
    if res["failed"]:
        names = ", ".join(res["failed"])
        print(f"{len(res['failed'])} run(s) failed (rerun the same command to retry): {names}")
    return 1 if res["failed"] else 0
