"""``stripes evaluate RUN --bars 16|64``: test metrics of a trained run (writes metrics_{bars}.json)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run on the test split",
        description="Binarization chosen on validation; writes RUN/metrics_{bars}.json.",
    )
    p.add_argument("run", help="run folder written by `stripes train`")
    p.add_argument(
        "--bars",
        type=int,
        action="append",
        choices=[16, 64],
        help="window length in bars (repeatable; default 16)",
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--data-root")
    p.add_argument("--cache-dir")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="evaluation setting override (eval.* only, repeatable), e.g. eval.thresholds=[0.1,0.2,0.3]",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stripes.config import parse_overrides
    from stripes.experiments.evaluate import evaluate_run, format_result

    overrides = parse_overrides(args.set)

    for bars in args.bars or [16]:
        res = evaluate_run(
            args.run,
            bars,
            data_root=args.data_root,
            cache_dir=args.cache_dir,
            which=args.checkpoint,
            progress=not args.no_progress,
            eval_overrides=overrides,
        )
        print(format_result(res))
    return 0
