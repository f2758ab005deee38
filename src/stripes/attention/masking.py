"""Padding masks: validation and the select that keeps whatever padded rows hold out of every sum."""

from __future__ import annotations

import torch

from stripes.errors import ModelError


def check_key_padding_mask(mask: torch.Tensor | None, batch: int, length: int) -> None:
    """Raise ModelError unless ``mask`` is None or a bool (B, T) tensor."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (batch, length):
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ModelError(
            f"key_padding_mask must be a bool tensor of shape (B, T) = {(batch, length)}, True = padding; "
            f"got {got}"
        )


def zero_rows(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x (B, T, ...) with the rows where mask (B, T) is True replaced by 0 (a select: NaN there is gone)."""
    if mask is None:
        return x
    m = mask.reshape(*mask.shape, *([1] * (x.dim() - 2)))
    return torch.where(m, torch.zeros((), dtype=x.dtype, device=x.device), x)
