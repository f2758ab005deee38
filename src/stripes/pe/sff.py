"""F-StrIPE:SFF (P2 eq. (6)) and sineSPE (Liutkus et al. 2021; P1 eq. (6)–(7), P2 eq. (4)–(5)).

Stochastic codes: per (head, dim), Ω_d(p) λ̈_d (as in F-StrIPE, query-side phases) times Gaussian noise
Z_d ∈ R^{2N_f × R}, pooled over d:  q̂_r = Σ_d q_d [Ω^Q_d(p) λ̈_d Z_d]_r / √(N_f R)    # P1 eq. (7), P2 eq. (6)
With Z ~ N(0, 1), E[q̂·k̂] = Σ_d q_d k_d P_d with P_d the RFF kernel of P2 eq. (7)–(8) (the ½ of √(2N_f)
moved into 1/√N_f, docs/papers.md §5) and 1/R makes the product a Monte-Carlo mean; it converges as R → ∞.
Optional gating (SPE): q̄_d ← √(1−σ(g_d)) q̄_d + √σ(g_d) ε_d, with ε (H, D, R) ~ N(0, 1)/√R shared by q and k,
so P_d ← (1 − σ(g_d)) P_d + σ(g_d).
Noise is drawn afresh on every forward in training; in eval the buffers ``z_eval``/``eps_eval`` (saved in
the state dict) are used, so eval is deterministic. They come from ``seed`` when one is given, else from the
global torch RNG, which training seeds with the run's seed before building the model: every layer and every
run seed then evaluates with its own draw, so the seed spread of a result includes the noise's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from stripes.errors import ConfigError
from stripes.pe.base import QKPositionalEncoding, check_dims
from stripes.pe.fourier import check_chunk_size
from stripes.pe.fourier_fused import fourier_pool_shared
from stripes.pe.fstripe import FourierCodeParams, rff_kernel, rff_scores


class FStripeSFF(QKPositionalEncoding):
    """F-StrIPE:SFF (P2 eq. (6)): stochastic Fourier features over C levels, (B, T, H, D) → (B, T, H, R).

    The F-StrIPE Fourier code of the (vector) labels times Gaussian noise Z_d ∈ R^{2N_f × R}, pooled over
    the dimensions: q̂_r = Σ_d q_d [Ω^Q_d(p) λ̈_d Z_d]_r / √(N_f R). In expectation over Z, q̂·k̂ is the RFF
    kernel attention of :class:`stripes.pe.FStripe` (``expected_scores``); the error shrinks as R^(−1/2).
    Z is redrawn on every forward in ``train()`` mode and fixed (buffers ``z_eval``, ``eps_eval``) in
    ``eval()``. Call as ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``. See docs/pe.md and
    docs/papers.md §4.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k.
    n_heads : int
        H, the number of heads.
    context_dim : int, default 1
        C, the number of structure levels / components per step.
    n_sines : int, default 5
        N_f, sines per (head, dimension) (SPE's pop-piano setting).
    n_realizations : int, default 64
        R, noise realizations; the output width.
    gated : bool, default False
        SPE's gate: per (head, dimension), mix the positional code with position-free noise, so the
        expected kernel becomes (1 − σ(g)) P_d + σ(g).
    seed : int or None, default None
        Seed of the evaluation noise buffers; ``None`` draws them from torch's global RNG.
    chunk_size : int or None, default 128
        Block limit of the fused computation (time steps); ``None`` = no limit. Does not change the result.

    Attributes
    ----------
    code : FourierCodeParams
        Learnable frequencies, gains and query phases.
    gate : nn.Parameter or None
        (H, D) gate logits when ``gated``.
    z_eval, eps_eval : Tensor
        Evaluation noise (H, D, 2N_f, R) and gate noise (H, D, R), saved in the state dict.
    out_dim : int
        R.
    """

    description = "F-StrIPE:SFF (P2 eq. 6): sineSPE with vector structure labels, R realizations; out_dim R"
    stochastic = True

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        context_dim: int = 1,
        n_sines: int = 5,
        n_realizations: int = 64,
        gated: bool = False,
        seed: int | None = None,
        chunk_size: int | None = 128,
    ) -> None:
        """Build the FStripeSFF; the parameters are described in the class docstring."""
        check_dims(head_dim, n_heads, context_dim)
        if isinstance(n_realizations, bool) or not isinstance(n_realizations, int) or n_realizations < 1:
            raise ConfigError(f"n_realizations must be a positive integer, got {n_realizations!r}")
        super().__init__(head_dim, n_heads, context_dim)
        self.code = FourierCodeParams(n_heads, head_dim, context_dim, n_sines)
        self.n_sines = n_sines
        self.n_realizations = n_realizations
        self.out_dim = n_realizations
        self.chunk_size = check_chunk_size(chunk_size)
        self.gated = bool(gated)
        self.gate = nn.Parameter(torch.randn(n_heads, head_dim)) if self.gated else None
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))  # None: the global RNG
        self.register_buffer(
            "z_eval", torch.randn(n_heads, head_dim, 2 * n_sines, n_realizations, generator=gen)
        )
        self.register_buffer("eps_eval", torch.randn(n_heads, head_dim, n_realizations, generator=gen))

    def _noise(self) -> tuple[Tensor, Tensor]:
        if self.training:
            return torch.randn_like(self.z_eval), torch.randn_like(self.eps_eval)
        return self.z_eval, self.eps_eval

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        z, eps = self._noise()
        mix = z / math.sqrt(self.n_sines * self.n_realizations)
        freqs, gains = self.code.freqs, self.code.gains
        if self.gated:
            s = torch.sigmoid(self.gate).to(q.dtype)
            eps = eps.to(q.dtype) / math.sqrt(self.n_realizations)
            q_pos, k_pos = q * torch.sqrt(1 - s), k * torch.sqrt(1 - s)
            q_out, k_out = fourier_pool_shared(
                q_pos, k_pos, pos_q, pos_k, freqs, gains, self.code.offsets, mix, self.chunk_size
            )
            q_out = q_out + torch.einsum("bthd,hdr->bthr", q * torch.sqrt(s), eps)
            k_out = k_out + torch.einsum("bthd,hdr->bthr", k * torch.sqrt(s), eps)
            return q_out, k_out
        return fourier_pool_shared(q, k, pos_q, pos_k, freqs, gains, self.code.offsets, mix, self.chunk_size)

    def kernel(self, pos_q: Tensor, pos_k: Tensor) -> Tensor:
        """Expected positional matrices: the RFF kernel of P2 eq. (7)–(8), gated if enabled.

        Parameters
        ----------
        pos_q : Tensor
            Query positions (B, Tq, C).
        pos_k : Tensor
            Key positions (B, Tk, C).

        Returns
        -------
        Tensor
            E[P_d] (B, H, D, Tq, Tk).
        """
        p = rff_kernel(pos_q, pos_k, self.code.freqs, self.code.gains, self.code.offsets)
        if self.gated:
            s = torch.sigmoid(self.gate).to(p.dtype)[None, :, :, None, None]
            p = (1 - s) * p + s
        return p

    def expected_scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """The R → ∞ limit (expectation over the noise) of ``scores``: Σ_d q_md k_nd P_d[m, n].

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
            Expected scores (B, H, Tq, Tk), no 1/√D.
        """
        q, k, pos_q, pos_k = self._checked(q, k, pos_q, pos_k)
        return rff_scores(q, k, self.kernel(pos_q, pos_k))


class SPE(FStripeSFF):
    """sineSPE of Liutkus et al. 2021 (P1 eq. (6)–(7), P2 eq. (3)–(5)): (B, T, H, D) → (B, T, H, R).

    The :class:`FStripeSFF` code restricted to one scalar position per step (C = 1) and gated by default;
    fed TIME positions (p_t = t) it is sineSPE, P2's SPE baseline. For vector labels use ``fstripe_sff``.
    See docs/pe.md and docs/papers.md §4.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k.
    n_heads : int
        H, the number of heads.
    context_dim : int, default 1
        Must be 1 (scalar positions); anything else raises ``ConfigError``.
    n_sines : int, default 5
        N_f, sines per (head, dimension).
    n_realizations : int, default 64
        R, noise realizations; the output width.
    gated : bool, default True
        SPE's gate (see :class:`FStripeSFF`).
    seed : int or None, default None
        Seed of the evaluation noise buffers; ``None`` draws them from torch's global RNG.
    chunk_size : int or None, default 128
        Block limit of the fused computation (time steps); ``None`` = no limit.
    """

    description = "SPE (Liutkus et al. 2021): gated sineSPE on scalar (TIME) positions; out_dim R"

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        context_dim: int = 1,
        n_sines: int = 5,
        n_realizations: int = 64,
        gated: bool = True,
        seed: int | None = None,
        chunk_size: int | None = 128,
    ) -> None:
        """Build the SPE; the parameters are described in the class docstring."""
        if context_dim != 1:
            raise ConfigError(
                f"spe takes scalar positions (context_dim 1), got {context_dim}; use fstripe_sff"
            )
        super().__init__(head_dim, n_heads, 1, n_sines, n_realizations, gated, seed, chunk_size)
