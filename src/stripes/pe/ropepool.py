"""RoPEPool (P1 §III-D, eq. (23), (26)): rotate each pair as RoPE, then sum its two coordinates.

Per pair d: z_d(a) = [R(θ_d) a_(2d−1:2d)]₁ + [R(θ_d) a_(2d−1:2d)]₂ = a₁(cos θ + sin θ) + a₂(cos θ − sin θ),
so out_dim = D/2. Frequencies (H, D/2, C) are learnable per head and initialised as RoPE(C).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stripes.pe.base import QKPositionalEncoding, check_dims
from stripes.pe.fourier import angles
from stripes.pe.rope import rope_init_frequencies


def ropepool_kernel(q: Tensor, k: Tensor, theta_q: Tensor, theta_k: Tensor) -> Tensor:
    """Closed-form RoPEPool scores, written term by term (the test oracle of :class:`RoPEPool`).

    # P1 eq. (23): a_mn = Σ_d (q₁k₁ + q₂k₂) cos Δ⁻ + (q₁k₂ − q₂k₁) sin Δ⁻
    #                        + (q₁k₁ − q₂k₂) sin Δ⁺ + (q₁k₂ + q₂k₁) cos Δ⁺,
    #   Δ⁻ = θ_d(m) − θ_d(n), Δ⁺ = θ_d(m) + θ_d(n)

    Parameters
    ----------
    q : Tensor
        Queries (B, Tq, H, D), D even, interleaved pairs (2d, 2d+1).
    k : Tensor
        Keys (B, Tk, H, D).
    theta_q : Tensor
        Query angles (B, Tq, H, D/2), e.g. ``RoPEPool.theta(pos_q)``.
    theta_k : Tensor
        Key angles (B, Tk, H, D/2).

    Returns
    -------
    Tensor
        Scores (B, H, Tq, Tk), equal to the dot products of the pooled codes (no 1/√D).
    """
    q1, q2, k1, k2 = q[..., 0::2], q[..., 1::2], k[..., 0::2], k[..., 1::2]

    def outer(a: Tensor, b: Tensor) -> Tensor:
        return torch.einsum("bmhd,bnhd->bhmnd", a, b)

    tq = theta_q.permute(0, 2, 1, 3).unsqueeze(3)
    tk = theta_k.permute(0, 2, 1, 3).unsqueeze(2)
    dm, dp = tq - tk, tq + tk
    a11, a22, a12, a21 = outer(q1, k1), outer(q2, k2), outer(q1, k2), outer(q2, k1)
    terms = (
        (a11 + a22) * torch.cos(dm)
        + (a12 - a21) * torch.sin(dm)
        + (a11 - a22) * torch.sin(dp)
        + (a12 + a21) * torch.cos(dp)
    )
    return terms.sum(-1)


class RoPEPool(QKPositionalEncoding):
    """Pooled rotary PE (P1 §III-D, eq. (23)): q, k (B, T, H, D) → (B, T, H, D/2).

    Each interleaved pair (2d, 2d+1) is rotated as in RoPE by θ_d(p) = Σ_c f[h, d, c] p[c] (no 2π), then
    its two rotated coordinates are summed into one number:
    z_d(a) = a_{2d}(cos θ + sin θ) + a_{2d+1}(cos θ − sin θ). z(q_m)·z(k_n) is P1 eq. (23) term by term
    (:func:`ropepool_kernel`); its Δ⁺ = θ(m) + θ(n) terms make the scores depend on p_m + p_n, so RoPEPool is
    not shift invariant. Call as ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``. Works with linear
    attention (the feature map gets D/2 inputs) and softmax. See docs/pe.md and docs/papers.md §6.4.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k; must be even (the rotation acts on pairs).
    n_heads : int
        H, the number of heads; every head has its own frequencies.
    context_dim : int, default 1
        C, the number of position components per step (1 for TIME, REP, KEY; 12 for BIN chroma); one
        learnable frequency per (head, pair, component).
    base : float, default 10000.0
        Base of the geometric schedule the learnable frequencies start from (RoPE variant C's
        initialisation: each head a strided slice of one grid of H·D/2 values base^(−j/(H·D/2))); > 1.
        Binary (BIN) positions turn most pairs very little at 10000; a smaller base is an ablation.

    Attributes
    ----------
    freqs : nn.Parameter
        (H, D/2, C) learnable frequencies (radians per label unit).
    out_dim : int
        D/2.
    """

    description = (
        "RoPEPool (P1 eq. 23): RoPE rotation then per-pair sum, learnable per-head freqs; out_dim D/2"
    )

    def __init__(self, head_dim: int, n_heads: int, context_dim: int = 1, base: float = 10000.0) -> None:
        """Build the RoPEPool; the parameters are described in the class docstring."""
        check_dims(head_dim, n_heads, context_dim, even=True)
        super().__init__(head_dim, n_heads, context_dim)
        self.out_dim = head_dim // 2
        self.freqs = nn.Parameter(rope_init_frequencies(n_heads, head_dim, context_dim, "C", base))

    def theta(self, pos: Tensor) -> Tensor:
        """Rotation angles θ = Σ_c f[h, d, c] p[c] (no 2π).

        Parameters
        ----------
        pos : Tensor
            Positions (B, T, C).

        Returns
        -------
        Tensor
            Angles (B, T, H, D/2).
        """
        return angles(pos, self.freqs)

    @staticmethod
    def _pool(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """The rotated pair's two coordinates summed: (x1 cos - x2 sin) + (x2 cos + x1 sin), P1 eq. (22)
        (the terms of :func:`stripes.pe.fourier.rotate_pairs`, summed without laying the pairs out)."""
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return (x1 * cos - x2 * sin) + (x2 * cos + x1 * sin)

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        theta_q = self.theta(pos_q)
        cos_q, sin_q = torch.cos(theta_q), torch.sin(theta_q)
        if pos_k is pos_q and not (torch.is_grad_enabled() and self.freqs.requires_grad):
            # self-attention without autograd (evaluation, generation): one set of angles for q and k. With
            # autograd each keeps its own, so the frequencies' gradient sums in the same order as ever.
            cos_k, sin_k = cos_q, sin_q
        else:
            theta_k = self.theta(pos_k)
            cos_k, sin_k = torch.cos(theta_k), torch.sin(theta_k)
        return self._pool(q, cos_q, sin_q), self._pool(k, cos_k, sin_k)

    def kernel_scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Closed form P1 eq. (23) with this module's frequencies (the oracle of ``scores``).

        Parameters
        ----------
        q : Tensor
            Queries (B, Tq, H, D).
        k : Tensor
            Keys (B, Tk, H, D).
        pos_q : Tensor
            Query positions (B, Tq, C) (or (B, Tq) when C = 1).
        pos_k : Tensor, optional
            Key positions (B, Tk, C); ``None`` uses ``pos_q`` (then Tq must equal Tk).

        Returns
        -------
        Tensor
            Scores (B, H, Tq, Tk), no 1/√D.
        """
        q, k, pos_q, pos_k = self._checked(q, k, pos_q, pos_k)
        return ropepool_kernel(q, k, self.theta(pos_q), self.theta(pos_k))
