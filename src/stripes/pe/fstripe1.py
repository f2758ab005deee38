"""F-StrIPE₁ (P1 eq. (15), (19)–(20)): one learnable frequency per dimension, no gains, no phases.

h(a_d) = [a_d cos θ_d, a_d sin θ_d], θ_d = Σ_c f[h, d, c] p[c] (no 2π)              # P1 eq. (20)
Unpooled U(a) = h(a_1) ⊕ … ⊕ h(a_D) (out_dim 2D); pooled C(a) = Σ_d h(a_d) (out_dim 2).   # P1 eq. (19)
Frequencies (H, D, C) start from RoPE(B)'s values, both dimensions of a pair sharing one (the pairing
that eq. (25) assumes), replicated over the C context components.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stripes.pe.base import QKPositionalEncoding, check_dims
from stripes.pe.fourier import angles
from stripes.pe.rope import rope_init_frequencies


def fstripe1_kernel(q: Tensor, k: Tensor, theta_q: Tensor, theta_k: Tensor) -> Tensor:
    """Closed-form F-StrIPE₁ kernel (B, H, Tq, Tk) from q, k (B, T, H, D) and angles (B, T, H, D).

    # P1 eq. (15): a_mn = Σ_d q_md k_nd cos(θ_d(m) − θ_d(n))
    """
    delta = theta_q.permute(0, 2, 1, 3).unsqueeze(3) - theta_k.permute(0, 2, 1, 3).unsqueeze(2)
    return (torch.einsum("bmhd,bnhd->bhmnd", q, k) * torch.cos(delta)).sum(-1)


def fstripe1_pooled_kernel(q: Tensor, k: Tensor, theta_q: Tensor, theta_k: Tensor) -> Tensor:
    """Closed form of the pooled scores C(q_m)·C(k_n) = Σ_d Σ_d' q_md k_nd' cos(θ_d(m) − θ_d'(n)).

    The d = d' terms are eq. (15); the d ≠ d' terms are the cross-dimension terms that P1 assumes
    negligible (papers.md §5.4). (B, H, Tq, Tk).
    """
    tq = theta_q.permute(0, 2, 1, 3)[:, :, :, None, :, None]  # (B, H, Tq, 1, D, 1)
    tk = theta_k.permute(0, 2, 1, 3)[:, :, None, :, None, :]  # (B, H, 1, Tk, 1, D)
    qk = torch.einsum("bmhd,bnhe->bhmnde", q, k)
    return (qk * torch.cos(tq - tk)).sum((-1, -2))


class FStripe1(QKPositionalEncoding):
    """F-StrIPE₁: (B, T, H, D) → pooled (B, T, H, 2) or unpooled (B, T, H, 2D)."""

    description = "F-StrIPE1 (P1 eq. 15): one learnable frequency per dim; pooled out_dim 2, unpooled 2D"

    def __init__(
        self, head_dim: int, n_heads: int, context_dim: int = 1, pooled: bool = True, base: float = 10000.0
    ) -> None:
        check_dims(head_dim, n_heads, context_dim, even=True)
        super().__init__(head_dim, n_heads, context_dim)
        self.pooled = bool(pooled)
        self.out_dim = 2 if self.pooled else 2 * head_dim
        freqs = rope_init_frequencies(n_heads, head_dim, context_dim, "B", base).repeat_interleave(2, dim=1)
        self.freqs = nn.Parameter(freqs)

    def theta(self, pos: Tensor) -> Tensor:
        """pos (B, T, C) → angles (B, T, H, D)."""
        return angles(pos, self.freqs)

    def _transform(self, x: Tensor, theta: Tensor) -> Tensor:
        h = torch.stack((x * torch.cos(theta), x * torch.sin(theta)), dim=-1)  # P1 eq. (20), (B, T, H, D, 2)
        return h.sum(dim=3) if self.pooled else h.flatten(-2)  # P1 eq. (19) pooled / concatenated

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(q, self.theta(pos_q)), self._transform(k, self.theta(pos_k))

    def kernel_scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Closed form matching ``scores``: eq. (15) if unpooled, eq. (15) plus cross terms if pooled."""
        q, k, pos_q, pos_k = self._checked(q, k, pos_q, pos_k)
        kernel = fstripe1_pooled_kernel if self.pooled else fstripe1_kernel
        return kernel(q, k, self.theta(pos_q), self.theta(pos_k))
