"""``stripes evaluate RUN --bars 16|64``: test metrics of a trained run (writes metrics_{bars}.json)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run on the test split",
        description="Binarization chosen on validation; writes RUN/metrics_{bars}.json. An accompaniment "
        "run (task=accompany) is sampled with settings chosen on validation and scored against the human "
        "piano instead: RUN/metrics_accompany_{bars}.json.",
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
    if _is_accompany(args.run):  # the autoregressive model: sampled, then scored against the human piano
        from stripes.experiments.accompany import evaluate_accompanist, format_accompany

        for bars in args.bars or [16]:
            res = evaluate_accompanist(args.run, bars, which=args.checkpoint, data_root=args.data_root,
                                       cache_dir=args.cache_dir)
            print(format_accompany(res))
        return 0
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


def _is_accompany(run: str) -> bool:
    """True for a run folder of ``task = "accompany"`` (its config.json says so)."""
    import json
    from pathlib import Path

    cfg = Path(run) / "config.json"
    try:
        return json.loads(cfg.read_text()).get("task") == "accompany"
    except (OSError, ValueError, AttributeError):
        return False
