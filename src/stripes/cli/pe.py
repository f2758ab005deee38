"""``stripes pe list [NAME ...] [--json]``: every registered positional encoding, what it is, how to use it.

One block per PE from :func:`stripes.pe.catalog.catalog`: kind, the attention it works with, aliases, paper
and equations, out_dim, constraints and the options with their defaults (read from the class). Note that
``rope`` is RoPE variant C (learnable per-head frequencies); textbook RoPE is ``rope_a``.
"""

from __future__ import annotations

import argparse
import json
import textwrap

WIDTH = 100
LABEL = 13  # width of the field names


def _field(label: str, text: str) -> list[str]:
    indent = "  " + " " * LABEL
    first = f"  {label:<{LABEL}}"
    wrapped = textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=indent, break_on_hyphens=False
    )
    return wrapped or [first.rstrip()]


def format_block(info) -> str:
    """The text block of one :class:`stripes.pe.catalog.PEInfo`."""
    lines = [f"{info.name} — {info.title}"]
    if info.note:
        lines += _field("NOTE", info.note)
    lines += _field("summary", info.description)
    lines += _field("kind", info.kind)
    lines += _field("attention", info.attention)
    if info.aliases:
        first = True
        for alias, meaning in info.aliases.items():
            lines += _field("aliases" if first else "", f"{alias}: {meaning}")
            first = False
    lines += _field("paper", info.paper)
    lines += _field("equations", info.equations)
    lines += _field("out_dim", info.out_dim)
    lines += _field("constraints", "; ".join(info.constraints) if info.constraints else "none")
    if info.options:
        first = True
        for opt in info.options:
            typ = f": {opt.annotation}" if opt.annotation else ""
            text = f"{opt.name}{typ} = {opt.default!r}" + (f" — {opt.help}" if opt.help else "")
            lines += _field("options" if first else "", text)
            first = False
    else:
        lines += _field("options", "none")
    lines += _field("class", info.class_path)
    lines += _field("docs", info.docs)
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    from stripes.errors import ConfigError
    from stripes.pe.catalog import ROPE_NOTE, catalog

    entries = catalog()
    names = list(args.names or entries)
    aliases = {a: n for n, info in entries.items() for a in info.aliases}
    unknown = [n for n in names if n not in entries and n not in aliases]
    if unknown:
        raise ConfigError(f"unknown positional encoding(s) {unknown}; choose from {', '.join(entries)}")
    chosen = list(dict.fromkeys(aliases.get(n, n) for n in names))
    if args.json:
        print(json.dumps([entries[n].as_dict() for n in chosen], indent=2, ensure_ascii=False))
        return 0
    if not args.names:
        print(f"{len(entries)} positional encodings, built with build_pe(name, head_dim=, n_heads=, "
              "context_dim=, d_model=, **options).")
        print(f"NOTE: {ROPE_NOTE}\n")
    print("\n\n".join(format_block(entries[n]) for n in chosen))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pe", help="positional encodings", description="Positional encodings.")
    sub = parser.add_subparsers(dest="pe_command", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser(
        "list",
        help="list the positional encodings and what they are",
        description="Every registered PE: kind, attention, aliases, paper and equations, out_dim, "
        "constraints and options with defaults. Note: 'rope' is variant C (learnable per-head "
        "frequencies); textbook RoPE with fixed frequencies is 'rope_a'.",
    )
    listing.add_argument("names", nargs="*", metavar="NAME", help="only these PEs (default: all)")
    listing.add_argument("--json", action="store_true", help="print the catalog as JSON")
    listing.set_defaults(func=_list)
