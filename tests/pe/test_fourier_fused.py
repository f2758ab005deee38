"""The fused pooled Fourier code (F-StrIPE, SFF, SPE) is the same function as the autograd reference.

``fourier_pool`` (plain autograd over the (B, T, H, D, 2N) code) is the reference; the fused path shares
cos / sin between q and k, folds the query phases in by angle addition, builds the codes once per distinct
position, groups the tokens by position into padded buckets and has hand-written gradients, so outputs and
every gradient are compared in float64, plus gradcheck.
"""

from __future__ import annotations

import pytest
import torch

import stripes.pe.fourier_fused as fused_mod
import stripes.pe.fourier_token as token_mod
from stripes.pe.fourier import fourier_pool
from stripes.pe.fourier_fused import fourier_pool_fused, fourier_pool_shared


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
    if not table:  # one row per token: no deduplication (pooled), no table of distinct positions (mixed)
        monkeypatch.setattr(fused_mod, "DEDUP_MAX_FRACTION", 0.0)
        monkeypatch.setattr(token_mod, "TABLE_ENTRIES", 0)
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


def test_layout_is_cached_per_tensor_and_version():
    pos = (torch.rand(2, 9, 3) < 0.5).float()
    lay = fused_mod._LAYOUT_CACHE.get(pos)
    assert fused_mod._LAYOUT_CACHE.get(pos) is lay  # same tensor, same version: cached
    pos.add_(1.0)  # in-place change bumps the version: recomputed
    lay2 = fused_mod._LAYOUT_CACHE.get(pos)
    assert lay2 is not lay
    torch.testing.assert_close(lay2.rows[lay2.row_of].view_as(pos), pos)


@pytest.mark.parametrize("b,t", [(3, 40), (8, 16)])
def test_layout_buckets_cover_every_token_once(b, t):
    g = torch.Generator().manual_seed(2)
    pos = (torch.rand(b, t, 4, generator=g) < 0.2).float()  # a few very frequent rows, many rare
    lay = fused_mod._Layout(pos, dedup=True)
    assert not lay.identity
    tok = lay.slot_tok[lay.slot_tok < b * t]
    assert torch.equal(torch.sort(tok).values, torch.arange(b * t))
    assert [k for k, *_ in lay.buckets] == sorted({k for k, *_ in lay.buckets})
    for k, r0, r1, s0 in lay.buckets:
        slots = lay.slot_tok[s0 : s0 + (r1 - r0) * k].view(r1 - r0, k)
        for r in range(r1 - r0):
            real = slots[r][slots[r] < b * t]
            assert 0 < real.numel() <= k and real.numel() > (2 * k) // 3 - 1
            assert bool((lay.row_of[real] == r0 + r).all())
    gidx, tidx, pad = lay.gather_index(3)
    assert torch.equal(gidx[tidx], torch.arange(b * t * 3))
    assert pad.numel() == (lay.n_slots - b * t) * 3 and not bool(torch.isin(pad, tidx).any())


@pytest.mark.parametrize("mix_r", [None, 5])
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_many_repeats_padded_buckets_and_blocks(mix_r, chunk):
    """TIME-like positions shared by the batch plus a heavily repeated row: buckets > 1 with padding,
    blocks cutting through buckets (chunk_size 1: a block of B rows)."""
    q, k, _, freqs, gains, offsets, mix = _setup(mix_r, c=1, seed=3)
    b, t = q.shape[:2]
    pos = torch.arange(t, dtype=q.dtype).view(1, t, 1).repeat(b, 1, 1)
    pos[:, 5:9] = 0.0  # row 0 gets 10 tokens: bucket 12 with padding
    fused = fourier_pool_fused([(q, offsets), (k, None)], pos, freqs, gains, mix, chunk_size=chunk)
    ref = [fourier_pool(q, pos, freqs, gains, offsets, mix), fourier_pool(k, pos, freqs, gains, None, mix)]
    params = [q, k, freqs, gains, offsets] + ([mix] if mix is not None else [])
    w = [torch.randn_like(x) for x in ref]
    g_fused = torch.autograd.grad(sum((x * y).sum() for x, y in zip(fused, w)), params)
    g_ref = torch.autograd.grad(sum((x * y).sum() for x, y in zip(ref, w)), params)
    for a, b_ in zip(list(fused) + list(g_fused), ref + list(g_ref)):
        torch.testing.assert_close(a, b_, rtol=1e-10, atol=1e-10)


def test_float32_pe_modules_match_reference_codes():
    """fstripe / fstripe_sff modules (float32, BIN-like positions) agree with the autograd reference."""
    from stripes.pe import build_pe

    torch.manual_seed(0)
    q, k = torch.randn(2, 64, 2, 8), torch.randn(2, 64, 2, 8)
    pos = (torch.rand(2, 64, 3) < 0.3).float()
    for name in ("fstripe", "fstripe_sff"):
        pe = build_pe(name, head_dim=8, n_heads=2, context_dim=3).eval()
        q_out, k_out = pe(q, k, pos)
        code = pe.code
        if name == "fstripe":
            gains = code.gains / pe.n_sines**0.5
            ref_q = fourier_pool(q, pos, code.freqs, gains, code.offsets)
            ref_k = fourier_pool(k, pos, code.freqs, gains, None)
        else:
            mix = pe.z_eval / (pe.n_sines * pe.n_realizations) ** 0.5
            ref_q = fourier_pool(q, pos, code.freqs, code.gains, code.offsets, mix)
            ref_k = fourier_pool(k, pos, code.freqs, code.gains, None, mix)
        torch.testing.assert_close(q_out, ref_q, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(k_out, ref_k, rtol=1e-4, atol=1e-5)
