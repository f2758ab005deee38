"""Training pieces of the autoregressive accompaniment model (``task = "accompany"``).

The training loop is :func:`stripes.train.loop.train` (the same schedule, curriculum, augmentation,
checkpoints and resume as the parallel model); these functions supply what differs: the piano's onset roll
in each batch (notes keep their onsets, so repeated notes stay apart), the teacher-forced loss (one
parallel pass: :meth:`Accompanist.score`) and the validation NLL.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stripes.models.accompanist import Accompanist, shift_right


def onset_rolls(dataset: Any, indices: list[int]) -> torch.Tensor:
    """The piano's onset rolls (B, T, 128) float32 of windows ``indices``.

    POP909 windows read the prepared onset roll; a dataset without one (the synthetic stand-in) takes a
    note's first tick as its onset.
    """
    if hasattr(dataset, "onset"):
        rolls = [np.asarray(dataset.onset(i))[:, 256:384] for i in indices]
        return torch.from_numpy(np.stack(rolls).astype(np.float32))
    frame = torch.stack([torch.as_tensor(dataset[i]["y"], dtype=torch.float32) for i in indices])
    return frame * (1.0 - shift_right(frame))


def teacher_forced_loss(
    net: torch.nn.Module, x: torch.Tensor, pos: torch.Tensor, onset: torch.Tensor, frame: torch.Tensor
) -> torch.Tensor:
    """Mean NLL per tick (nats) of the piano rolls under the model, one parallel pass."""
    frame_prev = shift_right(frame)
    logits = net(x, pos, shift_right(onset), frame_prev)
    return Accompanist.loss(Accompanist.score(logits, onset, frame, frame_prev))


@torch.no_grad()
def validate_accompanist(
    model: Accompanist, dataset: Any, indices: list[int], batch_size: int, device: torch.device
) -> dict[str, float]:
    """Mean over windows of the teacher-forced NLL per tick (nats), and its three terms."""
    from stripes.train.data import collate

    model.eval()
    sums = {"count": [], "onset": [], "hold": [], "nll": []}
    for s in range(0, len(indices), batch_size):
        idx = indices[s : s + batch_size]
        b = collate([dataset[i] for i in idx])
        x, frame, pos = (b[k].to(device) for k in ("x", "y", "pos"))
        onset = onset_rolls(dataset, idx).to(device)
        frame_prev = shift_right(frame)
        logits = model(x, pos, shift_right(onset), frame_prev)
        scores = Accompanist.score(logits, onset, frame, frame_prev)
        for k in sums:
            sums[k] += scores[k].float().mean(dim=1).tolist()
    model.train()
    return {f"val_{'nll' if k == 'nll' else k + '_nll'}": float(np.mean(v)) for k, v in sums.items()}
