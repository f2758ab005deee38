"""RoPEPool: eq. (23) term by term, per-pair-sum transform, dependence on p_m + p_n."""

from __future__ import annotations

import math

import pytest
import torch
from pe_helpers import rand_pos, rand_qk

from stripes.pe import build_pe, ropepool_kernel


@pytest.mark.parametrize("c", [1, 12])
def test_scores_equal_eq23(c):
    pe = build_pe("ropepool", head_dim=8, n_heads=2, context_dim=c).double()
    with torch.no_grad():
        pe.freqs.mul_(torch.rand_like(pe.freqs) * 3)
    q, k = rand_qk(tq=4, tk=5)
    pq, pk = rand_pos(t=4, c=c), rand_pos(t=5, c=c, seed=9)
    torch.testing.assert_close(pe.scores(q, k, pq, pk), pe.kernel_scores(q, k, pq, pk))


def test_transform_is_sqrt2_sin_cos_form():
    pe = build_pe("ropepool", head_dim=4, n_heads=1).double()
    q, k = rand_qk(b=1, tq=3, h=1, d=4)
    pos = rand_pos(b=1, t=3)
    q_out, _ = pe(q, k, pos)
    theta = pos * pe.freqs[:, :, 0].detach().double()  # (1, T, D/2) with one head
    expected = math.sqrt(2) * (
        q[..., 0::2][:, :, 0] * torch.sin(theta + math.pi / 4)
        + q[..., 1::2][:, :, 0] * torch.cos(theta + math.pi / 4)
    )
    torch.testing.assert_close(q_out[:, :, 0], expected)
    assert pe.out_dim == 2


def test_eq23_single_pair_by_hand():
    q1, q2, k1, k2, tm, tn = 0.3, -1.2, 0.8, 0.5, 0.9, -0.4
    dm, dp = tm - tn, tm + tn
    expected = (
        (q1 * k1 + q2 * k2) * math.cos(dm)
        + (q1 * k2 - q2 * k1) * math.sin(dm)
        + (q1 * k1 - q2 * k2) * math.sin(dp)
        + (q1 * k2 + q2 * k1) * math.cos(dp)
    )
    t = lambda v: torch.tensor(v, dtype=torch.float64).reshape(1, 1, 1, -1)  # noqa: E731
    assert ropepool_kernel(t([q1, q2]), t([k1, k2]), t([tm]), t([tn])).item() == pytest.approx(
        expected, rel=1e-12
    )


def test_not_shift_invariant_and_depends_on_position_sum():
    pe = build_pe("ropepool", head_dim=8, n_heads=2).double()
    with torch.no_grad():
        pe.freqs.fill_(0.3)
    q, k = rand_qk(tq=1)
    pm, pn = torch.tensor([[[2.0]]], dtype=torch.float64), torch.tensor([[[1.0]]], dtype=torch.float64)
    pm, pn = pm.expand(2, 1, 1), pn.expand(2, 1, 1)
    base = pe.scores(q, k, pm, pn)
    # same lag p_m − p_n, different sum p_m + p_n → different score
    shifted = pe.scores(q, k, pm + 1.5, pn + 1.5)
    assert (shifted - base).abs().max() > 1e-2
    # same sum, different lag → different score too
    assert (pe.scores(q, k, pm + 0.5, pn - 0.5) - base).abs().max() > 1e-2
    # the shift changes the score exactly through Δ⁺ = f(p_m + p_n): a shift with f·2·s = 2π restores it
    s = math.pi / 0.3
    torch.testing.assert_close(pe.scores(q, k, pm + s, pn + s), base)
    # RoPE with the same frequencies is invariant to the same shift
    rope = build_pe("rope", head_dim=8, n_heads=2).double()
    with torch.no_grad():
        rope.freqs.fill_(0.3)
    torch.testing.assert_close(rope.scores(q, k, pm + 1.5, pn + 1.5), rope.scores(q, k, pm, pn))


def test_initialised_like_rope_c():
    pool = build_pe("ropepool", head_dim=8, n_heads=3, context_dim=2)
    rope = build_pe("rope", head_dim=8, n_heads=3, context_dim=2, variant="C")
    torch.testing.assert_close(pool.freqs, rope.freqs)
    assert pool.freqs.requires_grad
