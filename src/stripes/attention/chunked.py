"""The causal chunked kernels behind :func:`stripes.attention.linear_attention` (one segment at a time).

``causal_segment``: plain features, the state entering each chunk an exclusive prefix sum of per-chunk
k^T v. ``causal_segment_scaled``: log-scaled keys (FAVOR+), the running-maximum form described in
:mod:`stripes.attention.linear`. Both take (B, T, H, .) tensors already checked, zeroed at pads and in the
accumulation dtype, and return the output and the state [S | z] (B, H, M, Dv + 1) after the segment.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def floor_den(den: torch.Tensor) -> torch.Tensor:
    """The denominator with log-scaled keys: positive features, and a valid query sees at least its own key,
    so den > 0 and no eps is added (an absolute eps on the rescaled sum would zero rows at large
    activations); it is floored at the smallest normal float so rows that see no key give 0, not NaN."""
    return den.clamp_min(torch.finfo(den.dtype).tiny)


def chunks(x: torch.Tensor, n: int, c: int) -> torch.Tensor:
    """(B, T, H, X) -> (B, H, n, C, X), zero-padding T up to n * C at the end."""
    b, t, h, d = x.shape
    if n * c != t:
        x = F.pad(x, (0, 0, 0, 0, 0, n * c - t))
    return x.view(b, n, c, h, d).permute(0, 3, 1, 2, 4)


# Tokens per segment of the causal computation. Whole-sequence intermediates of 30+ MiB are served by fresh
# mmap'd pages on every allocation (glibc's mmap threshold tops out at 32 MiB), whose page faults made T=16384
# cost 9x T=4096 instead of 4x; 1024-token segments keep every temporary small enough to be reused.
SEGMENT_TOKENS = 1024


def _chunked(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, c: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
    """q, k, v (B, T, H, .) as chunks (B, H, n, C, .), v with a column of ones appended: phi(q)^T z rides
    along as the last column of every product; returns them with n and the chunk size C (<= T)."""
    b, t, h, _ = q.shape
    c = min(c, t)
    n = -(-t // c)
    vc = chunks(torch.cat([v, v.new_ones(b, t, h, 1)], dim=-1), n, c)  # (B, H, n, C, Dv + 1)
    return chunks(q, n, c), chunks(k, n, c), vc, n, c


def causal_segment(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, c: int, eps: float, init: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One segment: returns out (B, T, H, Dv) and the state [S | z] (B, H, M, Dv + 1) after it.

    ``init`` (B, H, M, Dv + 1) is the state [S | z] entering the segment (None = zeros).
    """
    b, t, h, _ = q.shape
    dv = v.shape[-1]
    qc, kc, vc, n, c = _chunked(q, k, v, c)
    # per-chunk sums [sum phi(k) v^T | sum phi(k)] and their exclusive prefix: the state entering each chunk
    kv = kc.transpose(-1, -2) @ vc  # (B, H, n, M, Dv + 1)
    s_prev = _ExclusivePrefixSum.apply(kv)
    if init is not None:
        s_prev = s_prev + init.unsqueeze(2)
    # intra-chunk: lower-triangular (C, C) scores, n <= m inside the chunk (masked_fill selects)
    tril = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    scores = (qc @ kc.transpose(-1, -2)).masked_fill(~tril, 0.0)  # (B, H, n, C, C)
    # P1 eq. (3), causal: out_m = phi(q_m)^T S_m / (phi(q_m)^T z_m + eps)
    num = scores @ vc + qc @ s_prev  # (B, H, n, C, Dv + 1)
    out = num[..., :dv] / (num[..., dv:] + eps)
    out = out.permute(0, 2, 3, 1, 4).reshape(b, n * c, h, dv)[:, :t]
    final = s_prev[:, :, -1] + kv[:, :, -1]  # (B, H, M, Dv + 1)
    return out, final


def causal_segment_scaled(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    c: int,
    eps: float,
    init: torch.Tensor | None,
    ref0: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One segment with log-scaled keys: phi(k_n) = k_n exp(a_n), a (B, T, H), -inf at pads.

    ``init`` [S | z] (B, H, M, Dv + 1) entering the segment at the scale exp(-ref0), ref0 (B, H) (-inf: no
    key yet). Query m uses the running maximum c_m = max(ref0, a_1..a_m); every exponent below is a
    difference (earlier maximum or key) − (later maximum), so it is <= 0. Returns out, the state after the
    segment and its reference.
    """
    b, t, h, _ = q.shape
    dv = v.shape[-1]
    qc, kc, vc, n, c = _chunked(q, k, v, c)
    a = a.permute(0, 2, 1)  # (B, H, T)
    if n * c != t:
        a = F.pad(a, (0, n * c - t), value=float("-inf"))
    a = a.reshape(b, h, n, c)
    # running maximum over the keys seen so far (the state's reference included); 0 where none yet
    run = torch.cummax(a.detach().reshape(b, h, n * c), dim=-1).values.reshape(b, h, n, c)
    run = torch.maximum(run, ref0[:, :, None, None])
    run = torch.where(torch.isfinite(run), run, 0.0)
    ref_in = torch.where(torch.isfinite(ref0), ref0, 0.0)
    ends = run[..., -1]  # (B, H, n): the reference of each chunk's own sum
    # per-chunk sums at their end's reference: sum_n exp(a_n - e_j) k_n [v_n | 1]
    kc_end = kc * torch.exp(a - ends.unsqueeze(-1)).unsqueeze(-1)
    kv = kc_end.transpose(-1, -2) @ vc  # (B, H, n, M, Dv + 1)
    # state entering chunk j at reference r_j = e_{j-1} (r_0 = ref0), and the final one (row n):
    # S_j = sum_{i<j} exp(e_i - r_j) kv_i + exp(ref0 - r_j) S_init
    refs = torch.cat([ref_in.unsqueeze(-1), ends], dim=-1)  # (B, H, n + 1)
    lower = torch.ones(n + 1, n, dtype=torch.bool, device=q.device).tril(-1)
    w = torch.exp(torch.where(lower, ends.unsqueeze(-2) - refs.unsqueeze(-1), float("-inf")).clamp(max=0.0))
    states = torch.einsum("bhji,bhimd->bhjmd", w, kv)  # (B, H, n + 1, M, Dv + 1)
    if init is not None:
        states = states + torch.exp((ref_in.unsqueeze(-1) - refs).clamp(max=0.0))[..., None, None] * init[
            :, :, None
        ]
    # intra-chunk: (q_m . k_n) exp(a_n - c_m) for n <= m in the chunk; the mask selects before exp
    tril = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    decay = torch.exp(torch.where(tril, a.unsqueeze(-2) - run.unsqueeze(-1), float("-inf")))  # (B,H,n,C,C)
    scores = (qc @ kc.transpose(-1, -2)) * decay
    # the state entering chunk j, brought from r_j to c_m (<= 1)
    inter = torch.exp((refs[..., :-1].unsqueeze(-1) - run).clamp(max=0.0)).unsqueeze(-1)  # (B, H, n, C, 1)
    # P1 eq. (3), causal: out_m = phi(q_m)^T S_m / (phi(q_m)^T z_m + eps), both at the scale exp(-c_m)
    num = scores @ vc + (qc @ states[:, :, :-1]) * inter
    out = num[..., :dv] / floor_den(num[..., dv:])
    out = out.permute(0, 2, 3, 1, 4).reshape(b, n * c, h, dv)[:, :t]
    final_ref = torch.maximum(ref0, a.detach().amax(dim=(-1, -2)))  # (B, H), -inf if no key at all
    return out, states[:, :, -1], final_ref


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
