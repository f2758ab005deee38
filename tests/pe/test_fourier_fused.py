"""The fused pooled Fourier code (F-StrIPE, SFF, SPE) is the same function as the autograd reference.

``fourier_pool`` (plain autograd over the (B, T, H, D, 2N) code) is the reference; the fused path shares
cos / sin between q and k, folds the query phases in by angle addition, deduplicates repeated positions
and has hand-written gradients, so outputs and every gradient are compared in float64, plus gradcheck.
"""

from __future__ import annotations

import pytest
import torch

import stripes.pe.fourier as fourier
from stripes.pe.fourier import fourier_pool, fourier_pool_fused, fourier_pool_shared


def _setup(mix_r=None, binary=False, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, t, h, d, n = 2, 11, 2, 5, 4
    dt = torch.float64
    q = torch.randn(b, t, h, d, generator=g, dtype=dt, requires_grad=True)
    k = torch.randn(b, t, h, d, generator=g, dtype=dt, requires_grad=True)
    if binary:  # repeated positions: the table of distinct positions is used
        pos = (torch.rand(b, t, c, generator=g, dtype=dt) < 0.4).to(dt)
    else:
        pos = torch.rand(b, t, c, generator=g, dtype=dt) * 10
    freqs = (torch.rand(h, d, n, c, generator=g, dtype=dt) / 2).requires_grad_()
    gains = (torch.rand(h, d, n, generator=g, dtype=dt) + 0.5).requires_grad_()
    offsets = torch.randn(h, d, n, generator=g, dtype=dt, requires_grad=True)
    mix = None
    if mix_r:
        mix = torch.randn(h, d, 2 * n, mix_r, generator=g, dtype=dt, requires_grad=True)
    return q, k, pos, freqs, gains, offsets, mix


@pytest.mark.parametrize("mix_r", [None, 6])
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("table", [True, False])
def test_fused_equals_reference_outputs_and_grads(mix_r, binary, table, monkeypatch):
    if not table:
        monkeypatch.setattr(fourier, "TABLE_ENTRIES", 0)
    q, k, pos, freqs, gains, offsets, mix = _setup(mix_r, binary)
    fused = fourier_pool_fused([(q, offsets), (k, None)], pos, freqs, gains, mix, chunk_size=3)
    ref = [fourier_pool(q, pos, freqs, gains, offsets, mix), fourier_pool(k, pos, freqs, gains, None, mix)]
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    params = [q, k, freqs, gains, offsets] + ([mix] if mix is not None else [])
    w = [torch.randn_like(x) for x in ref]
    g_fused = torch.autograd.grad(sum((x * y).sum() for x, y in zip(fused, w)), params)
    g_ref = torch.autograd.grad(sum((x * y).sum() for x, y in zip(ref, w)), params)
    for a, b in zip(g_fused, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_separate_positions_and_one_unused_output():
    q, k, pos, freqs, gains, offsets, _ = _setup()
    pos_k = pos.flip(1).contiguous()
    q_out, k_out = fourier_pool_shared(q, k, pos, pos_k, freqs, gains, offsets)
    torch.testing.assert_close(q_out, fourier_pool(q, pos, freqs, gains, offsets))
    torch.testing.assert_close(k_out, fourier_pool(k, pos_k, freqs, gains, None))
    # only q's output used: k gets no gradient, the parameters get q's part only
    (gq, gf) = torch.autograd.grad(q_out.square().sum(), (q, freqs))
    ref = fourier_pool(q, pos, freqs, gains, offsets)
    (gq_ref, gf_ref) = torch.autograd.grad(ref.square().sum(), (q, freqs))
    torch.testing.assert_close(gq, gq_ref)
    torch.testing.assert_close(gf, gf_ref)


@pytest.mark.parametrize("mixed", [False, True])
def test_gradcheck_including_positions(mixed):
    g = torch.Generator().manual_seed(1)
    dt = torch.float64
    x = torch.randn(1, 4, 1, 2, generator=g, dtype=dt, requires_grad=True)
    pos = torch.rand(1, 4, 2, generator=g, dtype=dt, requires_grad=True)
    freqs = torch.rand(1, 2, 3, 2, generator=g, dtype=dt, requires_grad=True)
    gains = torch.rand(1, 2, 3, generator=g, dtype=dt, requires_grad=True)
    offsets = torch.randn(1, 2, 3, generator=g, dtype=dt, requires_grad=True)
    mix = torch.randn(1, 2, 6, 3, generator=g, dtype=dt, requires_grad=True) if mixed else None

    def f(x, pos, freqs, gains, offsets, *mix):
        out = fourier_pool_fused([(x, offsets), (2 * x, None)], pos, freqs, gains, mix[0] if mix else None)
        return out[0] + out[1].square()

    inputs = (x, pos, freqs, gains, offsets) + ((mix,) if mixed else ())
    assert torch.autograd.gradcheck(f, inputs)


def test_distinct_positions_are_cached_per_tensor_and_version():
    pos = (torch.rand(2, 9, 3) < 0.5).float()
    u1, i1 = fourier._POS_CACHE.get(pos)
    assert fourier._POS_CACHE.get(pos)[0] is u1  # same tensor, same version: cached
    pos.add_(1.0)  # in-place change bumps the version: recomputed
    u2, i2 = fourier._POS_CACHE.get(pos)
    assert u2 is not u1
    torch.testing.assert_close(u2[i2].view_as(pos), pos)
