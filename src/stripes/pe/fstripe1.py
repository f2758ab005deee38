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
    """Closed-form F-StrIPE₁ kernel (the scores of the unpooled transform).

    # P1 eq. (15): a_mn = Σ_d q_md k_nd cos(θ_d(m) − θ_d(n))

    Parameters
    ----------
    q : Tensor
        Queries (B, Tq, H, D).
    k : Tensor
        Keys (B, Tk, H, D).
    theta_q : Tensor
        Query angles (B, Tq, H, D), one per dimension, e.g. ``FStripe1.theta(pos_q)``.
    theta_k : Tensor
        Key angles (B, Tk, H, D).

    Returns
    -------
    Tensor
        Scores (B, H, Tq, Tk), no 1/√D.
    """
    delta = theta_q.permute(0, 2, 1, 3).unsqueeze(3) - theta_k.permute(0, 2, 1, 3).unsqueeze(2)
    return (torch.einsum("bmhd,bnhd->bhmnd", q, k) * torch.cos(delta)).sum(-1)


def fstripe1_pooled_kernel(q: Tensor, k: Tensor, theta_q: Tensor, theta_k: Tensor) -> Tensor:
    """Closed form of the pooled scores C(q_m)·C(k_n) = Σ_d Σ_d' q_md k_nd' cos(θ_d(m) − θ_d'(n)).

    The d = d' terms are eq. (15); the d ≠ d' terms are the cross-dimension terms that P1 assumes
    negligible (docs/papers.md §6.3).

    Parameters
    ----------
    q : Tensor
        Queries (B, Tq, H, D).
    k : Tensor
        Keys (B, Tk, H, D).
    theta_q : Tensor
        Query angles (B, Tq, H, D).
    theta_k : Tensor
        Key angles (B, Tk, H, D).

    Returns
    -------
    Tensor
        Scores (B, H, Tq, Tk), cross terms included, no 1/√D.
    """
    tq = theta_q.permute(0, 2, 1, 3)[:, :, :, None, :, None]  # (B, H, Tq, 1, D, 1)
    tk = theta_k.permute(0, 2, 1, 3)[:, :, None, :, None, :]  # (B, H, 1, Tk, 1, D)
    qk = torch.einsum("bmhd,bnhe->bhmnde", q, k)
    return (qk * torch.cos(tq - tk)).sum((-1, -2))


class FStripe1(QKPositionalEncoding):
    """F-StrIPE₁ (P1 eq. (15), (19)–(20)): (B, T, H, D) → pooled (B, T, H, 2) or unpooled (B, T, H, 2D).

    F-StrIPE with one learnable frequency per dimension, no gains and no phases:
    h(a_d) = [a_d cos θ_d, a_d sin θ_d] with θ_d(p) = Σ_c f[h, d, c] p[c] (no 2π). Pooled (default, P1's
    literal reading) sums h over d; unpooled concatenates. Unpooled scores are exactly eq. (15)
    (:func:`fstripe1_kernel`, shift invariant); pooled scores add the cross-dimension terms P1 assumes
    negligible (:func:`fstripe1_pooled_kernel`). Call as ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``.
    See docs/pe.md and docs/papers.md §6.2–§6.3.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k; must be even (the two dimensions of a pair start at one frequency).
    n_heads : int
        H, the number of heads; every head has its own frequencies.
    context_dim : int, default 1
        C, the number of position components per step (12 for BIN chroma); one learnable frequency per
        (head, dimension, component).
    pooled : bool, default True
        True: sum over dimensions, out_dim 2 (P1's pooled transform, eq. (19)); False: concatenate,
        out_dim 2D (the unpooled transform, an ablation).
    base : float, default 10000.0
        Base of the geometric schedule the learnable frequencies start from (RoPE variant B's values,
        both dimensions of a pair sharing one); > 1.

    Attributes
    ----------
    freqs : nn.Parameter
        (H, D, C) learnable frequencies (radians per label unit).
    out_dim : int
        2 if ``pooled`` else 2D.
    """

    description = "F-StrIPE1 (P1 eq. 15): one learnable frequency per dim; pooled out_dim 2, unpooled 2D"

    def __init__(
        self, head_dim: int, n_heads: int, context_dim: int = 1, pooled: bool = True, base: float = 10000.0
    ) -> None:
        """Build the FStripe1; the parameters are described in the class docstring."""
        check_dims(head_dim, n_heads, context_dim, even=True)
        super().__init__(head_dim, n_heads, context_dim)
        self.pooled = bool(pooled)
        self.out_dim = 2 if self.pooled else 2 * head_dim
        freqs = rope_init_frequencies(n_heads, head_dim, context_dim, "B", base).repeat_interleave(2, dim=1)
        self.freqs = nn.Parameter(freqs)

    def theta(self, pos: Tensor) -> Tensor:
        """Angles θ = Σ_c f[h, d, c] p[c] (no 2π), one per dimension.

        Parameters
        ----------
        pos : Tensor
            Positions (B, T, C).

        Returns
        -------
        Tensor
            Angles (B, T, H, D).
        """
        return angles(pos, self.freqs)

    def _transform(self, x: Tensor, theta: Tensor) -> Tensor:
        h = torch.stack((x * torch.cos(theta), x * torch.sin(theta)), dim=-1)  # P1 eq. (20), (B, T, H, D, 2)
        return h.sum(dim=3) if self.pooled else h.flatten(-2)  # P1 eq. (19) pooled / concatenated

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(q, self.theta(pos_q)), self._transform(k, self.theta(pos_k))

    def kernel_scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Closed form matching ``scores``: eq. (15) if unpooled, eq. (15) plus cross terms if pooled.

        Parameters
        ----------
        q : Tensor
            Queries (B, Tq, H, D).
        k : Tensor
            Keys (B, Tk, H, D).
        pos_q : Tensor
            Query positions (B, Tq, C) (or (B, Tq) when C = 1).
        pos_k : Tensor, optional
            Key positions (B, Tk, C); ``None`` uses ``pos_q``.

        Returns
        -------
        Tensor
            Scores (B, H, Tq, Tk), no 1/√D.
        """
        q, k, pos_q, pos_k = self._checked(q, k, pos_q, pos_k)
        kernel = fstripe1_pooled_kernel if self.pooled else fstripe1_kernel
        return kernel(q, k, self.theta(pos_q), self.theta(pos_k))
