"""``stripes analyze``: mutual-information table (P1 Table I) and the toy kernel study (P1 Fig. 3)."""

from __future__ import annotations

import argparse

from stripes._extras import missing_extra
from stripes.errors import StripesError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="analyses of the papers: MI table, toy kernel study")
    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS")
    sub.required = True

    mi = sub.add_parser("mi", help="MI between input pitches and context labels (P1 Table I), in nats")
    mi.add_argument("--data-root", default=None, help="data folder (default $STRIPES_DATA, then the cache)")
    mi.add_argument("--cache-dir", default=None, help="prepared-array cache (default $STRIPES_CACHE)")
    mi.add_argument("--out", default="results/mi", help="folder for mi.csv and mi.json (default %(default)s)")
    mi.add_argument("--split", default="train", choices=["train", "val", "test"])
    mi.add_argument("--bars", type=int, default=16, help="window length in bars (default %(default)s)")
    mi.add_argument("--shuffles", type=int, default=5, help="permutations for the shuffle baseline")
    mi.add_argument("--seed", type=int, default=0)
    mi.add_argument(
        "--content",
        default="input",
        choices=["input", "all"],
        help="pitches counted: input (melody+bridge, default) or all three tracks",
    )
    mi.set_defaults(func=_run_mi)

    toy = sub.add_parser("toy", help="toy D=2 kernel study of P1 §III-E (heatmaps)")
    toy.add_argument("--out", required=True, help="output folder")
    toy.add_argument("--seed", type=int, default=0)
    toy.set_defaults(func=_run_toy)


def _run_mi(args: argparse.Namespace) -> int:
    from stripes.analysis.mi import format_mi_table, mi_table, write_mi_table

    rows = mi_table(
        args.data_root,
        args.cache_dir,
        split=args.split,
        bars=args.bars,
        n_shuffles=args.shuffles,
        seed=args.seed,
        content=args.content,
    )
    print(format_mi_table(rows))
    csv_path, json_path = write_mi_table(rows, args.out)
    print(f"wrote {csv_path} and {json_path}")
    return 0


def _run_toy(args: argparse.Namespace) -> int:
    try:
        from stripes.analysis.toy import run_toy_study
    except ImportError as exc:
        if missing_extra(exc):
            raise  # stripes.cli.main names the extra to install
        raise StripesError(f"the toy study is not available in this installation ({exc})") from exc

    result = run_toy_study(args.out, args.seed)
    if isinstance(result, dict):
        for name, value in (result.get("asymmetry") or {}).items():
            print(f"asymmetry {name}: {value:.4g}")
        for name, path in (result.get("files") or {}).items():
            print(f"{name}: {path}")
    print(f"toy study written to {args.out}")
    return 0
