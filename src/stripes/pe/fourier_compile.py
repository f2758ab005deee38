"""F-StrIPE's fused pooled codes as one opaque operator for ``torch.compile``.

The fused kernel (:mod:`stripes.pe.fourier_fused`) groups tokens by distinct position with
``torch.unique``, whose output size depends on the data: Dynamo cannot trace it. Under compilation the
pooled F-StrIPE codes of self-attention (q and k at the same positions) therefore go through
``stripes::fourier_pool_pair``, a custom operator that runs the same eager fused code (its output shapes
are known in advance: (B, T, H, 2N) for q and for k), and whose backward operator calls the fused
kernel's own closed-form backward. Eager code never goes through here; compiled graphs keep the fused
kernel's speed and memory instead of the (B, T, H, D, 2N) intermediates of the plain formula.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import Tensor

from stripes.pe.fourier_fused import _LAYOUT_CACHE, CHUNK_ENTRIES, _gathered, _PooledFn


def _step(q: Tensor, freqs: Tensor, chunk: int) -> int:
    h, d, n, _ = freqs.shape
    step = max(1, CHUNK_ENTRIES // (h * d * 2 * n))
    return min(step, q.shape[0] * chunk) if chunk else step


def _coefficients(gains: Tensor, offsets: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """a, b of the queries (λ cos θ, λ sin θ) and a of the keys (λ), as (H, N, D)."""
    lam, th = gains.to(dtype).transpose(1, 2), offsets.to(dtype).transpose(1, 2)
    return (lam * torch.cos(th)).contiguous(), (lam * torch.sin(th)).contiguous(), lam.contiguous()


@torch.library.custom_op("stripes::fourier_pool_pair", mutates_args=())
def fourier_pool_pair(
    q: Tensor, k: Tensor, pos: Tensor, freqs: Tensor, gains: Tensor, offsets: Tensor, chunk: int
) -> tuple[Tensor, Tensor]:
    """Pooled F-StrIPE codes of q (with query phases) and k at the same positions: (B, T, H, 2N) each."""
    aq, bq, ak = _coefficients(gains, offsets, q.dtype)
    layout = _LAYOUT_CACHE.get(pos)
    q_out, k_out = _PooledFn.forward(
        SimpleNamespace(save_for_backward=lambda *t: None), layout, _step(q, freqs, chunk), pos, freqs,
        q, aq, bq, k, ak, None,
    )
    return q_out.contiguous(), k_out.contiguous()


@fourier_pool_pair.register_fake
def _(q, k, pos, freqs, gains, offsets, chunk):
    n2 = 2 * freqs.shape[2]
    return q.new_empty(*q.shape[:3], n2), k.new_empty(*k.shape[:3], n2)


@torch.library.custom_op("stripes::fourier_pool_pair_backward", mutates_args=())
def fourier_pool_pair_backward(
    gq: Tensor, gk: Tensor, q: Tensor, k: Tensor, pos: Tensor, freqs: Tensor, gains: Tensor,
    offsets: Tensor, chunk: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of :func:`fourier_pool_pair` for q, k, freqs, gains, offsets: the fused kernel's
    closed-form backward on what its forward saves, then the chain rule through a = λ cos θ, b = λ sin θ
    (queries) and a = λ (keys)."""
    dtype = q.dtype
    h = freqs.shape[0]
    aq, bq, ak = _coefficients(gains, offsets, dtype)
    layout = _LAYOUT_CACHE.get(pos)
    ctx = SimpleNamespace(
        layout=layout, step=_step(q, freqs, chunk), has_b=[True, False], x_shapes=[q.shape, k.shape],
        saved_tensors=(pos, freqs, _gathered(q, layout, h), _gathered(k, layout, h), aq, bq, ak),
        needs_input_grad=(False, False, False, True, True, True, True, True, True, False),
    )
    out = _PooledFn.backward(ctx, gq.contiguous(), gk.contiguous())
    grad_freqs, gx_q, ga_q, gb_q, gx_k, ga_k = out[3], out[4], out[5], out[6], out[7], out[8]
    lam, th = gains.to(dtype).transpose(1, 2), offsets.to(dtype).transpose(1, 2)
    cos, sin = torch.cos(th), torch.sin(th)
    g_lam = (ga_q * cos + gb_q * sin + ga_k).transpose(1, 2).to(gains.dtype).contiguous()
    g_th = (lam * (gb_q * cos - ga_q * sin)).transpose(1, 2).to(offsets.dtype).contiguous()
    return gx_q, gx_k, grad_freqs.contiguous(), g_lam, g_th


@fourier_pool_pair_backward.register_fake
def _(gq, gk, q, k, pos, freqs, gains, offsets, chunk):
    return tuple(torch.empty_like(t) for t in (q, k, freqs, gains, offsets))


def _setup_context(ctx, inputs, output) -> None:
    q, k, pos, freqs, gains, offsets, chunk = inputs
    ctx.save_for_backward(q, k, pos, freqs, gains, offsets)
    ctx.chunk = chunk


def _backward(ctx, gq, gk):
    q, k, pos, freqs, gains, offsets = ctx.saved_tensors
    n2 = 2 * freqs.shape[2]
    gq = q.new_zeros(*q.shape[:3], n2) if gq is None else gq
    gk = k.new_zeros(*k.shape[:3], n2) if gk is None else gk
    g = fourier_pool_pair_backward(gq, gk, q, k, pos, freqs, gains, offsets, ctx.chunk)
    return g[0], g[1], None, g[2], g[3], g[4], None


fourier_pool_pair.register_autograd(_backward, setup_context=_setup_context)
