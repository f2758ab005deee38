"""Binary cross-entropy (natural log) from logits: the one BCE of the project.

The training loss (:meth:`stripes.models.Harmonizer.loss`), per-epoch validation and ``stripes evaluate``
all call :func:`bce_with_logits`; it accepts torch tensors or numpy arrays of logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stripes.errors import DataError


def bce_with_logits(logits: Any, targets: Any) -> torch.Tensor:
    """Per-cell BCE, computed in float32 (or float64 if given): logits and targets (..., P) -> (..., P)."""
    lg = torch.as_tensor(logits)
    y = torch.as_tensor(targets)
    if lg.shape != y.shape:
        raise DataError(f"logits shape {tuple(lg.shape)} != targets shape {tuple(y.shape)}")
    dtype = torch.float64 if lg.dtype == torch.float64 else torch.float32
    return F.binary_cross_entropy_with_logits(lg.to(dtype), y.to(dtype), reduction="none")


def bce_logits_mean(logits: Any, targets: Any) -> float:
    """Mean BCE over every cell of (T, P) or (B, T, P) logits/targets."""
    return float(bce_with_logits(logits, targets).mean())


def bce_logits_per_position(logits: Any, targets: Any) -> np.ndarray:
    """Mean BCE per tick, averaged over pitches (and windows): (T, P) or (B, T, P) -> (T,)."""
    c = bce_with_logits(logits, targets)
    if c.dim() not in (2, 3):
        raise DataError(f"expected (T, P) or (B, T, P) arrays, got shape {tuple(c.shape)}")
    return (c.mean(-1) if c.dim() == 2 else c.mean(dim=(0, 2))).double().numpy()
