"""RoPE: closed form eq. (14), shift invariance, textbook RoPE on TIME positions, frequency schedules."""

from __future__ import annotations

import math

import pytest
import torch
from pe_helpers import rand_pos, rand_qk

from stripes.pe import build_pe, rope_kernel


@pytest.mark.parametrize("variant", ["A", "B", "C"])
@pytest.mark.parametrize("c", [1, 3])
def test_scores_equal_eq14(variant, c):
    pe = build_pe("rope", head_dim=8, n_heads=2, context_dim=c, variant=variant).double()
    if variant == "C":  # move away from the initial values so per-component frequencies differ
        with torch.no_grad():
            pe.freqs.add_(torch.rand_like(pe.freqs))
    q, k = rand_qk(tq=4, tk=6)
    pq, pk = rand_pos(t=4, c=c), rand_pos(t=6, c=c, seed=7)
    torch.testing.assert_close(pe.scores(q, k, pq, pk), pe.kernel_scores(q, k, pq, pk))


def test_rope_kernel_single_pair_by_hand():
    # one pair, f = 1: a = F1 cos(pm - pn) + F2 sin(pm - pn)
    q = torch.tensor([[[[1.0, 2.0]]]], dtype=torch.float64)
    k = torch.tensor([[[[3.0, -1.0]]]], dtype=torch.float64)
    tq, tk = (
        torch.full((1, 1, 1, 1), 0.7, dtype=torch.float64),
        torch.full((1, 1, 1, 1), 0.2, dtype=torch.float64),
    )
    f1, f2 = 1 * 3 + 2 * (-1), 1 * (-1) - 2 * 3
    expected = f1 * math.cos(0.5) + f2 * math.sin(0.5)
    assert rope_kernel(q, k, tq, tk).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("variant", ["A", "B", "C"])
def test_shift_invariance(variant):
    pe = build_pe("rope", head_dim=8, n_heads=2, context_dim=2, variant=variant).double()
    q, k = rand_qk(tq=6)
    pos = rand_pos(t=6, c=2)
    shift = torch.tensor([3.7, -11.0], dtype=torch.float64)
    torch.testing.assert_close(pe.scores(q, k, pos + shift), pe.scores(q, k, pos))
    # the rotated vectors themselves do change: invariance is a property of the product
    assert not torch.allclose(pe(q, k, pos + shift)[0], pe(q, k, pos)[0])


def textbook_rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Standard RoPE, (B, T, H, D): pair (x_{2i}, x_{2i+1}) as a complex number times e^{i t ω_i}."""
    _, t, _, d = x.shape
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rot = torch.polar(
        torch.ones(t, d // 2, dtype=torch.float64), torch.arange(t, dtype=torch.float64)[:, None] * inv
    )
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(xc * rot[None, :, None, :]).flatten(-2)


def test_time_positions_equal_textbook_rope():
    pe = build_pe("rope", head_dim=16, n_heads=3, variant="A").double()
    q, k = rand_qk(tq=12, h=3, d=16)
    pos = torch.arange(12, dtype=torch.float64)[None, :, None].expand(2, -1, -1)
    q_out, k_out = pe(q, k, pos)
    torch.testing.assert_close(q_out, textbook_rope(q))
    torch.testing.assert_close(k_out, textbook_rope(k))


def test_frequency_schedules():
    h, d = 4, 16
    a = build_pe("rope", head_dim=d, n_heads=h, variant="A").freqs[..., 0].double()
    expected = 10000.0 ** (-2 * torch.arange(d // 2, dtype=torch.float64) / d)
    torch.testing.assert_close(a, expected.expand(h, -1), rtol=1e-6, atol=0)
    b = build_pe("rope", head_dim=d, n_heads=h, variant="B").freqs[..., 0].double()
    # B: disjoint per-head slices whose union is one finer geometric grid of H·D/2 values
    grid = 10000.0 ** (-torch.arange(h * d // 2, dtype=torch.float64) / (h * d // 2))
    torch.testing.assert_close(b.flatten().sort().values, grid.sort().values, rtol=1e-6, atol=0)
    assert len(set(b.flatten().tolist())) == h * d // 2
    # strided slices: head h takes grid index j = d·H + h, so every head spans the whole range
    j = torch.arange(d // 2, dtype=torch.float64)[None, :] * h + torch.arange(h, dtype=torch.float64)[:, None]
    torch.testing.assert_close(b, 10000.0 ** (-j / (h * d // 2)), rtol=1e-6, atol=0)
    c = build_pe("rope", head_dim=d, n_heads=h, variant="C", context_dim=12)
    torch.testing.assert_close(c.freqs.detach(), b.float()[..., None].expand(-1, -1, 12))


def test_fixed_variant_with_vector_positions_uses_sum_of_components():
    pe = build_pe("rope", head_dim=8, n_heads=2, context_dim=12, variant="A").double()
    q, k = rand_qk(tq=3)
    pos = (torch.rand(2, 3, 12) > 0.5).double()
    scalar = build_pe("rope", head_dim=8, n_heads=2, context_dim=1, variant="A").double()
    torch.testing.assert_close(pe(q, k, pos)[0], scalar(q, k, pos.sum(-1, keepdim=True))[0])
