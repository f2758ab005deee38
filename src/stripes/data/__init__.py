"""POP909 data: resolving and fetching raw files, aligned pianorolls, labels, windows, the Dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripes.data.paths import resolve_cache_dir, resolve_data_root

if TYPE_CHECKING:
    from stripes.data.dataset import HarmonizationDataset
    from stripes.data.fetch import fetch
    from stripes.data.melody import MelodyDataset
    from stripes.data.prepare import prepare
    from stripes.data.store import PreparedData

__all__ = ["HarmonizationDataset", "MelodyDataset", "PreparedData", "fetch", "prepare", "resolve_cache_dir",
           "resolve_data_root"]

_LAZY = {"HarmonizationDataset": "dataset", "MelodyDataset": "melody", "PreparedData": "store",
         "fetch": "fetch", "prepare": "prepare"}


def __getattr__(name: str) -> Any:  # lazy: importing stripes.data does not import torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"stripes.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'stripes.data' has no attribute {name!r}")
