"""F-StrIPE₁: eq. (15), pooled cross terms, shift invariance, widths."""

from __future__ import annotations

import torch
from pe_helpers import rand_pos, rand_qk

from stripes.pe import build_pe, fstripe1_kernel


def perturbed(pooled, c=1):
    pe = build_pe("fstripe1", head_dim=8, n_heads=2, context_dim=c, pooled=pooled).double()
    with torch.no_grad():
        pe.freqs.add_(torch.rand_like(pe.freqs))
    return pe


def test_unpooled_scores_equal_eq15():
    pe = perturbed(False, c=3)
    assert pe.out_dim == 16
    q, k = rand_qk(tq=4, tk=6)
    pq, pk = rand_pos(t=4, c=3), rand_pos(t=6, c=3, seed=4)
    s = pe.scores(q, k, pq, pk)
    torch.testing.assert_close(s, fstripe1_kernel(q, k, pe.theta(pq), pe.theta(pk)))
    # explicit double loop of eq. (15)
    f = pe.freqs.detach()
    b, h, m, n = 1, 1, 2, 3
    expected = sum(
        q[b, m, h, d] * k[b, n, h, d] * torch.cos(f[h, d] @ (pq[b, m] - pk[b, n])) for d in range(8)
    )
    torch.testing.assert_close(s[b, h, m, n], expected)


def test_pooled_scores_are_eq15_plus_cross_terms():
    pe = perturbed(True)
    assert pe.out_dim == 2
    q, k = rand_qk(tq=4, tk=5)
    pq, pk = rand_pos(t=4), rand_pos(t=5, seed=4)
    s = pe.scores(q, k, pq, pk)
    torch.testing.assert_close(s, pe.kernel_scores(q, k, pq, pk))
    tq, tk = pe.theta(pq), pe.theta(pk)
    diag = fstripe1_kernel(q, k, tq, tk)
    cross = sum(
        torch.einsum("bmh,bnh->bhmn", q[..., d], k[..., e])
        * torch.cos(tq[..., d].permute(0, 2, 1)[..., None] - tk[..., e].permute(0, 2, 1)[..., None, :])
        for d in range(8)
        for e in range(8)
        if d != e
    )
    torch.testing.assert_close(s, diag + cross)


def test_pooled_with_shared_frequency_is_exactly_shift_invariant():
    pe = build_pe("fstripe1", head_dim=8, n_heads=2).double()
    with torch.no_grad():
        pe.freqs.fill_(0.4)
    q, k = rand_qk(tq=5)
    pos = rand_pos(t=5)
    # one shared frequency: C(q)·C(k) = (Σ q)(Σ k) cos(f (p_m − p_n))
    expected = torch.einsum("bmh,bnh->bhmn", q.sum(-1), k.sum(-1)) * torch.cos(
        0.4 * (pos[..., 0][:, None, :, None] - pos[..., 0][:, None, None, :])
    )
    torch.testing.assert_close(pe.scores(q, k, pos), expected)
    torch.testing.assert_close(pe.scores(q, k, pos + 5.5), expected)


def test_unpooled_shift_invariance():
    pe = perturbed(False, c=2)
    q, k = rand_qk(tq=5)
    pos = rand_pos(t=5, c=2)
    torch.testing.assert_close(pe.scores(q, k, pos - 20.0), pe.scores(q, k, pos))


def test_init_pairs_share_rope_b_frequencies():
    pe = build_pe("fstripe1", head_dim=8, n_heads=2)
    rope_b = build_pe("rope_b", head_dim=8, n_heads=2)
    torch.testing.assert_close(pe.freqs[:, 0::2].detach(), rope_b.freqs)
    torch.testing.assert_close(pe.freqs[:, 1::2].detach(), rope_b.freqs)
