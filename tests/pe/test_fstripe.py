"""F-StrIPE (RFF): closed forms of P2 eq. (7)–(9), stationarity, chunking."""

from __future__ import annotations

import math

import pytest
import torch
from pe_helpers import rand_pos, rand_qk

from stripes.pe import build_pe, rff_kernel


def make(pooled=True, c=3, n_sines=4, chunk_size=256):
    return build_pe(
        "fstripe", head_dim=6, n_heads=2, context_dim=c, n_sines=n_sines, pooled=pooled, chunk_size=chunk_size
    ).double()


@pytest.mark.parametrize("pooled", [True, False])
def test_scores_equal_closed_form(pooled):
    pe = make(pooled)
    assert pe.out_dim == (8 if pooled else 48)
    q, k = rand_qk(tq=4, tk=5, d=6)
    pq, pk = rand_pos(t=4, c=3), rand_pos(t=5, c=3, seed=5)
    torch.testing.assert_close(pe.scores(q, k, pq, pk), pe.kernel_scores(q, k, pq, pk))


def test_kernel_entry_by_hand():
    pe = make(c=2)
    pq, pk = rand_pos(b=1, t=2, c=2), rand_pos(b=1, t=3, c=2, seed=2)
    kern = pe.kernel(pq, pk)
    assert kern.shape == (1, 2, 6, 2, 3)
    f, lam, th = pe.code.freqs.detach(), pe.code.gains.detach(), pe.code.offsets.detach()
    h, d, m, n = 1, 4, 1, 2
    expected = (
        sum(
            lam[h, d, w] ** 2
            * math.cos(2 * math.pi * float(f[h, d, w] @ (pq[0, m] - pk[0, n])) + th[h, d, w])
            for w in range(4)
        )
        / 4
    )
    assert kern[0, h, d, m, n].item() == pytest.approx(float(expected), rel=1e-10)


def test_unpooled_kernel_is_stationary():
    pe = make(pooled=False)
    q, k = rand_qk(tq=5, d=6)
    pos = rand_pos(t=5, c=3)
    torch.testing.assert_close(
        pe.scores(q, k, pos + torch.tensor([1.0, -7.0, 30.0], dtype=torch.float64)), pe.scores(q, k, pos)
    )
    # with zero phases, P_d[m, m] = mean_ω λ²
    with torch.no_grad():
        pe.code.offsets.zero_()
    diag = pe.kernel(pos, pos).diagonal(dim1=-2, dim2=-1)
    torch.testing.assert_close(diag, (pe.code.gains.detach() ** 2).mean(-1)[None, :, :, None].expand_as(diag))


def test_rff_kernel_is_positive_semidefinite_without_phases():
    pe = make(c=1)
    with torch.no_grad():
        pe.code.offsets.zero_()
    pos = rand_pos(b=1, t=12, c=1)
    kern = rff_kernel(pos, pos, pe.code.freqs, pe.code.gains, pe.code.offsets)[0]  # (H, D, T, T)
    eig = torch.linalg.eigvalsh(kern.detach())
    assert eig.min() > -1e-10


@pytest.mark.parametrize("pooled", [True, False])
def test_chunked_equals_unchunked(pooled):
    full = make(pooled, chunk_size=None)
    chunked = make(pooled, chunk_size=3)
    chunked.load_state_dict(full.state_dict())
    q, k = rand_qk(tq=11, tk=7, d=6)
    pq, pk = rand_pos(t=11, c=3), rand_pos(t=7, c=3, seed=8)
    outs_full, outs_chunked = full(q, k, pq, pk), chunked(q, k, pq, pk)
    for a, b in zip(outs_full, outs_chunked):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # gradients too (chunks are recomputed in backward)
    sum(o.square().sum() for o in outs_full).backward()
    sum(o.square().sum() for o in outs_chunked).backward()
    grads = dict(chunked.named_parameters())
    for name, param in full.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, rtol=1e-10, atol=1e-12)


def test_code_parametrisation_is_spe_like():
    """F = sigmoid(raw)/2 ∈ (0, 0.5) cycles per unit (raw ~ N(−4, 1)), λ = softplus(raw gains) (P2, SPE)."""
    pe = build_pe("fstripe", head_dim=16, n_heads=4, context_dim=3, n_sines=8)
    code = pe.code
    raw_f, raw_g = code.raw_freqs.detach().double(), code.raw_gains.detach().double()
    torch.testing.assert_close(code.freqs.detach().double(), 1 / (2 * (1 + torch.exp(-raw_f))))
    torch.testing.assert_close(code.gains.detach().double(), torch.log1p(torch.exp(raw_g)))
    assert code.freqs.shape == (4, 16, 8, 3) and code.gains.shape == code.offsets.shape == (4, 16, 8)
    assert 0 < code.freqs.min() and code.freqs.max() < 0.5
    assert abs(raw_f.mean().item() + 4.0) < 0.2
