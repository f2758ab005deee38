"""Atomic checkpoint and file writes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from stripes.errors import TrainingError
from stripes.fileio import atomic_write_bytes


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupted or foreign file
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from exc
