"""``stripes demo``: get the data, train two quick models, evaluate them, print a table, write a song."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="main job: data, two quick trainings, evaluation, table, MIDI/PNG",
        description="Trains RoPEPool+BIN and a baseline with the quick profile.",
    )
    p.add_argument("--data-root")
    p.add_argument("--cache-dir")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--profile", default="quick")
    p.add_argument("--baseline", default="nope", help="PE of the baseline model (default nope)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override for both runs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stripes.apps.demo import run_demo

    run_demo(
        out=args.out,
        data_root=args.data_root,
        cache_dir=args.cache_dir,
        profile=args.profile,
        baseline=args.baseline,
        overrides=args.set,
    )
    return 0
