"""Learning-rate schedule and sequence-length curriculum (docs/papers.md §9.4)."""

from __future__ import annotations

import math


def curriculum_length(step: int, total_steps: int, min_len: int, max_len: int) -> int:
    """Training length at optimizer step ``step`` (0-based).

    P3 code: L = max(min_len, floor((L_max - min_len) * step / S) + min_len) while step <= S, else L_max.
    """
    if total_steps <= 0 or step >= total_steps:
        return max_len
    return min(max_len, max(min_len, math.floor((max_len - min_len) * step / total_steps) + min_len))


def lr_factor(step: int, warmup_steps: int, steps_per_epoch: int, gamma: float) -> float:
    """Multiplier of the base lr at step ``step`` (0-based): linear warm-up x StepLR(gamma) per epoch."""
    warm = 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)
    return warm * gamma ** (step // max(1, steps_per_epoch))
