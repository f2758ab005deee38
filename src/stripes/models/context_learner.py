"""Learned contexts (question 2 of docs/results.md, "can a learned structure beat the hand-made chroma?").

A context learner maps the hand-made positions (BIN: the 12-d binary chroma of the chord at each tick) to
learned positions of the same width, ``pos' = f_θ(pos)``, trained end to end with the model; every layer's
PE (RoPEPool, RoPE(C), ...) then rotates by ``pos'`` instead of ``pos``. Each learner starts as the identity,
so a model at step 0 equals its BIN twin (same seed, same initial weights elsewhere) and any difference
after training is what the learner found:

- ``linear``: ``pos' = W pos + b`` with W = I and b = 0 at the start (C² + C parameters: 156 for BIN).
- ``mlp``: ``pos' = pos + W₂ tanh(W₁ pos + b₁) + b₂``, a residual MLP of width ``MLP_HIDDEN`` whose output
  layer starts at zero (C·h + h + h·C + C parameters: 812 for BIN).
- ``chord_embedding``: ``pos' = pos + E[chord]``, one free 12-d vector per chord symbol, starting at zero.
  The chord symbol is read from the positions themselves: the chroma's bit mask (4096 rows; the data has
  166 distinct chroma vectors, so at most 166 × 12 = 1,992 parameters ever move). The chord id of the
  prepared cache also knows the root, which only separates chords with one chroma (C6 and Am7); the data has
  no bass note, so a (root, quality, bass) embedding is not possible, and reading the chroma keeps the
  context of the run BIN (the same windows, run names and data pipeline as the BIN runs it is compared with).

The extra parameters are tiny beside the model's (the ``cpu`` profile's harmonizer has about 0.3 M).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stripes.errors import ConfigError, ModelError

LEARNERS = ("none", "linear", "mlp", "chord_embedding")
MLP_HIDDEN = 32
N_CHROMA_MASKS = 1 << 12


class LinearContext(nn.Module):
    """``pos' = W pos + b``, W (C, C) initialised to the identity and b to zero.

    Parameters
    ----------
    context_dim : int
        C, the width of the positions (12 for BIN).
    """

    def __init__(self, context_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(context_dim, context_dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(context_dim))
            self.proj.bias.zero_()

    def forward(self, pos: Tensor) -> Tensor:
        """(B, T, C) positions -> (B, T, C) learned positions."""
        return self.proj(pos)


class MLPContext(nn.Module):
    """``pos' = pos + W₂ tanh(W₁ pos + b₁) + b₂``, W₂ and b₂ zero at the start (the identity).

    Parameters
    ----------
    context_dim : int
        C.
    hidden : int
        Width h of the hidden layer.
    """

    def __init__(self, context_dim: int, hidden: int = MLP_HIDDEN) -> None:
        super().__init__()
        self.inner = nn.Linear(context_dim, hidden)
        self.outer = nn.Linear(hidden, context_dim)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)

    def forward(self, pos: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        return pos + self.outer(torch.tanh(self.inner(pos)))


class ChordEmbedding(nn.Module):
    """``pos' = pos + E[mask(pos)]``: one learned vector per chord chroma, zero at the start.

    The index of a tick is the bit mask of its binary chroma (bit i = pitch class i active, ``pos > 0.5``),
    so no chord (all zeros) has its own row too. Only the rows of chromas that occur receive gradients.

    Parameters
    ----------
    context_dim : int
        Must be 12 (a BIN-family context).
    """

    def __init__(self, context_dim: int) -> None:
        super().__init__()
        if context_dim != 12:
            raise ConfigError(f"chord_embedding reads a 12-d chroma context (BIN), got width {context_dim}")
        self.table = nn.Embedding(N_CHROMA_MASKS, 12)
        nn.init.zeros_(self.table.weight)
        self.register_buffer("bits", 1 << torch.arange(12), persistent=False)

    def index(self, pos: Tensor) -> Tensor:
        """(B, T, 12) chroma -> (B, T) int64 chord index (the chroma's bit mask)."""
        return ((pos > 0.5).long() * self.bits.to(pos.device)).sum(-1)

    def forward(self, pos: Tensor) -> Tensor:
        """(B, T, 12) -> (B, T, 12)."""
        return pos + self.table(self.index(pos)).to(pos.dtype)


def build_context_learner(kind: str, context_dim: int) -> nn.Module | None:
    """The learner named ``kind`` (``LEARNERS``) for positions of width ``context_dim``; None for "none".

    Raises
    ------
    ConfigError
        For an unknown kind, or ``chord_embedding`` on a context that is not 12 wide.
    """
    if kind == "none":
        return None
    if kind == "linear":
        return LinearContext(context_dim)
    if kind == "mlp":
        return MLPContext(context_dim)
    if kind == "chord_embedding":
        return ChordEmbedding(context_dim)
    raise ConfigError(f"unknown context learner {kind!r}; choose among {', '.join(LEARNERS)}")


def learner_parameters(module: nn.Module | None, used_masks: Tensor | None = None) -> dict[str, int]:
    """Parameter count of a learner: ``{"total": n, "trainable": n_moving}``.

    For ``chord_embedding`` ``trainable`` counts the rows that can move: those of ``used_masks`` (the chroma
    masks of the data, e.g. 166 of them) when given, else every row.
    """
    if module is None:
        return {"total": 0, "trainable": 0}
    total = sum(p.numel() for p in module.parameters())
    if isinstance(module, ChordEmbedding) and used_masks is not None:
        return {"total": total, "trainable": int(torch.unique(used_masks).numel()) * 12}
    return {"total": total, "trainable": total}


def apply_learner(module: nn.Module | None, pos: Tensor) -> Tensor:
    """``module(pos)`` with a shape check (the PE needs (B, T, C) back); ``pos`` itself without a learner."""
    if module is None:
        return pos
    out = module(pos)
    if out.shape != pos.shape:
        raise ModelError(f"context learner changed the positions' shape {tuple(pos.shape)} -> "
                         f"{tuple(out.shape)}")
    return out
