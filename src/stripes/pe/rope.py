"""RoPE (P1 eq. (8)–(10), (14), (22)): rotation of interleaved pairs by θ = Σ_c f[c] p[c] (no 2π).

``build_pe("rope")`` is **variant C** (learnable per-head frequencies, P1's best RoPE); textbook RoPE
(fixed frequencies) is ``build_pe("rope_a")`` / ``variant="A"``. See docs/papers.md §3.

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
    """Initial RoPE frequencies for variant A, B or C (also the initialisation of RoPEPool and F-StrIPE₁).

    Parameters
    ----------
    n_heads : int
        H.
    head_dim : int
        D (even); there are D/2 pairs.
    context_dim : int
        C; the frequency of a pair is replicated over the C components.
    variant : {"A", "B", "C"}
        "A": base^(−2d/D), the same for every head; "B" and "C": each head a strided slice of one
        geometric grid of H·D/2 values (see :func:`stripes.pe.fourier.geometric_frequencies`).
    base : float
        Base of the geometric schedule (> 1).

    Returns
    -------
    Tensor
        (H, D/2, C) float32 frequencies in radians per label unit (no 2π).
    """
    if variant not in ("A", "B", "C"):
        raise ConfigError(f"RoPE variant must be 'A', 'B' or 'C', got {variant!r}")
    freqs = geometric_frequencies(n_heads, head_dim // 2, float(base), per_head=variant != "A")
    return freqs.unsqueeze(-1).expand(-1, -1, context_dim).to(torch.float32).clone()


def rope_kernel(q: Tensor, k: Tensor, theta_q: Tensor, theta_k: Tensor) -> Tensor:
    """Closed-form RoPE scores, written term by term (the test oracle of :class:`RoPE`).

    # P1 eq. (14): a_mn = Σ_d F1 cos Δ⁻_d + F2 sin Δ⁻_d, Δ⁻_d = θ_d(m) − θ_d(n),
    #   F1 = q_{2d−1}k_{2d−1} + q_{2d}k_{2d},  F2 = q_{2d−1}k_{2d} − q_{2d}k_{2d−1}

    Parameters
    ----------
    q : Tensor
        Queries (B, Tq, H, D), D even, interleaved pairs (2d, 2d+1).
    k : Tensor
        Keys (B, Tk, H, D).
    theta_q : Tensor
        Query angles (B, Tq, H, D/2), e.g. ``RoPE.theta(pos_q)``.
    theta_k : Tensor
        Key angles (B, Tk, H, D/2).

    Returns
    -------
    Tensor
        Scores (B, H, Tq, Tk), equal to the dot products of the rotated q and k (no 1/√D).
    """
    q1, q2, k1, k2 = q[..., 0::2], q[..., 1::2], k[..., 0::2], k[..., 1::2]
    f1 = torch.einsum("bmhd,bnhd->bhmnd", q1, k1) + torch.einsum("bmhd,bnhd->bhmnd", q2, k2)
    f2 = torch.einsum("bmhd,bnhd->bhmnd", q1, k2) - torch.einsum("bmhd,bnhd->bhmnd", q2, k1)
    delta = theta_q.permute(0, 2, 1, 3).unsqueeze(3) - theta_k.permute(0, 2, 1, 3).unsqueeze(2)
    return (f1 * torch.cos(delta) + f2 * torch.sin(delta)).sum(-1)


class RoPE(QKPositionalEncoding):
    """Unpooled rotary PE: q, k (B, T, H, D) → rotated (B, T, H, D) (P1 eq. (8)–(10), (21)–(22)).

    **The default is variant C** (learnable per-head frequencies, the best RoPE of P1 on TIME, KEY and
    BIN), so ``build_pe("rope")`` is *not* textbook RoPE. Textbook RoPE, with fixed geometric frequencies
    shared by all heads, is ``build_pe("rope_a")`` or ``RoPE(..., variant="A")``.

    Each interleaved pair (2d, 2d+1) of q and k is rotated by θ_d(p) = Σ_c f[h, d, c] p[c] (no 2π), so
    the scores depend on the positions only through p_m − p_n (closed form :func:`rope_kernel`, P1 eq.
    (14)). Call as ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``; ``pe.scores`` gives q_out·k_out
    (B, H, Tq, Tk). See docs/pe.md and docs/papers.md §3.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k; must be even (the rotation acts on pairs).
    n_heads : int
        H, the number of heads (each head has its own frequencies for variants B and C).
    context_dim : int, default 1
        C, the number of position components per step (1 for TIME, REP, KEY; 12 for BIN chroma).
    variant : {"C", "A", "B"}, default "C"
        Frequency scheme of P1 §IV-E. "A": fixed f_d = base^(−2d/D), d = 0..D/2−1, shared by all heads
        (textbook RoPE). "B": fixed, each head a strided slice of one geometric grid of H·D/2 values.
        "C": B's values as a learnable parameter, one frequency per (head, pair, context component).
        With C > 1, A and B use one frequency for all components (θ = f_d Σ_c p_c).
    base : float, default 10000.0
        Base of the geometric frequency schedule (> 1).

    Attributes
    ----------
    freqs : Tensor
        (H, D/2, C) frequencies, an ``nn.Parameter`` for variant C and a buffer for A and B.
    out_dim : int
        D (unpooled).
    """

    description = (
        "RoPE (P1): rotation of interleaved pairs; default variant C = learnable per-head freqs (P1's best), "
        "textbook fixed-frequency RoPE = rope_a; out_dim D"
    )

    def __init__(
        self, head_dim: int, n_heads: int, context_dim: int = 1, variant: str = "C", base: float = 10000.0
    ) -> None:
        """Build the RoPE; the parameters are described in the class docstring."""
        check_dims(head_dim, n_heads, context_dim, even=True)
        super().__init__(head_dim, n_heads, context_dim)
        self.variant = variant
        freqs = rope_init_frequencies(n_heads, head_dim, context_dim, variant, base)
        if variant == "C":
            self.freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)

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

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        # P1 eq. (8)–(10): q_m P̂_mᵀ, k_n P̂_nᵀ with block-diagonal rotations R(f_d p)
        return rotate_pairs(q, self.theta(pos_q)), rotate_pairs(k, self.theta(pos_k))

    def kernel_scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Closed form P1 eq. (14) with this module's frequencies (the oracle of ``scores``).

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
        return rope_kernel(q, k, self.theta(pos_q), self.theta(pos_k))
