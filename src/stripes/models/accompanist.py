"""An autoregressive accompaniment model: the piano sampled tick by tick, notes with onsets and durations.

At tick t the model reads the melody (+ bridge) at t, the structural positions at t (BIN: the chroma of the
chord sounding at t, so a note played over C has C's chroma as its position) and the accompaniment it has
produced before t: the piano's onsets and sounding pitches at t - 1. It outputs the distribution of the
accompaniment at t as three heads on the same causal backbone as :class:`Harmonizer` (any PE, linear or
softmax attention):

- ``count``: how many notes start at t, a categorical over 0..K_MAX (K_MAX = 8; more are clipped);
- ``onset``: which pitches start, a categorical over the 128 pitches (a softmax: the pitches compete, so
  the mass concentrates on a few chord tones instead of 128 small independent probabilities); the K
  pitches of a tick are drawn jointly, without replacement (Plackett-Luce, by the Gumbel-top-k trick);
- ``hold``: for each pitch sounding at t - 1 and not struck again, whether it keeps sounding (Bernoulli).

So repeated notes stay separate notes (a new onset) and note lengths come from the hold decisions.

The score of a piano roll (teacher-forced, one parallel pass) is, per tick, in nats:
``-log P(count) - sum over the onsets of log softmax(onset)[p] - sum over the held-or-released pitches of
log P(hold)``, with P at temperature 1 (:meth:`Accompanist.score`). Generation
(:mod:`stripes.models.sampling`) accumulates the same terms step by step through a cache, so the
likelihood of a sampled sequence is the same either way (tested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from stripes.errors import ModelError

if TYPE_CHECKING:
    from stripes.attention import ModelCache

K_MAX = 8
N_PITCH = 128


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """(B, T, P) → the same rows one tick later: out[:, t] = x[:, t - 1], out[:, 0] = 0."""
    return F.pad(x, (0, 0, 1, 0))[:, :-1]


class Accompanist(nn.Module):
    """Piano accompaniment, one tick at a time (see the module docstring).

    Parameters
    ----------
    pos_input : bool
        Also feed the positions as input features (for BIN: the chroma of the chord at t, so the model
        knows the absolute chord and not only what its PE's kernel compares). Off for the PE studies.
    **backbone
        Arguments of :class:`stripes.models.Harmonizer` (pe, context_dim, d_model, n_heads, n_layers, d_ff,
        dropout, attention, feature_map, n_features, chunk_size, redraw, share_pe, pe_options,
        feature_map_options); ``d_in`` and ``d_out`` are set here.
    """

    def __init__(self, pos_input: bool = False, **backbone: Any) -> None:
        super().__init__()
        from stripes.models.harmonizer import Harmonizer

        for key in ("d_in", "d_out"):
            if key in backbone:
                raise ModelError(f"Accompanist sets {key} itself")
        self.pos_input = bool(pos_input)
        context_dim = int(backbone.get("context_dim", 1))
        # inputs: melody + bridge (256), piano onsets and sounding pitches at t - 1 (128 + 128) and, with
        # pos_input, the positions themselves (BIN: the chord's chroma at t)
        d_in = 256 + 2 * N_PITCH + (context_dim if self.pos_input else 0)
        self.backbone = Harmonizer(d_in=d_in, d_out=N_PITCH + (K_MAX + 1) + N_PITCH, **backbone)
        self.context_dim = self.backbone.context_dim

    def init_cache(self, batch_size: int) -> ModelCache:
        """An empty cache for sampling ``batch_size`` accompaniments tick by tick."""
        return self.backbone.init_cache(batch_size)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        onset_prev: torch.Tensor,
        frame_prev: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        cache: ModelCache | None = None,
    ) -> dict[str, torch.Tensor]:
        """The three heads' logits.

        Parameters
        ----------
        x : Tensor
            (B, T, 256) melody + bridge at each tick.
        pos : Tensor
            (B, T, C) structural positions of each tick.
        onset_prev, frame_prev : Tensor
            (B, T, 128) the piano's onsets and sounding pitches one tick earlier (:func:`shift_right` of
            the rolls in training; the previous sampled tick in generation).
        key_padding_mask : Tensor, optional
            (B, T) bool, True = padding.
        cache : ModelCache, optional
            Continue a sequence (generation); see :meth:`Harmonizer.forward`.

        Returns
        -------
        dict
            ``onset`` (B, T, 128), ``count`` (B, T, K_MAX + 1), ``hold`` (B, T, 128) logits.
        """
        if onset_prev.shape != frame_prev.shape or onset_prev.shape[:2] != x.shape[:2]:
            raise ModelError(
                f"onset_prev and frame_prev must be (B, T, 128) like x, got {tuple(onset_prev.shape)}, "
                f"{tuple(frame_prev.shape)} for x {tuple(x.shape)}"
            )
        parts = [x, onset_prev.to(x.dtype), frame_prev.to(x.dtype)]
        if self.pos_input:
            parts.append(pos.to(x.dtype))
        h = torch.cat(parts, dim=-1)
        out = self.backbone(h, pos, key_padding_mask=key_padding_mask, cache=cache)
        onset, count, hold = out.split([N_PITCH, K_MAX + 1, N_PITCH], dim=-1)
        return {"onset": onset, "count": count, "hold": hold}

    def teacher_forced(
        self, x: torch.Tensor, pos: torch.Tensor, onset: torch.Tensor, frame: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Logits for every tick of the given piano rolls (B, T, 128), in one parallel pass."""
        return self(x, pos, shift_right(onset), shift_right(frame), key_padding_mask)

    @staticmethod
    def score(
        logits: dict[str, torch.Tensor], onset: torch.Tensor, frame: torch.Tensor, frame_prev: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Negative log-likelihood terms per tick (B, T), in nats, at temperature 1.

        ``onset``, ``frame``: the piano at each tick (B, T, 128) binary; ``frame_prev``: sounding at t - 1.
        Returns ``count``, ``onset``, ``hold`` and their sum ``nll``.
        """
        on = onset.to(logits["onset"].dtype)
        k = on.sum(-1).clamp(max=K_MAX).long()
        count = F.cross_entropy(logits["count"].transpose(1, 2), k, reduction="none")
        onset_nll = -(F.log_softmax(logits["onset"], dim=-1) * on).sum(-1)
        mask = frame_prev.to(on.dtype) * (1.0 - on)  # sounding before and not struck again
        held = frame.to(on.dtype) * mask
        hold = (F.binary_cross_entropy_with_logits(logits["hold"], held, reduction="none") * mask).sum(-1)
        return {"count": count, "onset": onset_nll, "hold": hold, "nll": count + onset_nll + hold}

    @staticmethod
    def loss(scores: dict[str, torch.Tensor], key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean NLL per tick over the valid ticks."""
        nll = scores["nll"]
        if key_padding_mask is None:
            return nll.mean()
        valid = (~key_padding_mask).to(nll.dtype)
        return (torch.where(key_padding_mask, 0.0, nll) * valid).sum() / valid.sum().clamp_min(1.0)


def build_accompanist(config: Any, context_dim: int) -> Accompanist:
    """Accompanist from a :class:`stripes.config.RunConfig` (the same backbone settings as the Harmonizer)."""
    m = config.model
    return Accompanist(
        pos_input=m.pos_input, pe=config.pe, context_dim=context_dim, d_model=m.d_model, n_heads=m.n_heads,
        n_layers=m.n_layers,
        d_ff=m.d_ff, dropout=m.dropout, attention=config.attention, feature_map=config.feature_map,
        n_features=m.n_features, chunk_size=m.chunk_size, redraw=m.redraw, share_pe=m.share_pe,
        pe_options=m.pe_options, feature_map_options=m.feature_map_options,
        context_learner=getattr(m, "context_learner", "none"),
    )
