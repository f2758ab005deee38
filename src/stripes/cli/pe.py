"""``stripes pe list``: the registered positional encodings with one-line descriptions."""

from __future__ import annotations

import argparse


def _list(args: argparse.Namespace) -> int:
    from stripes.pe import list_pes

    pes = list_pes()
    width = max(len(name) for name in pes)
    for name, description in pes.items():
        print(f"{name:<{width}}  {description}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pe", help="positional encodings", description="Positional encodings.")
    sub = parser.add_subparsers(dest="pe_command", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser("list", help="list the positional encodings and what they are")
    listing.set_defaults(func=_list)
