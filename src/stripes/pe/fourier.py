"""Shared rotation / Fourier helpers used by RoPE, RoPEPool, F-StrIPE₁, F-StrIPE and SFF/SPE.

Angles are always ``theta[b, t, h, i] = sum_c freqs[h, i, c] * pos[b, t, c]`` (one frequency vector per
head and unit i over the C context levels); the 2π factor, where a paper has one, is applied by the caller.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from stripes.errors import ConfigError
from stripes.pe.base import as_positions

TWO_PI = 2.0 * math.pi


def angles(pos: Tensor, freqs: Tensor) -> Tensor:
    """pos (B, T, C), freqs (H, U, C) → theta (B, T, H, U) = Σ_c freqs[h, u, c] pos[b, t, c].

    pos may also be (T, C) (one sequence) or (B, T) when C = 1; a C that differs from freqs' raises.
    """
    pos = as_positions(pos, freqs.shape[-1], check_finite=False)
    return torch.einsum("btc,huc->bthu", pos, freqs.to(pos.dtype))


def rotate_pairs(x: Tensor, theta: Tensor) -> Tensor:
    """Rotate interleaved pairs (2d, 2d+1) of x by theta (the RoPE rotation).

    # P1 eq. (22): h(a) = [a_{2d} cos θ − a_{2d+1} sin θ, a_{2d+1} cos θ + a_{2d} sin θ]

    Parameters
    ----------
    x : Tensor
        (B, T, H, D), D even.
    theta : Tensor
        Angles (B, T, H, D/2), one per pair.

    Returns
    -------
    Tensor
        The rotated x, (B, T, H, D), pairs still interleaved.
    """
    x1, x2 = x[..., 0::2], x[..., 1::2]
    cos, sin = torch.cos(theta), torch.sin(theta)
    return torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)


def geometric_frequencies(n_heads: int, n_units: int, base: float, per_head: bool) -> Tensor:
    """RoPE frequency schedules (H, n_units), angle = f · p (no 2π).

    per_head=False (RoPE A): f_d = base^(−d/n_units), d = 0..n_units−1, the same for every head
    (with n_units = D/2 this is the usual base^(−2d/D)).
    per_head=True (RoPE B): one geometric grid of H·n_units values base^(−j/(H·n_units)); head h takes
    j = d·H + h (strided slices, so every head spans the whole range with its own offsets).
    """
    if not base > 1:
        raise ConfigError(f"base must be > 1, got {base}")
    d = torch.arange(n_units, dtype=torch.float64)
    if not per_head:
        return (base ** (-d / n_units)).unsqueeze(0).expand(n_heads, n_units).clone()
    h = torch.arange(n_heads, dtype=torch.float64)
    j = d.unsqueeze(0) * n_heads + h.unsqueeze(1)
    return base ** (-j / (n_heads * n_units))


def fourier_phase(pos: Tensor, freqs: Tensor, offsets: Tensor | None = None) -> Tensor:
    """pos (B, T, C), freqs (H, D, N, C) cycles per unit, offsets (H, D, N) → 2π F p + θ, (B, T, H, D, N)."""
    pos = as_positions(pos, freqs.shape[-1], check_finite=False)
    phase = TWO_PI * torch.einsum("btc,hdnc->bthdn", pos, freqs.to(pos.dtype))
    if offsets is not None:
        phase = phase + offsets.to(pos.dtype)
    return phase


def fourier_pool(
    x: Tensor,
    pos: Tensor,
    freqs: Tensor,
    gains: Tensor,
    offsets: Tensor | None = None,
    mix: Tensor | None = None,
    chunk_size: int | None = None,
    pooled: bool = True,
) -> Tensor:
    """Pooled Fourier code of x, computed in chunks over time so (B, T, H, D, 2N) is never materialised.

    x (B, T, H, D), pos (B, T, C), freqs (H, D, N, C), gains (H, D, N), offsets (H, D, N) or None.
    With Ω_d(p) = [cos(2π F_d p + θ_d), sin(2π F_d p + θ_d)] ∈ R^{2N} (cos block then sin block):
    without ``mix``: out = Σ_d x_d λ̈_d ⊙ Ω_d(p) → (B, T, H, 2N);
    with ``mix`` (H, D, 2N, R): out = Σ_{d, j} x_d λ̈_dj Ω_dj(p) mix_djr → (B, T, H, R);
    ``pooled=False`` (no mix): the D codes are concatenated instead of summed → (B, T, H, D·2N).
    """
    length = x.shape[1]
    step = length if not chunk_size or chunk_size >= length else int(chunk_size)
    gains = gains.to(x.dtype)
    if mix is not None:
        mix = mix.to(x.dtype)

    def chunk(
        xs: Tensor, ps: Tensor, freqs: Tensor, gains: Tensor, offsets: Tensor | None, mix: Tensor | None
    ):
        ph = fourier_phase(ps, freqs, offsets)  # (B, t, H, D, N)
        xs = xs.unsqueeze(-1) * gains
        w = torch.cat((xs * torch.cos(ph), xs * torch.sin(ph)), dim=-1)  # (B, t, H, D, 2N)
        if mix is not None:
            return torch.einsum("bthdj,hdjr->bthr", w, mix)
        return w.sum(dim=3) if pooled else w.flatten(-2)

    # With several chunks under autograd, recompute each chunk in backward (activation checkpointing):
    # otherwise autograd would keep every chunk's (B, t, H, D, 2N) intermediates and chunking would not
    # bound memory in training.
    recompute = step < length and torch.is_grad_enabled()
    outs = []
    for start in range(0, length, step):
        args = (x[:, start : start + step], pos[:, start : start + step], freqs, gains, offsets, mix)
        if recompute:
            outs.append(checkpoint(chunk, *args, use_reentrant=False))
        else:
            outs.append(chunk(*args))
    return torch.cat(outs, dim=1)


def check_chunk_size(chunk_size: int | None) -> int | None:
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ConfigError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return chunk_size


def fill_code(buf: Tensor, c: Tensor, s: Tensor, alpha: Tensor, beta: Tensor | None) -> Tensor:
    """buf (n, H, 2, N, D) <- [α c − β s ; β c + α s]: the phase-shifted code λ Ω_d(p) (P2 eq. (9))."""
    lo, hi = buf[:, :, 0], buf[:, :, 1]
    torch.mul(c, alpha, out=lo)
    torch.mul(s, alpha, out=hi)
    if beta is not None:
        lo.addcmul_(s, beta, value=-1.0)
        hi.addcmul_(c, beta)
    return buf


def phase_matrix(freqs: Tensor, dtype: torch.dtype) -> Tensor:
    """2π F as (C, H·N·D), columns in (h, n, d) order, from freqs (H, D, N, C)."""
    h, d, n, c = freqs.shape
    return (TWO_PI * freqs.to(dtype)).permute(3, 0, 2, 1).reshape(c, h * n * d).contiguous()
