"""Input-level PEs (``kind = "input"``): ``embed(pos) -> (B, T, d_model)``, added to the input projection.

- ``ape``: Vaswani sinusoidal PE of the step index t = 0..T−1 (labels are ignored):
  PE[t, 2i] = sin(t·base^(−2i/d)), PE[t, 2i+1] = cos(t·base^(−2i/d)).
- ``sape`` (P3 S S-APE, [C3] ``create_angles``): Σ_c Sin_{base_c}(p[c]) over the C label columns, with
  ω_j = base^(−2⌊(j+1)/2⌋/d), sin for even j and cos for odd j. A run config gets P3's base of each
  context by name (melody 7920, chord 10001, phrase 11339: :func:`p3_bases`, filled in by
  :func:`stripes.config.canonicalize`); built directly without ``bases``, the module cycles P3's four
  bases (7920, 9919, 10001, 11339) over the columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from stripes.errors import ConfigError
from stripes.pe.base import PEInputError, PositionalEncoding, check_positions, compute_dtype

P3_BASES = (7920.0, 9919.0, 10001.0, 11339.0)  # P3's order: melody, tempo, chord, sections
# P3's base per label (docs/papers.md §7); our contexts have no tempo column. Other contexts: Vaswani's 10000.
P3_BASE_BY_CONTEXT = {"melody": 7920.0, "tempo": 9919.0, "chord": 10001.0, "phrase": 11339.0}


def p3_bases(contexts: Sequence[str]) -> list[float]:
    """One base per context column, by context name (P3's for melody, chord, phrase; 10000 otherwise; a
    12-column context such as BIN repeats its base)."""
    from stripes.data.contexts import CONTEXT_WIDTH

    return [P3_BASE_BY_CONTEXT.get(c, 10000.0) for c in contexts for _ in range(CONTEXT_WIDTH.get(c, 1))]


def vaswani_frequencies(d_model: int, base: float = 10000.0) -> Tensor:
    """ω (d_model,) with ω_{2i} = ω_{2i+1} = base^(−2i/d); used with sin on even, cos on odd entries."""
    j = torch.arange(d_model, dtype=torch.float64)
    return base ** (-2 * torch.div(j, 2, rounding_mode="floor") / d_model)


def p3_frequencies(d_model: int, base: float) -> Tensor:
    """[C3] create_angles: ω_j = base^(−2⌊(j+1)/2⌋/d), j = 0..d−1, (d_model,)."""
    j = torch.arange(d_model, dtype=torch.float64)
    return base ** (-2 * torch.div(j + 1, 2, rounding_mode="floor") / d_model)


def sinusoid(x: Tensor, omega: Tensor) -> Tensor:
    """x (...,) → (..., d): sin(x ω_j) for even j, cos(x ω_j) for odd j."""
    arg = x.unsqueeze(-1) * omega.to(x.dtype)
    even = (torch.arange(omega.shape[0], device=x.device) % 2) == 0
    return torch.where(even, torch.sin(arg), torch.cos(arg))


def check_d_model(d_model: int | None, name: str) -> int:
    if d_model is None or isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 2:
        raise ConfigError(f"{name} needs d_model (a positive integer >= 2), got {d_model!r}")
    return d_model


def resolve_bases(bases: Sequence[float] | None, context_dim: int) -> list[float]:
    if bases is None:
        return [P3_BASES[c % len(P3_BASES)] for c in range(context_dim)]
    bases = [float(b) for b in bases]
    if len(bases) != context_dim or any(not b > 1 for b in bases):
        raise ConfigError(f"bases must be {context_dim} numbers > 1 (one per context column), got {bases}")
    return bases


class InputPositionalEncoding(PositionalEncoding):
    """Base class of input-level PEs."""

    kind = "input"
    stochastic = False
    description = ""

    def __init__(self, d_model: int, context_dim: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.context_dim = context_dim

    def _check(self, pos: Tensor) -> Tensor:
        if not isinstance(pos, Tensor) or pos.dim() not in (2, 3):
            raise PEInputError(f"pos must be a (B, T, C) tensor, got {getattr(pos, 'shape', pos)!r}")
        # bf16/fp16 labels would be rounded (bf16 is exact for integers up to 256 only): float32 at least
        dtype = compute_dtype(pos.dtype) if pos.is_floating_point() else torch.get_default_dtype()
        return check_positions(pos, pos.shape[0], pos.shape[1], self.context_dim, "pos", dtype)

    def forward(self, pos: Tensor) -> Tensor:
        return self.embed(pos)

    def embed(self, pos: Tensor) -> Tensor:
        raise NotImplementedError


class APE(InputPositionalEncoding):
    """Sinusoidal absolute PE (Vaswani et al. 2017) of the step index: pos (B, T, C) → (B, T, d_model).

    Input-level (``kind == "input"``): the model adds ``pe.embed(pos)`` to its input projection, so it
    works with any attention. The label values are ignored; only the step index t = 0..T−1 is encoded,
    PE[t, 2i] = sin(t·base^(−2i/d)), PE[t, 2i+1] = cos(t·base^(−2i/d)). See docs/pe.md.

    Parameters
    ----------
    d_model : int
        Model width d (≥ 2), the width of the embedding; required.
    context_dim : int, default 1
        C, the width of the positions it is given (checked, otherwise unused).
    base : float, default 10000.0
        Base of the sinusoid frequencies.
    """

    description = "APE (Vaswani): sinusoidal embedding of the step index added to the input"

    def __init__(self, d_model: int, context_dim: int = 1, base: float = 10000.0) -> None:
        """Build the APE; the parameters are described in the class docstring."""
        super().__init__(check_d_model(d_model, "ape"), context_dim)
        self.register_buffer("omega", vaswani_frequencies(d_model, float(base)).float(), persistent=False)

    def embed(self, pos: Tensor, offset: int = 0) -> Tensor:
        """The sinusoidal table of the step index, repeated over the batch.

        Parameters
        ----------
        pos : Tensor
            Positions (B, T, C) (or (B, T) when C = 1); only its shape is used.
        offset : int, default 0
            Index of the first step (a cached generation continues at the number of steps seen).

        Returns
        -------
        Tensor
            Embedding (B, T, d_model), to add to the input projection.
        """
        pos = self._check(pos)
        t = torch.arange(offset, offset + pos.shape[1], device=pos.device, dtype=pos.dtype)
        return sinusoid(t, self.omega).unsqueeze(0).expand(pos.shape[0], -1, -1)


class SAPE(InputPositionalEncoding):
    """P3's sinusoidal structure APE (S S-APE): Σ_c Sin_{base_c}(label_c), pos (B, T, C) → (B, T, d_model).

    Input-level (``kind == "input"``): the model adds ``pe.embed(pos)`` to its input projection. Each
    context column c gets P3's sinusoid (``create_angles``: ω_j = base_c^(−2⌊(j+1)/2⌋/d), sin for even j,
    cos for odd j) of its label value. See docs/pe.md and docs/papers.md §7.

    Parameters
    ----------
    d_model : int
        Model width d (≥ 2), the width of the embedding; required.
    context_dim : int, default 1
        C, the number of label columns.
    bases : sequence of float or None, default None
        One base (> 1) per column. ``None`` cycles P3's four bases (7920, 9919, 10001, 11339); a run
        config fills in P3's base of each context by name (:func:`p3_bases`).
    """

    description = "S-APE (P3): sum of sinusoidal embeddings of the structure labels added to the input"

    def __init__(self, d_model: int, context_dim: int = 1, bases: Sequence[float] | None = None) -> None:
        """Build the SAPE; the parameters are described in the class docstring."""
        super().__init__(check_d_model(d_model, "sape"), context_dim)
        self.bases = tuple(resolve_bases(bases, context_dim))
        omegas = torch.stack([p3_frequencies(d_model, b) for b in self.bases])
        self.register_buffer("omegas", omegas.float(), persistent=False)  # (C, d_model)

    def embed(self, pos: Tensor) -> Tensor:
        """Sum over the columns of the sinusoidal embedding of each label.

        Parameters
        ----------
        pos : Tensor
            Positions (B, T, C) (or (B, T) when C = 1); label values, used as they are.

        Returns
        -------
        Tensor
            Embedding (B, T, d_model), to add to the input projection.
        """
        pos = self._check(pos)
        return sum(sinusoid(pos[..., c], self.omegas[c]) for c in range(self.context_dim))
