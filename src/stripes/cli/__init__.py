"""The ``stripes`` command.

Each module of this package that defines ``register(subparsers)`` adds its own subcommand(s);
a registered parser sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and
returning an exit code or None). The CLI does no computation of its own.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from stripes import __version__
from stripes._extras import missing_extra
from stripes.errors import StripesError


class CLIError(StripesError):
    """A user-facing error raised by argument handling."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stripes",
        description="Structure-informed positional encodings for efficient music transformers.",
    )
    parser.add_argument("--version", action="version", version=f"stripes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    _name_commands(parser)
    return parser


def _name_commands(parser: argparse.ArgumentParser) -> None:
    """Each subparser records its full command (``stripes data prepare``) for error messages."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.set_defaults(_command=child.prog)
                _name_commands(child)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        rc = func(args)
    except StripesError as exc:
        print(f"stripes: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise
        module, extra = missing
        command = getattr(args, "_command", parser.prog)
        hint = f"pip install 'stripes[{extra}]' (missing module '{module}')"
        print(f"{command} needs the {extra} extra: {hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stripes: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
