"""``stripes checkpoint``: convert checkpoints of older stripes versions, export small inference files."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("checkpoint", help="convert old checkpoints; export an inference file")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("convert", help="rewrite a checkpoint of an older stripes in the safe format")
    c.add_argument("src")
    c.add_argument("dest")
    c.set_defaults(func=_convert)
    e = sub.add_parser("export", help="weights + config (+ binarization chosen on validation) of a run, "
                       "as a small inference file")
    e.add_argument("run", help="run folder from `stripes train`")
    e.add_argument("dest", help="output .pt file")
    e.add_argument("--which", default="best", choices=["best", "last"])
    e.add_argument("--bars", type=int, default=16,
                   help="store the binarization chosen on validation in metrics_<bars>.json (if evaluated)")
    e.set_defaults(func=_export)


def _convert(args: argparse.Namespace) -> int:
    from stripes.train.checkpoint import convert_legacy

    print(f"wrote {convert_legacy(args.src, args.dest)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from stripes.train.checkpoint import export_inference

    path = export_inference(args.run, args.dest, which=args.which, bars=args.bars)
    print(f"wrote {path}")
    return 0
