"""NoPE: no positional information; q and k pass through unchanged (out_dim = D)."""

from __future__ import annotations

from torch import Tensor

from stripes.pe.base import QKPositionalEncoding, check_dims, check_qk


class NoPE(QKPositionalEncoding):
    """Identity PE: q_out = q, k_out = k, (B, T, H, D). Positions are checked but unused."""

    description = "no positional encoding (identity on q, k)"

    def __init__(self, head_dim: int, n_heads: int, context_dim: int = 1) -> None:
        check_dims(head_dim, n_heads, context_dim)
        super().__init__(head_dim, n_heads, context_dim)

    def forward(
        self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        check_qk(q, k, pos_q, pos_k, self.n_heads, self.head_dim, self.context_dim)
        return q, k  # no float32 round trip: identity in any dtype

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        return q, k
