"""Reference (naive) attention: the formulas written out, quadratic in T. Oracles for the optimized kernels.

The tests compare :func:`stripes.attention.linear_attention` and :func:`stripes.attention.softmax_attention`
against these, and ``benchmarks/`` times the optimized kernels against them; this is the one copy both use.
Shapes as everywhere: q, k (B, T, H, M) (feature-mapped for linear attention), v (B, T, H, Dv).
"""

from __future__ import annotations

import math

import torch


def _causal_mask(tq: int, tk: int, device: torch.device) -> torch.Tensor:
    """(Tq, Tk) bool, True where key n <= query m."""
    return torch.ones(tq, tk, dtype=torch.bool, device=device).tril()


def naive_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    eps: float = 1e-6,
    key_padding_mask: torch.Tensor | None = None,
    k_log_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Masked quadratic linear attention: A = phi(q) phi(k)^T (B, H, Tq, Tk), out = A v / (A 1 + eps).

    # P1 eq. (3), P2 eq. (2): out_m = Σ_{n<=m} (phi(q_m)·phi(k_n)) v_n / (Σ_{n<=m} phi(q_m)·phi(k_n) + eps)
    q, k (B, T, H, M) already feature-mapped, v (B, T, H, Dv) -> (B, Tq, H, Dv), in the inputs' dtype.
    ``key_padding_mask`` (B, Tk) bool, True = padding (those keys are dropped and, when Tq == Tk, those rows
    output 0). ``k_log_scale`` (B, Tk, H): the keys are k * exp(k_log_scale) (evaluated as is: use float64).
    """
    if k_log_scale is not None:
        k = k * torch.exp(k_log_scale).unsqueeze(-1)
    a = torch.einsum("bthm,bshm->bhts", q, k)
    if causal:
        a = a.masked_fill(~_causal_mask(q.shape[1], k.shape[1], q.device), 0.0)
    if key_padding_mask is not None:
        a = a.masked_fill(key_padding_mask[:, None, None, :], 0.0)
    num = torch.einsum("bhts,bshd->bthd", a, v)
    den = a.sum(dim=-1).transpose(1, 2).unsqueeze(-1)
    out = num / (den + eps)
    if key_padding_mask is not None and q.shape[1] == k.shape[1]:
        out = out.masked_fill(key_padding_mask[:, :, None, None], 0.0)
    return out


def cumsum_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Causal linear attention by a per-position cumulative sum of phi(k) v^T: a (B, T, H, M, Dv) state.

    The textbook O(T M Dv)-memory recurrence (the non-CUDA fallback of common Performer code); the
    benchmark's memory baseline. q, k (B, T, H, M), v (B, T, H, Dv) -> (B, T, H, Dv).
    """
    s = torch.einsum("bthm,bthd->bthmd", k, v).cumsum(dim=1)
    z = k.cumsum(dim=1)
    num = torch.einsum("bthm,bthmd->bthd", q, s)
    return num / ((q * z).sum(dim=-1, keepdim=True) + eps)


def naive_softmax_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    bias: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Explicit softmax attention (P1 eq. (1)-(2)): softmax(q k^T * scale + bias, masked) v.

    q, k (B, T, H, D), v (B, T, H, Dv); bias broadcastable to (B, H, Tq, Tk); scale defaults to 1/sqrt(D).
    Queries that see no key, and padded rows when Tq == Tk, get 0 (as
    :func:`stripes.attention.softmax_attention`).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    logits = torch.einsum("bthd,bshd->bhts", q, k) * scale
    if bias is not None:
        logits = logits + bias
    allowed = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool, device=q.device)
    if causal:
        allowed = allowed.tril()
    allowed = allowed[None, None].expand_as(logits)
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[:, None, None, :]
    w = logits.masked_fill(~allowed, float("-inf")).softmax(dim=-1).nan_to_num(0.0)
    out = torch.einsum("bhts,bshd->bthd", w, v)
    if key_padding_mask is not None and q.shape[1] == k.shape[1]:
        out = out.masked_fill(key_padding_mask[:, :, None, None], 0.0)
    return out
