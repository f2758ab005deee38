"""RoPE (P1 eq. (8)–(10), (14), (22)): rotation of interleaved pairs by θ = Σ_c f[c] p[c] (no 2π).

Variants (P1 §IV-E): A fixed geometric base^(−2d/D) shared by heads; B fixed, each head a strided slice of
a finer geometric grid; C as B but learnable. Frequencies have shape (H, D/2, C): for C > 1, A and B use the
same fixed f_d for every context component (θ = f_d Σ_c p_c) and C starts from B's values replicated over c,
then learns one frequency per (head, pair, component).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stripes.errors import ConfigError
from stripes.pe.base import QKPositionalEncoding, check_dims
from stripes.pe.fourier import angles, geometric_frequencies, rotate_pairs


def rope_init_frequencies(n_heads: int, head_dim: int, context_dim: int, variant: str, base: float) -> Tensor:
    """Initial RoPE frequencies (H, D/2, C) in float32 for variant A, B or C."""
    if variant not in ("A", "B", "C"):
        raise ConfigError(f"RoPE variant must be 'A', 'B' or 'C', got {variant!r}")
    freqs = geometric_frequencies(n_heads, head_dim // 2, float(base), per_head=variant != "A")
    return freqs.unsqueeze(-1).expand(-1, -1, context_dim).to(torch.float32).clone()


def rope_kernel(q: Tensor, k: Tensor, theta_q: Tensor, theta_k: Tensor) -> Tensor:
    """Closed-form RoPE scores, (B, H, Tq, Tk), from q (B, Tq, H, D), k and angles theta (B, T, H, D/2).

    # P1 eq. (14): a_mn = Σ_d F1 cos Δ⁻_d + F2 sin Δ⁻_d, Δ⁻_d = θ_d(m) − θ_d(n),
    #   F1 = q_{2d−1}k_{2d−1} + q_{2d}k_{2d},  F2 = q_{2d−1}k_{2d} − q_{2d}k_{2d−1}
    """
    q1, q2, k1, k2 = q[..., 0::2], q[..., 1::2], k[..., 0::2], k[..., 1::2]
    f1 = torch.einsum("bmhd,bnhd->bhmnd", q1, k1) + torch.einsum("bmhd,bnhd->bhmnd", q2, k2)
    f2 = torch.einsum("bmhd,bnhd->bhmnd", q1, k2) - torch.einsum("bmhd,bnhd->bhmnd", q2, k1)
    delta = theta_q.permute(0, 2, 1, 3).unsqueeze(3) - theta_k.permute(0, 2, 1, 3).unsqueeze(2)
    return (f1 * torch.cos(delta) + f2 * torch.sin(delta)).sum(-1)


class RoPE(QKPositionalEncoding):
    """Unpooled rotary PE: q, k (B, T, H, D) → rotated (B, T, H, D)."""

    description = "RoPE (P1): rotation of interleaved pairs, variants A/B fixed, C learnable; out_dim D"

    def __init__(
        self, head_dim: int, n_heads: int, context_dim: int = 1, variant: str = "C", base: float = 10000.0
    ) -> None:
        check_dims(head_dim, n_heads, context_dim, even=True)
        super().__init__(head_dim, n_heads, context_dim)
        self.variant = variant
        freqs = rope_init_frequencies(n_heads, head_dim, context_dim, variant, base)
        if variant == "C":
            self.freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)

    def theta(self, pos: Tensor) -> Tensor:
        """pos (B, T, C) → angles (B, T, H, D/2)."""
        return angles(pos, self.freqs)

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        # P1 eq. (8)–(10): q_m P̂_mᵀ, k_n P̂_nᵀ with block-diagonal rotations R(f_d p)
        return rotate_pairs(q, self.theta(pos_q)), rotate_pairs(k, self.theta(pos_k))

    def kernel_scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Closed form eq. (14) evaluated with this module's frequencies, (B, H, Tq, Tk)."""
        q, k, pos_q, pos_k = self._checked(q, k, pos_q, pos_k)
        return rope_kernel(q, k, self.theta(pos_q), self.theta(pos_k))
