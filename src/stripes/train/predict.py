"""The one prediction path: batched forward passes of a harmonizer in eval mode, used by per-epoch
validation (:func:`stripes.train.loop.validate`), by ``stripes evaluate`` and by the harmonizer app.

The threshold-free BCE is :func:`stripes.metrics.bce.bce_with_logits` (one definition for the training
loss, validation and evaluation)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from stripes.metrics.bce import bce_with_logits
from stripes.train.data import collate


@torch.no_grad()
def forward_logits(
    model: torch.nn.Module, x: torch.Tensor, pos: torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Logits of one batch in eval mode: x (B, T, 256), pos (B, T, C) -> logits (B, T, 128) float32 on CPU.

    The model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        return model(x.to(device), pos.to(device)).float().cpu()
    finally:
        model.train(was_training)


def predict(
    model: torch.nn.Module,
    dataset: Any,
    indices: Sequence[int],
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    max_len: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield per window of ``dataset[indices]``: ``probs`` (T, 128) float32, ``target`` (T, 128) bool,
    ``bce_pos`` (T,) BCE per position (mean over pitches, from the logits), ``x`` (T, 256) bool,
    ``song_id``, ``start``. ``max_len`` crops every window to its first ticks."""
    for i in range(0, len(indices), batch_size):
        b = collate([dataset[j] for j in indices[i : i + batch_size]])
        x, y, pos = (b[k][:, :max_len] for k in ("x", "y", "pos"))
        logits = forward_logits(model, x, pos, device)
        bce = bce_with_logits(logits, y).mean(-1).numpy()
        probs = torch.sigmoid(logits).numpy()
        yn, xn = y.numpy() > 0.5, x.numpy() > 0.5
        for n in range(x.shape[0]):
            yield {
                "probs": probs[n],
                "target": yn[n],
                "bce_pos": bce[n],
                "x": xn[n],
                "song_id": int(b["song_id"][n]),
                "start": int(b["start"][n]),
            }


def mean_window_bce(windows: Sequence[dict[str, Any]]) -> float:
    """Mean over windows of each window's mean BCE (the cell mean when the windows have equal length)."""
    return float(np.mean([float(np.mean(w["bce_pos"], dtype=np.float64)) for w in windows]))
