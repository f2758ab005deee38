"""Small random q, k and positions for the PE tests."""

from __future__ import annotations

import torch


def rand_qk(b=2, tq=5, tk=None, h=2, d=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    tk = tq if tk is None else tk
    q = torch.randn(b, tq, h, d, generator=g, dtype=dtype)
    k = torch.randn(b, tk, h, d, generator=g, dtype=dtype)
    return q, k


def rand_pos(b=2, t=5, c=1, dtype=torch.float64, seed=1, scale=10.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, c, generator=g, dtype=dtype) * scale
