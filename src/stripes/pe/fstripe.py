"""F-StrIPE (P2 eq. (6)–(9)): learnable random-Fourier-feature (RFF) codes over C context levels.

Per head h and dimension d: N_f frequency vectors F_{h,d,ω} ∈ R^C (cycles per label unit, F = sigmoid(raw)/2
as in SPE, raw initialised N(0,1) − 4), gains λ = softplus(raw gains), query-side phases θ (keys: 0).
P^Q_d(p) = [λ cos(2π F p + θ), λ sin(2π F p + θ)] / √N_f  (cos block then sin block)      # P2 eq. (9)
P^K_d(p) = [λ cos(2π F p), λ sin(2π F p)] / √N_f
Pooled (default): q̂ = Σ_d q_d P^Q_d(p) ∈ R^{2N_f}; unpooled: the D codes concatenated (2N_f·D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stripes.errors import ConfigError
from stripes.pe.base import QKPositionalEncoding, as_positions, check_dims
from stripes.pe.fourier import TWO_PI, check_chunk_size, fourier_phase, fourier_pool
from stripes.pe.fourier_compile import fourier_pool_pair
from stripes.pe.fourier_fused import fourier_pool_shared


def rff_kernel(pos_q: Tensor, pos_k: Tensor, freqs: Tensor, gains: Tensor, offsets: Tensor) -> Tensor:
    """Per-dimension positional matrices P_d of the RFF kernel.

    # P2 eq. (7)–(8): P_d[m, n] = (1/N_f) Σ_ω λ²_ω cos(2π F_ω·(p_m − p_n) + θ_ω)

    Parameters
    ----------
    pos_q : Tensor
        Query positions (B, Tq, C).
    pos_k : Tensor
        Key positions (B, Tk, C).
    freqs : Tensor
        Frequencies F (H, D, N, C) in cycles per label unit.
    gains : Tensor
        Gains λ (H, D, N), already positive.
    offsets : Tensor
        Query phases θ (H, D, N).

    Returns
    -------
    Tensor
        P_d (B, H, D, Tq, Tk).
    """
    pos_q = as_positions(pos_q, freqs.shape[-1], "pos_q", check_finite=False)
    pos_k = as_positions(pos_k, freqs.shape[-1], "pos_k", check_finite=False)
    diff = pos_q.unsqueeze(2) - pos_k.unsqueeze(1)  # (B, Tq, Tk, C)
    phase = (
        TWO_PI * torch.einsum("bmnc,hdwc->bhdmnw", diff, freqs.to(diff.dtype))
        + offsets.to(diff.dtype)[None, :, :, None, None, :]
    )
    weight = (gains.to(diff.dtype) ** 2)[None, :, :, None, None, :]
    return (weight * torch.cos(phase)).mean(-1)


def rff_scores(q: Tensor, k: Tensor, kernel: Tensor) -> Tensor:
    """Σ_d q_md k_nd P_d[m, n], the kernel attention of P2 eq. (7).

    Parameters
    ----------
    q : Tensor
        Queries (B, Tq, H, D).
    k : Tensor
        Keys (B, Tk, H, D).
    kernel : Tensor
        P_d (B, H, D, Tq, Tk), e.g. from :func:`rff_kernel`.

    Returns
    -------
    Tensor
        Scores (B, H, Tq, Tk), no 1/√D.
    """
    return torch.einsum("bmhd,bnhd,bhdmn->bhmn", q, k, kernel)


def rff_pooled_scores(
    q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor, freqs: Tensor, gains: Tensor, offsets: Tensor
) -> Tensor:
    """Closed form of the pooled scores q̂_m·k̂_n, cross-dimension terms included.

    q̂_m·k̂_n = (1/N_f) Σ_{d, d'} q_md k_nd' Σ_ω λ_dω λ_d'ω cos(2π F_dω p_m + θ_dω − 2π F_d'ω p_n);
    the d = d' terms are P2 eq. (7)–(8), the rest vanish only in expectation.

    Parameters
    ----------
    q : Tensor
        Queries (B, Tq, H, D).
    k : Tensor
        Keys (B, Tk, H, D).
    pos_q : Tensor
        Query positions (B, Tq, C).
    pos_k : Tensor
        Key positions (B, Tk, C).
    freqs : Tensor
        Frequencies F (H, D, N, C) in cycles per label unit.
    gains : Tensor
        Gains λ (H, D, N), already positive (without the 1/√N_f).
    offsets : Tensor
        Query phases θ (H, D, N).

    Returns
    -------
    Tensor
        Scores (B, H, Tq, Tk), no 1/√D.
    """
    pq = fourier_phase(pos_q, freqs, offsets)  # (B, Tq, H, D, N)
    pk = fourier_phase(pos_k, freqs)  # (B, Tk, H, D, N)
    cos = torch.cos(pq[:, :, None, :, :, None, :] - pk[:, None, :, :, None, :, :])  # (B, Tq, Tk, H, D, D', N)
    lam = gains.to(q.dtype)
    weight = torch.einsum("bmhd,bnhe,hdw,hew->bmnhdew", q, k, lam, lam)
    return (weight * cos).sum((-1, -2, -3)).permute(0, 3, 1, 2) / freqs.shape[2]


class FourierCodeParams(nn.Module):
    """Learnable Fourier-code parameters shared by F-StrIPE, F-StrIPE:SFF and SPE.

    Parametrised as in the SPE code: frequencies F = sigmoid(raw)/2 ∈ (0, ½) cycles per label unit with
    raw ~ N(0, 1) − 4, gains λ = softplus(raw) with raw ~ N(0, 1), query phases θ ~ N(0, 1).

    Parameters
    ----------
    n_heads : int
        H.
    head_dim : int
        D.
    context_dim : int
        C; every sine has one frequency per context component.
    n_sines : int
        N_f ≥ 1, sines per (head, dimension).

    Attributes
    ----------
    raw_freqs : nn.Parameter
        (H, D, N, C).
    raw_gains : nn.Parameter
        (H, D, N).
    offsets : nn.Parameter
        Query phases θ (H, D, N) in radians.
    """

    def __init__(self, n_heads: int, head_dim: int, context_dim: int, n_sines: int) -> None:
        """Build the FourierCodeParams; the parameters are described in the class docstring."""
        super().__init__()
        if isinstance(n_sines, bool) or not isinstance(n_sines, int) or n_sines < 1:
            raise ConfigError(f"n_sines must be a positive integer, got {n_sines!r}")
        self.n_sines = n_sines
        self.raw_freqs = nn.Parameter(torch.randn(n_heads, head_dim, n_sines, context_dim) - 4.0)
        self.raw_gains = nn.Parameter(torch.randn(n_heads, head_dim, n_sines))
        self.offsets = nn.Parameter(torch.randn(n_heads, head_dim, n_sines))

    @property
    def freqs(self) -> Tensor:
        """Frequencies in cycles per label unit, in (0, 0.5), (H, D, N, C)."""
        return torch.sigmoid(self.raw_freqs) / 2

    @property
    def gains(self) -> Tensor:
        """Positive gains λ = softplus(raw), (H, D, N)."""
        return F.softplus(self.raw_gains)


class FStripe(QKPositionalEncoding):
    """F-StrIPE (RFF, P2 eq. (6)–(9)): (B, T, H, D) → pooled (B, T, H, 2N_f) or unpooled (B, T, H, 2N_f·D).

    Deterministic Fourier codes of the (vector) structure labels, learned frequencies F ∈ R^{N_f × C},
    gains λ and query phases θ per (head, dimension):
    P^Q_d(p) = [λ cos(2π F p + θ), λ sin(2π F p + θ)] / √N_f and P^K_d(p) the same without θ; pooled,
    q̂ = Σ_d q_d P^Q_d(p). q̂·k̂ approximates Σ_d q_md k_nd P_d[m, n] with the RFF kernel P_d of
    :func:`rff_kernel`. Call as ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``. Works with linear
    attention (the feature map gets 2N_f inputs) and softmax. See docs/pe.md and docs/papers.md §5.

    Parameters
    ----------
    head_dim : int
        D, the per-head width of q and k.
    n_heads : int
        H, the number of heads.
    context_dim : int, default 1
        C, the number of structure levels / components per step (e.g. 3 for melody, chord, phrase).
    n_sines : int, default 32
        N_f, sines per (head, dimension); P2 does not report it, 32 gives SPE's width 2N_f = 64.
    pooled : bool, default True
        True: sum the codes over dimensions, out_dim 2N_f (P2's F-StrIPE); False: concatenate them,
        out_dim 2N_f·D (unpooled, exact kernel, memory-hungry).
    chunk_size : int or None, default 128
        Time steps per chunk of the unpooled path (chunks are recomputed in backward) and the block
        limit of the fused pooled path; ``None`` = no chunking. Does not change the result.

    Attributes
    ----------
    code : FourierCodeParams
        The learnable frequencies, gains and phases.
    out_dim : int
        2·n_sines if ``pooled`` else 2·n_sines·D.
    """

    description = "F-StrIPE (P2 eq. 6-9): learnable RFF codes over C levels, pooled out_dim 2*n_sines"

    def __init__(
        self,
        head_dim: int,
        n_heads: int,
        context_dim: int = 1,
        n_sines: int = 32,
        pooled: bool = True,
        chunk_size: int | None = 128,
    ) -> None:
        """Build the FStripe; the parameters are described in the class docstring."""
        check_dims(head_dim, n_heads, context_dim)
        super().__init__(head_dim, n_heads, context_dim)
        self.code = FourierCodeParams(n_heads, head_dim, context_dim, n_sines)
        self.n_sines = n_sines
        self.pooled = bool(pooled)
        self.chunk_size = check_chunk_size(chunk_size)
        self.out_dim = 2 * n_sines if self.pooled else 2 * n_sines * head_dim

    def _encode(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor) -> tuple[Tensor, Tensor]:
        freqs, gains = self.code.freqs, self.code.gains / math.sqrt(self.n_sines)
        if self.pooled:  # fused: shared cos / sin for q and k, no (B, T, H, D, 2N) intermediates
            offsets = self.code.offsets
            if torch.compiler.is_compiling() and pos_q is pos_k:  # the fused kernel as one opaque operator
                return fourier_pool_pair(q, k, pos_q, freqs, gains, offsets, int(self.chunk_size or 0))
            return fourier_pool_shared(q, k, pos_q, pos_k, freqs, gains, offsets, None, self.chunk_size)
        q_out = fourier_pool(q, pos_q, freqs, gains, self.code.offsets, None, self.chunk_size, pooled=False)
        k_out = fourier_pool(k, pos_k, freqs, gains, None, None, self.chunk_size, pooled=False)
        return q_out, k_out

    def kernel(self, pos_q: Tensor, pos_k: Tensor) -> Tensor:
        """P_d matrices of P2 eq. (7)–(8) with this module's parameters.

        Parameters
        ----------
        pos_q : Tensor
            Query positions (B, Tq, C).
        pos_k : Tensor
            Key positions (B, Tk, C).

        Returns
        -------
        Tensor
            P_d (B, H, D, Tq, Tk).
        """
        return rff_kernel(pos_q, pos_k, self.code.freqs, self.code.gains, self.code.offsets)

    def kernel_scores(self, q: Tensor, k: Tensor, pos_q: Tensor, pos_k: Tensor | None = None) -> Tensor:
        """Closed form of ``scores``: eq. (7)–(8) if unpooled; with the cross terms if pooled.

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
        if not self.pooled:
            return rff_scores(q, k, self.kernel(pos_q, pos_k))
        code = self.code
        return rff_pooled_scores(q, k, pos_q, pos_k, code.freqs, code.gains, code.offsets)
