"""Exact softmax attention through torch.nn.functional.scaled_dot_product_attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stripes.attention.masking import check_key_padding_mask, zero_rows
from stripes.errors import ModelError

# Query block of the CPU training path (causal + attention dropout), see causal_blocks_attention.
DROPOUT_BLOCK = 128


def causal_blocks_attention(
    qh: torch.Tensor,
    kh: torch.Tensor,
    vh: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    block: int | None = None,
) -> torch.Tensor:
    """Causal SDPA one query block at a time: block [s, e) sees keys [0, e) only.

    qh, kh (B, H, T, D), vh (B, H, T, Dv) -> (B, H, T, Dv); ``mask`` (B or 1, H or 1, T, T) additive (float,
    -inf above the diagonal) or None for plain causal. The same attention as one causal SDPA call, dropout
    included (each visible weight dropped independently with ``dropout_p``), but the (B, H, T, T) logits,
    weights and dropout mask are only made for the ~T²/2 visible pairs. Used on CPU where dropout forces
    SDPA's math path, which would draw and multiply the full square mask (3–4x slower, benchmarks.md).
    ``block`` defaults to ``DROPOUT_BLOCK``.
    """
    block = block or DROPOUT_BLOCK
    t = qh.shape[-2]
    # split the rows once: a slice per block would send a (.., T, T) zero gradient per block to a learned bias
    rows = mask.split(block, dim=-2) if mask is not None else None
    outs = []
    for i, s in enumerate(range(0, t, block)):
        e = min(s + block, t)
        if rows is None:
            m = torch.ones(e - s, e, dtype=torch.bool, device=qh.device).tril(s)
        else:
            m = rows[i][..., :e]
        outs.append(F.scaled_dot_product_attention(
            qh[:, :, s:e], kh[:, :, :e], vh[:, :, :e], attn_mask=m, dropout_p=dropout_p, scale=scale))
    return torch.cat(outs, dim=2)


def _use_blocks(q: torch.Tensor, causal: bool, dropout_p: float) -> bool:
    """Causal, dropout, on CPU (SDPA has no fused dropout kernel there) and longer than one block."""
    return causal and dropout_p > 0.0 and q.device.type == "cpu" and q.shape[1] > DROPOUT_BLOCK


def softmax_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    bias: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """y_m = sum_n softmax_n(q_m.k_n * scale + bias_mn) v_n  (P1 eq. (1)-(2)); scale defaults to 1/sqrt(D).

    q (B, Tq, H, D), k (B, Tk, H, D), v (B, Tk, H, Dv) -> (B, Tq, H, Dv). ``bias`` (B or 1, H or 1, Tq, Tk)
    is added to the logits (S-RPE); ``key_padding_mask`` (B, Tk) bool, True = padding. Queries that see no
    key at all (every visible key padded) get a zero output instead of NaN. Causal attention with dropout on
    CPU runs block by block (``causal_blocks_attention``): the same distribution, about half the work.

    Isolation: padded keys and values are replaced by zeros with ``where`` before any product (a NaN or inf
    there never reaches an output), padded rows output 0 (when Tq == Tk), and in the causal form a
    non-finite k_n or v_n is zeroed for the products and re-applied (as NaN) to outputs m >= n only, as the
    explicit formula gives: a future step never reaches an earlier output.
    """
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ModelError(
            "softmax_attention expects q, k (B, T, H, D) and v (B, T, H, Dv); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    b, tq, h, d = q.shape
    tk = k.shape[1]
    if k.shape[0] != b or k.shape[2] != h or k.shape[3] != d or v.shape[:3] != k.shape[:3]:
        raise ModelError(
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} disagree on batch, heads or dims"
        )
    if causal and tq != tk:
        raise ModelError(f"causal attention needs as many queries as keys, got {tq} and {tk}")
    check_key_padding_mask(key_padding_mask, b, tk)
    k, v = zero_rows(k, key_padding_mask), zero_rows(v, key_padding_mask)
    poisoned = None
    if causal:  # a non-finite k_n (every channel) or v_n (its channel) reaches outputs m >= n only
        bad_k, bad_v = ~torch.isfinite(k), ~torch.isfinite(v)
        k, v = torch.where(bad_k, 0.0, k), torch.where(bad_v, 0.0, v)
        bad = bad_v | bad_k.any(dim=-1, keepdim=True)
        poisoned = torch.cumsum(bad, dim=1, dtype=torch.int32) > 0
    out = _softmax_core(q, k, v, causal, bias, key_padding_mask, dropout_p, scale)
    if poisoned is not None:
        out = torch.where(poisoned, float("nan"), out)
    return zero_rows(out, key_padding_mask) if tq == tk else out


def _softmax_core(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    bias: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
    dropout_p: float,
    scale: float | None,
) -> torch.Tensor:
    b, tq, h, d = q.shape
    tk = k.shape[1]
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)
    blocks = _use_blocks(q, causal, dropout_p)
    if bias is None and key_padding_mask is None:
        if blocks:
            return causal_blocks_attention(qh, kh, vh, None, dropout_p, scale).transpose(1, 2)
        dv = vh.shape[-1]
        if dropout_p == 0.0 and dv < d:  # the fused (flash) kernel wants equal head dims: zero-pad v
            vh = F.pad(vh, (0, d - dv))
        out = F.scaled_dot_product_attention(qh, kh, vh, dropout_p=dropout_p, is_causal=causal, scale=scale)
        return out[..., :dv].transpose(1, 2)

    allowed = torch.ones(1, 1, tq, tk, dtype=torch.bool, device=q.device)
    if causal:
        allowed = allowed.tril()
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[:, None, None, :]
    dtype = qh.dtype
    if bias is not None:
        if (
            bias.dim() != 4
            or bias.shape[0] not in (1, b)
            or bias.shape[1] not in (1, h)
            or bias.shape[2:] != (tq, tk)
        ):
            raise ModelError(f"bias must have shape (B or 1, H or 1, {tq}, {tk}), got {tuple(bias.shape)}")
        mask = bias.to(dtype).masked_fill(~allowed, float("-inf"))
    else:
        mask = torch.zeros(allowed.shape, dtype=dtype, device=q.device).masked_fill(~allowed, float("-inf"))
    seen = allowed.any(dim=-1, keepdim=True)  # (B or 1, 1, Tq, 1)
    # rows with no visible key: give them a finite mask (the result is zeroed below)
    mask = mask.masked_fill(~seen, 0.0)
    if blocks:
        out = causal_blocks_attention(qh, kh, vh, mask, dropout_p, scale)
    else:
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    out = out.masked_fill(~seen, 0.0)
    return out.transpose(1, 2)
