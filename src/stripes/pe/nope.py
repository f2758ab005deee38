"""NoPE: no positional information; q and k pass through unchanged (out_dim = D)."""

from __future__ import annotations

from torch import Tensor

from stripes.pe.base import QKPositionalEncoding, check_dims, check_qk


class NoPE(QKPositionalEncoding):
    """Identity PE (NoPE, P2's baseline): q_out = q, k_out = k, (B, T, H, D).

    Positions are checked but unused. Works with linear and softmax attention; out_dim = D.
    See docs/papers.md §7.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k.
    n_heads : int
        H, the number of heads.
    context_dim : int, default 1
        C, the width of the positions it is given (checked only).
    """

    description = "no positional encoding (identity on q, k)"

    def __init__(self, head_dim: int, n_heads: int, context_dim: int = 1) -> None:
        """Build the NoPE; the parameters are described in the class docstring."""
        check_dims(head_dim, n_heads, context_dim)
        super().__init__(head_dim, n_heads, context_dim)

    def forward(
        self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Return q and k unchanged, after checking the shapes.

        Parameters
        ----------
        q : Tensor
            Queries (B, Tq, H, D).
        k : Tensor
            Keys (B, Tk, H, D).
        pos_q : Tensor
            Query positions (B, Tq, C) (checked, unused).
        pos_k : Tensor, optional
            Key positions (B, Tk, C); ``None`` uses ``pos_q``.

        Returns
        -------
        tuple of Tensor
            ``(q, k)``, the same tensors, in any dtype.
        """
        check_qk(q, k, pos_q, pos_k, self.n_heads, self.head_dim, self.context_dim)
        return q, k  # no float32 round trip: identity in any dtype

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        return q, k
