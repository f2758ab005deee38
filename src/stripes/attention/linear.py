"""Kernelized (linear) attention on feature-mapped queries and keys.

out_m = phi(q_m)^T S_m / (phi(q_m)^T z_m + eps), S_m = sum_n phi(k_n) v_n^T, z_m = sum_n phi(k_n)
(P1 eq. (3), P2 eq. (2); the causal form sums over n <= m, as in fast-transformers CausalLinearAttention).

The causal form is computed by chunks of C positions: within a chunk a masked (C, C) product, across chunks
a carried state (the exclusive prefix sum of per-chunk k^T v). Memory is O(T (C + M Dv / C)) per (batch, head)
instead of the O(T M Dv) of a per-position cumulative sum. All sums are accumulated in float32 at least
(bf16/fp16 inputs and autocast included); the output is cast back to the dtype of ``v``.

Log-scaled keys (``k_log_scale``, what FAVOR+ gives): the key features are phi(k_n) = k_n exp(a_n) with k_n
of order 1 and a_n (B, T, H) a per-token log scale that may be large. The kernel never forms exp(a_n):
query m weighs key n by exp(a_n - c_m), c_m = max_{n' <= m} a_n' (a running maximum, so only past keys set
it), and the carried state is kept at the scale of the last running maximum. Every factor is <= 1, the
ratio is exactly the unstabilised one (no eps is added to the rescaled denominator, see ``floor_den``), and no
future key reaches an earlier output, not even through a shared maximum.

Isolation: padded keys and values are replaced by zeros with ``where`` (a select, so NaN or inf there never
enters a sum), padded rows output 0, and in the causal form a non-finite value of ``v`` is zeroed before
the chunk products and re-applied (as NaN) only to its own and later outputs, as the masked quadratic
formula would: a NaN at step n never reaches an output m < n.

Streaming: ``initial_state`` continues from a :class:`LinearAttentionState` and ``return_state`` returns
the final one, so a sequence split anywhere gives the same outputs and state as one call.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from stripes.attention.chunked import SEGMENT_TOKENS, causal_segment, causal_segment_scaled, floor_den
from stripes.attention.masking import check_key_padding_mask, zero_rows
from stripes.errors import ConfigError, ModelError
from stripes.pe.base import autocast_off


class LinearAttentionState(NamedTuple):
    """Causal linear attention state after some keys (fixed size, whatever their number).

    Attributes
    ----------
    s : Tensor
        (B, H, M, Dv), sum of phi(k_n) v_n^T, at the scale exp(-log_scale).
    z : Tensor
        (B, H, M), sum of phi(k_n), at the same scale.
    log_scale : Tensor or None
        (B, H), the running maximum of the keys' log scales (-inf before the first key), or None when the
        keys carry no log scale (elu, relu, identity maps): s and z are then the plain sums.
    """

    s: torch.Tensor
    z: torch.Tensor
    log_scale: torch.Tensor | None = None


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise ModelError(f"linear_attention: {name} must be a tensor, got {type(x).__name__}")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ModelError(
            "linear_attention expects q, k (B, T, H, M) and v (B, T, H, Dv); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape[:3] != v.shape[:3]:
        raise ModelError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must agree on (B, T, H)")
    if q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2] or q.shape[3] != k.shape[3]:
        raise ModelError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must agree on B, H and M")
    if causal and q.shape[1] != k.shape[1]:
        raise ModelError(f"causal attention needs as many queries as keys, got {q.shape[1]}, {k.shape[1]}")


def _acc_dtype(*tensors: torch.Tensor) -> torch.dtype:
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _check_log_scale(a: torch.Tensor | None, k: torch.Tensor) -> None:
    if a is not None and (not isinstance(a, torch.Tensor) or tuple(a.shape) != tuple(k.shape[:3])):
        raise ModelError(
            f"k_log_scale must be a (B, T, H) = {tuple(k.shape[:3])} tensor, got {getattr(a, 'shape', a)!r}"
        )


def _check_state(state: LinearAttentionState, b: int, h: int, m: int, dv: int) -> None:
    if not isinstance(state, LinearAttentionState):
        raise ModelError(f"the state must be a LinearAttentionState, got {type(state).__name__}")
    ok = tuple(state.s.shape) == (b, h, m, dv) and tuple(state.z.shape) == (b, h, m)
    if state.log_scale is not None:
        ok = ok and tuple(state.log_scale.shape) == (b, h)
    if not ok:
        scale = None if state.log_scale is None else tuple(state.log_scale.shape)
        raise ModelError(
            f"state shapes s {tuple(state.s.shape)}, z {tuple(state.z.shape)}, log_scale {scale} do not "
            f"match (B, H, M, Dv) = {(b, h, m, dv)}"
        )


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = True,
    chunk_size: int = 64,
    eps: float = 1e-6,
    key_padding_mask: torch.Tensor | None = None,
    return_state: bool = False,
    initial_state: LinearAttentionState | None = None,
    k_log_scale: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, LinearAttentionState]:
    """Linear attention on feature-mapped queries and keys (P1 eq. (3)).

    Parameters
    ----------
    q : Tensor
        (B, Tq, H, M) feature-mapped queries (phi(q) >= 0).
    k : Tensor
        (B, Tk, H, M) feature-mapped keys; with ``k_log_scale`` the features are ``k * exp(k_log_scale)``.
    v : Tensor
        (B, Tk, H, Dv) values.
    causal : bool
        Query m sees keys n <= m (then Tq == Tk).
    chunk_size : int
        Positions per chunk of the causal computation (any T works; the last chunk is padded internally).
    eps : float
        Added to the denominator (not with log-scaled keys, whose rescaled denominator is only floored at
        the smallest normal float: the output is then the exact ratio).
    key_padding_mask : Tensor, optional
        (B, Tk) bool, True = padding: those keys and values are ignored whatever they hold (NaN included),
        and those rows output 0.
    return_state : bool
        Also return the final :class:`LinearAttentionState` (causal or not), to continue with
        ``initial_state`` or :func:`linear_attention_step`.
    initial_state : LinearAttentionState, optional
        Causal only: the state after the keys seen before this call (streaming / cached generation).
    k_log_scale : Tensor, optional
        (B, Tk, H) per-key log scale a_n (FAVOR+'s :meth:`FavorFeatureMap.key_features`): handled with a
        causal running maximum, so large activations neither overflow nor collapse rows to zero.

    Returns
    -------
    Tensor or (Tensor, LinearAttentionState)
        (B, Tq, H, Dv) in v's dtype; with ``return_state`` also the state (float32 at least).
    """
    _check_qkv(q, k, v, causal)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive int, got {chunk_size!r}")
    b, tk, h, m = k.shape
    dv = v.shape[-1]
    check_key_padding_mask(key_padding_mask, b, tk)
    _check_log_scale(k_log_scale, k)
    if initial_state is not None:
        if not causal:
            raise ConfigError("initial_state continues a causal sequence; it needs causal=True")
        _check_state(initial_state, b, h, m, dv)
    out_dtype = v.dtype
    acc = _acc_dtype(q, k, v)
    if initial_state is not None:
        acc = torch.promote_types(acc, initial_state.s.dtype)
    state_scaled = initial_state is not None and initial_state.log_scale is not None
    stabilised = k_log_scale is not None or state_scaled
    with autocast_off(q.device.type):
        q, k, v = q.to(acc), k.to(acc), v.to(acc)
        k, v = zero_rows(k, key_padding_mask), zero_rows(v, key_padding_mask)
        a = None
        if stabilised:
            a = k.new_zeros(k.shape[:3]) if k_log_scale is None else k_log_scale.to(acc)
            if key_padding_mask is not None:
                a = torch.where(key_padding_mask[:, :, None], float("-inf"), a)
        if causal and tk == 1:  # one new token (generation): the recurrent step, no chunk machinery
            a0 = None if a is None else a[:, 0]
            o, state = _step_core(q[:, 0], k[:, 0], v[:, 0], a0, initial_state, eps)
            out = o.unsqueeze(1)
        elif causal:
            # a non-finite v_n reaches outputs m >= n only: zero it for the products, re-apply it after
            bad = ~torch.isfinite(v)
            v = torch.where(bad, 0.0, v)
            poisoned = torch.cumsum(bad, dim=1, dtype=torch.int32) > 0
            out, state = _causal_chunked(q, k, v, a, chunk_size, eps, initial_state)
            out = torch.where(poisoned, float("nan"), out)
        else:
            out, state = _non_causal(q, k, v, a, eps)
        out = zero_rows(out, key_padding_mask) if q.shape[1] == tk else out
    out = out.to(out_dtype)
    return (out, state) if return_state else out


def _non_causal(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, LinearAttentionState]:
    c = None
    if a is not None:  # one constant per (batch, head): the largest log scale of the valid keys
        c = a.detach().amax(dim=1)  # (B, H)
        c_safe = torch.where(torch.isfinite(c), c, 0.0)
        k = k * torch.exp(a - c_safe[:, None]).unsqueeze(-1)
    s = torch.einsum("bthm,bthd->bhmd", k, v)  # S = sum_n phi(k_n) v_n^T (same formula)
    z = k.sum(dim=1)  # (B, H, M)
    num = torch.einsum("bthm,bhmd->bthd", q, s)
    den = torch.einsum("bthm,bhm->bth", q, z)
    den = den.unsqueeze(-1)
    return num / (floor_den(den) if a is not None else den + eps), LinearAttentionState(s, z, c)


def _causal_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor | None,
    chunk: int,
    eps: float,
    initial: LinearAttentionState | None,
) -> tuple[torch.Tensor, LinearAttentionState]:
    """Causal chunked linear attention, segment by segment (the state carried across segments).

    ``a`` (B, T, H) log scales of the keys (-inf at pads) or None. The carried state is [S | z]
    (B, H, M, Dv + 1) and, with log scales, its reference c (B, H) (-inf before any key).
    """
    t = q.shape[1]
    dv = v.shape[-1]
    c = min(chunk, t)
    seg = max(c, (SEGMENT_TOKENS // c) * c)
    state: torch.Tensor | None = None
    ref: torch.Tensor | None = None
    if initial is not None:
        state = torch.cat([initial.s, initial.z.unsqueeze(-1)], dim=-1).to(q.dtype)
        if a is not None:
            ref = (
                initial.log_scale.to(q.dtype)
                if initial.log_scale is not None
                else q.new_zeros(initial.z.shape[:2])
            )
    if a is not None and ref is None:
        ref = q.new_full((q.shape[0], q.shape[2]), float("-inf"))
    if t <= seg:
        pieces = [(q, k, v, a)]
    else:  # split (not slicing): its backward concatenates once instead of padding every piece to full length
        aa = a.split(seg, dim=1) if a is not None else [None] * (-(-t // seg))
        pieces = list(zip(q.split(seg, dim=1), k.split(seg, dim=1), v.split(seg, dim=1), aa))
    outs = []
    for qs, ks, vs, as_ in pieces:
        if as_ is None:
            o, state = causal_segment(qs, ks, vs, c, eps, state)
        else:
            assert ref is not None
            o, state, ref = causal_segment_scaled(qs, ks, vs, as_, c, eps, state, ref)
        outs.append(o)
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    assert state is not None
    return out, LinearAttentionState(state[..., :dv], state[..., dv], ref)


def init_linear_state(
    batch: int, n_heads: int, n_features: int, v_dim: int, device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32, log_scaled: bool = False,
) -> LinearAttentionState:
    """Empty state: s (B, H, M, Dv) and z (B, H, M) of zeros; with ``log_scaled`` a log_scale of -inf."""
    return LinearAttentionState(
        torch.zeros(batch, n_heads, n_features, v_dim, device=device, dtype=dtype),
        torch.zeros(batch, n_heads, n_features, device=device, dtype=dtype),
        torch.full((batch, n_heads), float("-inf"), device=device, dtype=dtype) if log_scaled else None,
    )


def linear_attention_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    state: LinearAttentionState | None = None,
    eps: float = 1e-6,
    k_log_scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, LinearAttentionState]:
    """One causal step of :func:`linear_attention`, in O(1) time and memory.

    Parameters
    ----------
    q, k : Tensor
        (B, H, M) feature-mapped query and key of the new position.
    v : Tensor
        (B, H, Dv) its value.
    state : LinearAttentionState, optional
        The state after the previous positions (None: start from zeros). Not modified in place.
    eps : float
        Added to the denominator.
    k_log_scale : Tensor, optional
        (B, H) the key's log scale (FAVOR+), see :func:`linear_attention`.

    Returns
    -------
    (Tensor, LinearAttentionState)
        out (B, H, Dv) in v's dtype, and the new state (float32 at least). Feeding positions one by one
        reproduces :func:`linear_attention` with ``causal=True``.
    """
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3 or q.shape != k.shape or v.shape[:2] != q.shape[:2]:
        raise ModelError(
            "linear_attention_step expects q, k (B, H, M) and v (B, H, Dv); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    b, h, m = q.shape
    if k_log_scale is not None and tuple(k_log_scale.shape) != (b, h):
        raise ModelError(f"k_log_scale must be (B, H) = {(b, h)}, got {tuple(k_log_scale.shape)}")
    out_dtype = v.dtype
    acc = _acc_dtype(q, k, v)
    scaled = k_log_scale is not None or (state is not None and state.log_scale is not None)
    if state is None:
        state = init_linear_state(b, h, m, v.shape[2], q.device, acc, log_scaled=scaled)
    _check_state(state, b, h, m, v.shape[2])
    acc = torch.promote_types(acc, state.s.dtype)
    with autocast_off(q.device.type):
        q, k, v = _as(q, acc), _as(k, acc), _as(v, acc)
        a = None
        if scaled:
            a = k.new_zeros(b, h) if k_log_scale is None else _as(k_log_scale, acc)
        out, new_state = _step_core(q, k, v, a, state, eps)
    return _as(out, out_dtype), new_state


def _step_core(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: torch.Tensor | None,
    state: LinearAttentionState | None, eps: float,
) -> tuple[torch.Tensor, LinearAttentionState]:
    """The recurrence on one position: q, k (B, H, M), v (B, H, Dv), a (B, H) or None; all in one dtype."""
    b, h, m = q.shape
    if state is None:
        state = init_linear_state(b, h, m, v.shape[-1], q.device, q.dtype, log_scaled=a is not None)
    dtype = q.dtype
    s, z, c = _as(state.s, dtype), _as(state.z, dtype), None
    scaled = a is not None or state.log_scale is not None
    if scaled:
        a = k.new_zeros(b, h) if a is None else a
        old = _as(state.log_scale, dtype) if state.log_scale is not None else k.new_zeros(b, h)
        c = torch.maximum(old, a)
        c_safe = _finite_or_zero(c)
        keep = torch.exp((_finite_or_zero(old) - c_safe).clamp(max=0.0))
        s, z = s * keep[..., None, None], z * keep[..., None]
        k = k * torch.exp(a - c_safe).unsqueeze(-1)
    s = s + k.unsqueeze(-1) * v.unsqueeze(-2)  # S_m = S_{m-1} + phi(k_m) v_m^T
    z = z + k
    num = (q.unsqueeze(-2) @ s).squeeze(-2)  # (B, H, Dv)
    den = (q * z).sum(dim=-1, keepdim=True)
    out = num / (floor_den(den) if scaled else den + eps)
    return out, LinearAttentionState(s, z, c)


def _as(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x in dtype (no torch call when it already is: the step runs once per generated token)."""
    return x if x.dtype == dtype else x.to(dtype)


def _finite_or_zero(x: torch.Tensor) -> torch.Tensor:
    """x with every non-finite entry (±inf: no key yet; NaN) replaced by 0, in one op."""
    return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
