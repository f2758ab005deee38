"""Kernelized (linear) attention on feature-mapped queries and keys.

out_m = phi(q_m)^T S_m / (phi(q_m)^T z_m + eps), S_m = sum_n phi(k_n) v_n^T, z_m = sum_n phi(k_n)
(P1 eq. (3), P2 eq. (2); the causal form sums over n <= m, as in fast-transformers CausalLinearAttention).

The causal form is computed by chunks of C positions: within a chunk a masked (C, C) product, across chunks
a carried state (the exclusive prefix sum of per-chunk k^T v). Memory is O(T (C + M Dv / C)) per (batch, head)
instead of the O(T M Dv) of a per-position cumulative sum. All sums are accumulated in float32 at least
(bf16/fp16 inputs and autocast included); the output is cast back to the dtype of ``v``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from stripes.errors import ConfigError


class LinearAttentionState(NamedTuple):
    """Causal linear attention state: s (B, H, M, Dv) = sum phi(k) v^T and z (B, H, M) = sum phi(k)."""

    s: torch.Tensor
    z: torch.Tensor


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ConfigError(
            "linear_attention expects q, k (B, T, H, M) and v (B, T, H, Dv); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape[:3] != v.shape[:3]:
        raise ConfigError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must agree on (B, T, H)")
    if q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2] or q.shape[3] != k.shape[3]:
        raise ConfigError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must agree on B, H and M")
    if causal and q.shape[1] != k.shape[1]:
        raise ConfigError(f"causal attention needs as many queries as keys, got {q.shape[1]}, {k.shape[1]}")


def _apply_key_padding(k: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
    if key_padding_mask is None:
        return k
    if key_padding_mask.dtype != torch.bool or key_padding_mask.shape != k.shape[:2]:
        raise ConfigError(
            f"key_padding_mask must be a bool tensor of shape (B, T) = {tuple(k.shape[:2])}, "
            f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
        )
    # padded keys contribute nothing to S and z
    return k.masked_fill(key_padding_mask[:, :, None, None], 0.0)


def _acc_dtype(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    chunk_size: int = 64,
    eps: float = 1e-6,
    key_padding_mask: torch.Tensor | None = None,
    return_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, LinearAttentionState]:
    """Linear attention on feature-mapped q (B, Tq, H, M), k (B, Tk, H, M) and v (B, Tk, H, Dv).

    Returns (B, Tq, H, Dv) in v's dtype; with ``return_state`` also the final
    :class:`LinearAttentionState` (float32 or float64) over all keys, to continue with
    :func:`linear_attention_step`. ``key_padding_mask`` (B, Tk) bool, True = padding: those keys are ignored.
    Any T works (the last chunk is zero-padded internally).
    """
    _check_qkv(q, k, v, causal)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive int, got {chunk_size!r}")
    out_dtype = v.dtype
    acc = _acc_dtype(q, k, v)
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v = q.to(acc), k.to(acc), v.to(acc)
        k = _apply_key_padding(k, key_padding_mask)
        if causal:
            out, state = _causal_chunked(q, k, v, chunk_size, eps)
        else:
            s = torch.einsum("bthm,bthd->bhmd", k, v)  # S = sum_n phi(k_n) v_n^T (same formula)
            z = k.sum(dim=1)  # (B, H, M)
            num = torch.einsum("bthm,bhmd->bthd", q, s)
            den = torch.einsum("bthm,bhm->bth", q, z)
            out = num / (den.unsqueeze(-1) + eps)
            state = LinearAttentionState(s, z)
    out = out.to(out_dtype)
    return (out, state) if return_state else out


def _chunks(x: torch.Tensor, n: int, c: int) -> torch.Tensor:
    """(B, T, H, X) -> (B, H, n, C, X), zero-padding T up to n * C at the end."""
    b, t, h, d = x.shape
    if n * c != t:
        x = F.pad(x, (0, 0, 0, 0, 0, n * c - t))
    return x.view(b, n, c, h, d).permute(0, 3, 1, 2, 4)


# Tokens per segment of the causal computation. Whole-sequence intermediates of 30+ MiB are served by fresh
# mmap'd pages on every allocation (glibc's mmap threshold tops out at 32 MiB), whose page faults made T=16384
# cost 9x T=4096 instead of 4x; 1024-token segments keep every temporary small enough to be reused.
SEGMENT_TOKENS = 1024


def _causal_chunked(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int, eps: float
) -> tuple[torch.Tensor, LinearAttentionState]:
    """Causal chunked linear attention, segment by segment (the state carried across segments)."""
    t = q.shape[1]
    c = min(chunk, t)
    seg = max(c, (SEGMENT_TOKENS // c) * c)
    if t <= seg:
        out, final = _causal_segment(q, k, v, c, eps, None)
    else:
        outs, final = [], None
        # split (not slicing): its backward concatenates once instead of padding every piece to full length
        for qs, ks, vs in zip(q.split(seg, dim=1), k.split(seg, dim=1), v.split(seg, dim=1)):
            o, final = _causal_segment(qs, ks, vs, c, eps, final)
            outs.append(o)
        out = torch.cat(outs, dim=1)
    dv = v.shape[-1]
    return out, LinearAttentionState(final[..., :dv], final[..., dv])


def _causal_segment(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, c: int, eps: float, init: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One segment: returns out (B, T, H, Dv) and the state [S | z] (B, H, M, Dv + 1) after it.

    ``init`` (B, H, M, Dv + 1) is the state [S | z] entering the segment (None = zeros).
    """
    b, t, h, m = q.shape
    dv = v.shape[-1]
    c = min(c, t)
    n = -(-t // c)
    qc, kc = _chunks(q, n, c), _chunks(k, n, c)
    # v with a column of ones: phi(q)^T z rides along as the last column of every product below
    vc = _chunks(torch.cat([v, v.new_ones(b, t, h, 1)], dim=-1), n, c)  # (B, H, n, C, Dv + 1)
    # per-chunk sums [sum phi(k) v^T | sum phi(k)] and their exclusive prefix: the state entering each chunk
    kv = kc.transpose(-1, -2) @ vc  # (B, H, n, M, Dv + 1)
    s_prev = _ExclusivePrefixSum.apply(kv)
    if init is not None:
        s_prev = s_prev + init.unsqueeze(2)
    # intra-chunk: lower-triangular (C, C) scores, n <= m inside the chunk
    tril = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    scores = (qc @ kc.transpose(-1, -2)).masked_fill(~tril, 0.0)  # (B, H, n, C, C)
    # P1 eq. (3), causal: out_m = phi(q_m)^T S_m / (phi(q_m)^T z_m + eps)
    num = scores @ vc + qc @ s_prev  # (B, H, n, C, Dv + 1)
    out = num[..., :dv] / (num[..., dv:] + eps)
    out = out.permute(0, 2, 3, 1, 4).reshape(b, n * c, h, dv)[:, :t]
    final = s_prev[:, :, -1] + kv[:, :, -1]  # (B, H, M, Dv + 1)
    return out, final


def _exclusive_scan(x: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """out[:, :, i] = sum of x[:, :, j] for j < i (j > i if reverse), x (B, H, n, ...).

    A loop of in-place adds over the n chunks: several times faster on CPU than ``cumsum`` along a
    non-innermost dim (which is what makes small chunk sizes slow), and it allocates only the output.
    """
    out = torch.empty_like(x)
    n = x.shape[2]
    idx = range(n - 1, -1, -1) if reverse else range(n)
    prev = None
    for i in idx:
        if prev is None:
            out[:, :, i].zero_()
        else:
            torch.add(out[:, :, prev], x[:, :, prev], out=out[:, :, i])
        prev = i
    return out


class _ExclusivePrefixSum(torch.autograd.Function):
    """Exclusive prefix sum over dim 2 (chunks); its gradient is the reversed exclusive prefix sum."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _exclusive_scan(x.contiguous())

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _exclusive_scan(grad.contiguous(), reverse=True)


def init_linear_state(
    batch: int, n_heads: int, n_features: int, v_dim: int, device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> LinearAttentionState:
    """Empty state: s (B, H, M, Dv) and z (B, H, M) of zeros."""
    return LinearAttentionState(
        torch.zeros(batch, n_heads, n_features, v_dim, device=device, dtype=dtype),
        torch.zeros(batch, n_heads, n_features, device=device, dtype=dtype),
    )


def linear_attention_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    state: LinearAttentionState | None = None,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, LinearAttentionState]:
    """One causal step: feature-mapped q, k (B, H, M) and v (B, H, Dv) of the new position.

    Adds phi(k) v^T to the state, then attends: returns (out (B, H, Dv) in v's dtype, new state). The state
    (float32 at least) is not modified in place; ``state=None`` starts from zeros. Feeding positions one by
    one reproduces :func:`linear_attention` with ``causal=True``.
    """
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3 or q.shape != k.shape or v.shape[:2] != q.shape[:2]:
        raise ConfigError(
            "linear_attention_step expects q, k (B, H, M) and v (B, H, Dv); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    out_dtype = v.dtype
    acc = _acc_dtype(q, k, v)
    if state is None:
        state = init_linear_state(q.shape[0], q.shape[1], q.shape[2], v.shape[2], q.device, acc)
    if state.s.shape != (*q.shape, v.shape[2]) or state.z.shape != q.shape:
        raise ConfigError(
            f"state shapes {tuple(state.s.shape)}, {tuple(state.z.shape)} do not match q {tuple(q.shape)} "
            f"and v {tuple(v.shape)}"
        )
    acc = torch.promote_types(acc, state.s.dtype)
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, v = q.to(acc), k.to(acc), v.to(acc)
        s = state.s.to(acc) + k.unsqueeze(-1) * v.unsqueeze(-2)  # S_m = S_{m-1} + phi(k_m) v_m^T
        z = state.z.to(acc) + k
        num = (q.unsqueeze(-1) * s).sum(dim=-2)
        den = (q * z).sum(dim=-1, keepdim=True)
        out = num / (den + eps)
    return out.to(out_dtype), LinearAttentionState(s, z)
