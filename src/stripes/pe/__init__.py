"""Positional encodings behind one protocol (see docs/architecture.md and docs/pe.md).

``build_pe(name, *, head_dim, n_heads, context_dim=1, d_model=None, **options)`` builds one PE;
``list_pes()`` maps each name to a one-line description.

- q/k PEs (``pe.kind == "qk"``): ``q_out, k_out = pe(q, k, pos_q, pos_k=None)``, q, k (B, T, H, D),
  pos (B, T, C) → (B, T, H, pe.out_dim); ``pe.scores(...)`` → (B, H, Tq, Tk).
- input PEs (``"input"``): ``pe.embed(pos)`` → (B, T, d_model).
- bias PEs (``"bias"``): ``pe.bias(pos_q, pos_k, q=None)`` → (B, H, Tq, Tk).
"""

from __future__ import annotations

import inspect
from typing import Any

from stripes.errors import ConfigError
from stripes.pe.ape import APE, SAPE
from stripes.pe.base import PEInputError, PETypeError, PositionalEncoding, QKPositionalEncoding, as_positions
from stripes.pe.fstripe import FStripe, rff_kernel, rff_pooled_scores, rff_scores
from stripes.pe.fstripe1 import FStripe1, fstripe1_kernel, fstripe1_pooled_kernel
from stripes.pe.nope import NoPE
from stripes.pe.rope import RoPE, rope_kernel
from stripes.pe.ropepool import RoPEPool, ropepool_kernel
from stripes.pe.sff import SPE, FStripeSFF
from stripes.pe.srpe import SRPE

_REGISTRY: dict[str, type[PositionalEncoding]] = {
    "nope": NoPE,
    "rope": RoPE,
    "ropepool": RoPEPool,
    "fstripe1": FStripe1,
    "fstripe": FStripe,
    "fstripe_sff": FStripeSFF,
    "spe": SPE,
    "ape": APE,
    "sape": SAPE,
    "srpe": SRPE,
}

__all__ = [
    "APE",
    "SAPE",
    "SPE",
    "SRPE",
    "FStripe",
    "FStripe1",
    "FStripeSFF",
    "NoPE",
    "PEInputError",
    "PETypeError",
    "PositionalEncoding",
    "QKPositionalEncoding",
    "as_positions",
    "RoPE",
    "RoPEPool",
    "build_pe",
    "fstripe1_kernel",
    "fstripe1_pooled_kernel",
    "list_pes",
    "rff_kernel",
    "rff_pooled_scores",
    "rff_scores",
    "rope_kernel",
    "ropepool_kernel",
]


def list_pes() -> dict[str, str]:
    """Name → one-line description of every registered PE."""
    return {name: cls.description for name, cls in _REGISTRY.items()}


def build_pe(
    name: str,
    *,
    head_dim: int,
    n_heads: int,
    context_dim: int = 1,
    d_model: int | None = None,
    **options: Any,
) -> PositionalEncoding:
    """Build the positional encoding ``name``; unknown names or options raise ConfigError.

    Parameters
    ----------
    name : str
        A registered name (``stripes pe list``): nope, rope, ropepool, fstripe1, fstripe, fstripe_sff,
        spe, ape, sape, srpe, or the aliases rope_a, rope_b, rope_c. Note: ``"rope"`` is variant C
        (learnable per-head frequencies, P1's best); textbook RoPE with fixed frequencies is ``"rope_a"``.
    head_dim, n_heads : int
        D and H of the attention the PE serves (must match the layer: d_model / n_heads).
    context_dim : int
        C, the width of the positions (1 for TIME/REP/KEY, 12 for BIN chroma).
    d_model : int, optional
        Model width, needed by input-level PEs (ape, sape) and srpe.
    **options
        The PE's own options (``stripes pe list`` shows them with their defaults).

    Returns
    -------
    PositionalEncoding
        ``pe.kind`` says how to use it: "qk" (``pe(q, k, pos)`` and ``pe.out_dim``), "input"
        (``pe.embed(pos)`` added to the model input) or "bias" (``pe.bias(pos_q, pos_k)``, softmax only).

    RoPE variants may also be named ``rope_a``, ``rope_b``, ``rope_c`` (same as ``rope`` with ``variant=``).
    """
    key = str(name).lower()
    if key in ("rope_a", "rope_b", "rope_c"):
        if "variant" in options:
            raise ConfigError(f"{name} fixes the RoPE variant; do not pass variant=")
        options["variant"] = key[-1].upper()
        key = "rope"
    cls = _REGISTRY.get(key)
    if cls is None:
        raise ConfigError(f"unknown positional encoding {name!r}; choose from {', '.join(_REGISTRY)}")
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(options) - set(params) - {"self"})
    if unknown:
        allowed = sorted(
            p for p in params if p not in ("self", "head_dim", "n_heads", "context_dim", "d_model")
        )
        raise ConfigError(f"unknown option(s) {unknown} for PE {key!r}; allowed: {allowed}")
    if cls in (APE, SAPE):
        return cls(d_model, context_dim=context_dim, **options)
    kwargs: dict[str, Any] = dict(head_dim=head_dim, n_heads=n_heads, context_dim=context_dim, **options)
    if "d_model" in params:
        kwargs["d_model"] = d_model
    try:
        return cls(**kwargs)
    except TypeError as exc:  # e.g. a wrong option type caught by the constructor
        raise ConfigError(f"bad options for PE {key!r}: {exc}") from exc
