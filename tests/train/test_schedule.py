"""Length curriculum and learning-rate schedule (docs/papers.md §9.4)."""

from __future__ import annotations

import math

from stripes.train.schedule import curriculum_length, lr_factor


def test_curriculum_matches_p3_formula() -> None:
    S, lo, hi = 300, 16, 1024
    for step in (0, 1, 7, 150, 299):
        assert curriculum_length(step, S, lo, hi) == max(lo, math.floor((hi - lo) * step / S) + lo)
    assert curriculum_length(0, S, lo, hi) == 16
    assert curriculum_length(150, S, lo, hi) == 16 + 504
    assert curriculum_length(S, S, lo, hi) == hi and curriculum_length(10 * S, S, lo, hi) == hi
    assert curriculum_length(5, 0, lo, hi) == hi  # curriculum off
    lengths = [curriculum_length(s, S, lo, hi) for s in range(S + 1)]
    assert lengths == sorted(lengths)


def test_lr_warmup_then_step_decay() -> None:
    assert lr_factor(0, 10, 100, 0.85) == 0.1
    assert lr_factor(9, 10, 100, 0.85) == 1.0
    assert lr_factor(99, 10, 100, 0.85) == 1.0
    assert math.isclose(lr_factor(100, 10, 100, 0.85), 0.85)
    assert math.isclose(lr_factor(250, 10, 100, 0.85), 0.85**2)
    assert lr_factor(0, 0, 100, 0.85) == 1.0
