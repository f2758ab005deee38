"""Where the raw data and the prepared cache live."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_ROOT = Path("~/.cache/stripes/data")
DEFAULT_CACHE_DIR = Path("~/.cache/stripes/prepared")


def resolve_data_root(value: str | os.PathLike[str] | None = None) -> Path:
    """`value` (``--data-root``), else ``$STRIPES_DATA``, else ``~/.cache/stripes/data``."""
    if value is not None and str(value) != "":
        return Path(value).expanduser()
    env = os.environ.get("STRIPES_DATA")
    if env:
        return Path(env).expanduser()
    return DEFAULT_DATA_ROOT.expanduser()


def resolve_cache_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """`value` (``--cache-dir``), else ``$STRIPES_CACHE``, else ``~/.cache/stripes/prepared``."""
    if value is not None and str(value) != "":
        return Path(value).expanduser()
    env = os.environ.get("STRIPES_CACHE")
    if env:
        return Path(env).expanduser()
    return DEFAULT_CACHE_DIR.expanduser()
