"""The protocol shared by every positional encoding (PE) and the input checks.

Shapes: q, k are (B, T, H, D); positions are float (B, T, C). A q/k-level PE maps q, k to
(B, T, H, out_dim); ``scores`` returns (B, H, Tq, Tk) = q_out · k_out.

Precision: positions, angles and codes are computed in ``compute_dtype(q.dtype)`` (float32 at least) with
autocast disabled, and the outputs are cast back to q's dtype. In bf16/fp16 the labels themselves would be
rounded (bf16 holds integers exactly only up to 256) and angles f·p of size ~10³ would lose all accuracy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stripes.errors import ConfigError, DataError


class PEInputError(DataError, ValueError):
    """Tensors of the wrong shape or dtype were given to a positional encoding."""


def check_dims(head_dim: int, n_heads: int, context_dim: int, *, even: bool = False) -> None:
    """Validate the sizes a PE is built with (raises ConfigError)."""
    for name, value in (("head_dim", head_dim), ("n_heads", n_heads), ("context_dim", context_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if even and head_dim % 2:
        raise ConfigError(f"head_dim must be even for rotation-based PEs, got {head_dim}")


def check_positions(
    pos: Tensor, batch: int, length: int, context_dim: int, name: str, dtype: torch.dtype
) -> Tensor:
    """Return ``pos`` as (B, T, C) in ``dtype``; accept (B, T) when C == 1."""
    if not isinstance(pos, Tensor):
        raise PEInputError(f"{name} must be a tensor of shape (B, T, C), got {type(pos).__name__}")
    if pos.dim() == 2 and context_dim == 1:
        pos = pos.unsqueeze(-1)
    if pos.dim() != 3 or tuple(pos.shape) != (batch, length, context_dim):
        raise PEInputError(
            f"{name} must have shape (B={batch}, T={length}, C={context_dim}), got {tuple(pos.shape)}"
        )
    if pos.dtype == torch.bool or pos.is_complex():
        raise PEInputError(f"{name} must be real-valued, got {pos.dtype}")
    return pos.to(dtype)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype PEs compute in: ``dtype`` promoted to float32 at least (bf16/fp16 → float32)."""
    return torch.promote_types(dtype, torch.float32)


def check_qk(
    q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None, n_heads: int, head_dim: int, context_dim: int
) -> tuple[Tensor, Tensor]:
    """Check q (B, Tq, H, D), k (B, Tk, H, D) and positions; return pos_q, pos_k as (B, T, C).

    Positions come back in ``compute_dtype(q.dtype)`` (float32 at least), never in bf16/fp16.
    """
    for name, x in (("q", q), ("k", k)):
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise PEInputError(f"{name} must be a 4-d tensor (B, T, H, D), got {getattr(x, 'shape', x)!r}")
        if not x.is_floating_point():
            raise PEInputError(f"{name} must be floating point, got {x.dtype}")
        if tuple(x.shape[2:]) != (n_heads, head_dim):
            raise PEInputError(
                f"{name} must have H={n_heads}, D={head_dim} in (B, T, H, D), got {tuple(x.shape)}"
            )
    if q.shape[0] != k.shape[0]:
        raise PEInputError(f"q and k batch sizes differ: {q.shape[0]} vs {k.shape[0]}")
    if q.dtype != k.dtype:
        raise PEInputError(f"q and k dtypes differ: {q.dtype} vs {k.dtype}")
    if pos_k is None:
        if q.shape[1] != k.shape[1]:
            raise PEInputError("pos_k is required when q and k have different lengths")
        pos_k = pos_q
    dtype = compute_dtype(q.dtype)
    pos_q = check_positions(pos_q, q.shape[0], q.shape[1], context_dim, "pos_q", dtype)
    pos_k = check_positions(pos_k, k.shape[0], k.shape[1], context_dim, "pos_k", dtype)
    return pos_q, pos_k


class QKPositionalEncoding(nn.Module):
    """Base class of q/k-level PEs: ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``.

    Subclasses implement ``_encode(q, k, pos_q, pos_k)`` on checked inputs (q, k and positions (B, T, C)
    all in ``compute_dtype(q.dtype)``, autocast off) and set ``out_dim``, ``description``.
    """

    kind = "qk"
    stochastic = False
    description = ""

    def __init__(self, head_dim: int, n_heads: int, context_dim: int = 1) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.n_heads = n_heads
        self.context_dim = context_dim
        self.out_dim = head_dim

    def forward(
        self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """q (B, Tq, H, D), k (B, Tk, H, D), pos (B, T, C) → q_out (B, Tq, H, out), k_out (B, Tk, H, out)."""
        pos_q, pos_k = check_qk(q, k, pos_q, pos_k, self.n_heads, self.head_dim, self.context_dim)
        dtype, work = q.dtype, pos_q.dtype
        with torch.autocast(device_type=q.device.type, enabled=False):
            q_out, k_out = self._encode(q.to(work), k.to(work), pos_q, pos_k)
        return q_out.to(dtype), k_out.to(dtype)

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _checked(
        self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Checked q, k, pos_q, pos_k, all in ``compute_dtype(q.dtype)`` (for the closed-form kernels)."""
        pos_q, pos_k = check_qk(q, k, pos_q, pos_k, self.n_heads, self.head_dim, self.context_dim)
        return q.to(pos_q.dtype), k.to(pos_q.dtype), pos_q, pos_k

    def scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Attention logits before any feature map: (B, H, Tq, Tk) = q_out · k_out."""
        q_out, k_out = self(q, k, pos_q, pos_k)
        return torch.einsum("bmhe,bnhe->bhmn", q_out, k_out)

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, n_heads={self.n_heads}, "
            f"context_dim={self.context_dim}, out_dim={self.out_dim}"
        )
