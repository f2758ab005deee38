"""The harmonization model of P1/P2 (docs/papers.md §9.3): a post-LN causal transformer encoder.

x (B, T, 256) melody+bridge -> Linear(256, d) [+ input-level PE] -> L x EncoderBlock -> Linear(d, 128)
logits for the piano roll. Every block holds an :class:`stripes.attention.AttentionLayer` with its own
q/k-level (or bias) PE. The loss is BCE with logits averaged over (batch, time, pitch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from stripes.attention.layer import Dropout
from stripes.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from stripes.attention import ModelCache


def _build_pe(
    name: str, *, head_dim: int, n_heads: int, context_dim: int, d_model: int, options: dict
) -> Any:
    from stripes.pe import build_pe

    try:
        return build_pe(
            name, head_dim=head_dim, n_heads=n_heads, context_dim=context_dim, d_model=d_model, **options
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot build positional encoding {name!r}: {exc}") from exc


class EncoderBlock(nn.Module):
    """Post-LN block: x = LN1(x + drop(attn(x))); x = LN2(x + drop(FFN(x))) (P3 / fast-transformers)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        pe: Any,
        attention: str,
        feature_map: str,
        n_features: int | None,
        chunk_size: int,
        redraw: str | float = "step",
        feature_map_options: dict | None = None,
    ) -> None:
        super().__init__()
        from stripes.attention import AttentionLayer

        kwargs: dict[str, Any] = {
            "pe": pe,
            "attention": attention,
            "feature_map": feature_map,
            "chunk_size": chunk_size,
            "dropout": dropout,
            "redraw": redraw,
        }
        if attention == "linear" and feature_map_options:
            kwargs["feature_map_options"] = dict(feature_map_options)
        if n_features is not None:
            kwargs["n_features"] = n_features
        self.attn = AttentionLayer(d_model, n_heads, **kwargs)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop = Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        cache: Any = None,
    ) -> torch.Tensor:
        """x (B, T, d), pos (B, T, C) -> (B, T, d); ``cache`` is this block's attention cache."""
        x = self.norm1(x + self.drop(self.attn(x, pos, key_padding_mask=key_padding_mask, cache=cache)))
        return self.norm2(x + self.drop(self.ff(x)))


class Harmonizer(nn.Module):
    """Melody (+bridge) -> piano accompaniment, one parallel causal forward pass.

    Args: ``pe`` is a :func:`stripes.pe.build_pe` name (``"nope"`` for none); ``context_dim`` the width C
    of the positions; ``attention`` "linear" or "softmax" (bias PEs such as ``srpe`` need softmax);
    ``context_learner`` a learned map of the positions before every PE (:mod:`stripes.models.context_learner`,
    "none" by default).
    """

    def __init__(
        self,
        *,
        pe: str = "nope",
        context_dim: int = 1,
        d_in: int = 256,
        d_out: int = 128,
        d_model: int = 512,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
        attention: str = "linear",
        feature_map: str = "favor",
        n_features: int | None = None,
        chunk_size: int = 64,
        redraw: str | float = "step",
        share_pe: bool = False,
        pe_options: dict | None = None,
        feature_map_options: dict | None = None,
        context_learner: str = "none",
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ConfigError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.pe_name = pe
        self.context_dim = context_dim
        self.d_in, self.d_out = d_in, d_out
        head_dim = d_model // n_heads
        opts = dict(pe_options or {})

        def make_pe() -> Any:
            return _build_pe(
                pe, head_dim=head_dim, n_heads=n_heads, context_dim=context_dim, d_model=d_model, options=opts
            )

        first = make_pe()
        kind = getattr(first, "kind", None)
        if kind not in ("qk", "input", "bias", None):
            raise ConfigError(f"positional encoding {pe!r} has unknown kind {kind!r}")
        if kind == "bias" and attention != "softmax":
            raise ConfigError(f"positional encoding {pe!r} is a logit bias and needs attention='softmax'")
        self.pe_kind = kind
        self.input_pe = first if kind == "input" else None
        self.in_proj = nn.Linear(d_in, d_model)
        layer_pes: list[Any]
        if kind in ("qk", "bias"):
            layer_pes = [first] * n_layers if share_pe else [first] + [make_pe() for _ in range(n_layers - 1)]
        else:
            layer_pes = [None] * n_layers
        self.blocks = nn.ModuleList(
            EncoderBlock(
                d_model,
                n_heads,
                d_ff,
                dropout,
                layer_pes[i],
                attention,
                feature_map,
                n_features,
                chunk_size,
                redraw,
                feature_map_options if feature_map == "favor" else None,
            )
            for i in range(n_layers)
        )
        self.in_drop = Dropout(dropout)
        self.out_proj = nn.Linear(d_model, d_out)
        # question 2: learned positions pos' = f(pos) for every PE (stripes.models.context_learner). Built
        # last and without drawing from the global RNG, so every other weight (and the training's random
        # stream) equals that of the same seed's model without it; each learner starts as the identity
        from stripes.models.context_learner import build_context_learner

        with torch.random.fork_rng(devices=[]):
            self.context_learner = build_context_learner(context_learner, context_dim)

    def init_cache(self, batch_size: int) -> ModelCache:
        """An empty cache for generating ``batch_size`` sequences step by step (one cache per layer).

        With linear attention every layer's cache has a fixed size (O(1) memory and time per step);
        with softmax attention it is a growing KV cache.
        """
        from stripes.attention import ModelCache

        return ModelCache([block.attn.init_cache(batch_size) for block in self.blocks])

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        cache: ModelCache | None = None,
    ) -> torch.Tensor:
        """Logits of the piano roll.

        Parameters
        ----------
        x : Tensor
            (B, T, d_in) melody (+ bridge) piano roll.
        pos : Tensor
            (B, T, C) float structural positions.
        key_padding_mask : Tensor, optional
            (B, T) bool, True = padding.
        cache : ModelCache, optional
            From :meth:`init_cache`: continue the sequence the cache has seen (prefill and step are the same
            call); the outputs equal those of one call on the whole sequence. Use in eval mode.

        Returns
        -------
        Tensor
            (B, T, d_out) logits.
        """
        if x.dim() != 3 or x.shape[-1] != self.d_in:
            raise ModelError(f"x must be (B, T, {self.d_in}), got {tuple(x.shape)}")
        if pos.dim() != 3 or pos.shape[:2] != x.shape[:2] or pos.shape[-1] != self.context_dim:
            raise ModelError(f"pos must be (B, T, {self.context_dim}) matching x, got {tuple(pos.shape)}")
        if self.context_learner is not None:
            from stripes.models.context_learner import apply_learner

            pos = apply_learner(self.context_learner, pos)
        h = self.in_proj(x)
        if self.input_pe is not None:
            offset = {"offset": cache.seen} if cache is not None and hasattr(self.input_pe, "omega") else {}
            h = h + self.input_pe.embed(pos, **offset).to(h.dtype)
        h = self.in_drop(h)
        layer_caches = cache.layers if cache is not None else [None] * len(self.blocks)
        if len(layer_caches) != len(self.blocks):
            raise ModelError(f"the cache has {len(layer_caches)} layers, the model {len(self.blocks)}")
        for block, layer_cache in zip(self.blocks, layer_caches):
            h = block(h, pos, key_padding_mask=key_padding_mask, cache=layer_cache)
        return self.out_proj(h)

    @staticmethod
    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """BCE with logits, mean over (batch, time, pitch) (P3 code)."""
        from stripes.metrics.bce import bce_with_logits

        return bce_with_logits(logits, y).mean()


def build_model(config: Any, context_dim: int) -> Harmonizer:
    """Harmonizer from :class:`stripes.config.RunConfig` (``task = "melody"``: piano (128) in, melody out)."""
    m = config.model
    return Harmonizer(
        pe=config.pe,
        context_dim=context_dim,
        d_in=128 if getattr(config, "task", "harmonize") == "melody" else 256,
        d_model=m.d_model,
        n_heads=m.n_heads,
        n_layers=m.n_layers,
        d_ff=m.d_ff,
        dropout=m.dropout,
        attention=config.attention,
        feature_map=config.feature_map,
        n_features=m.n_features,
        chunk_size=m.chunk_size,
        redraw=m.redraw,
        share_pe=m.share_pe,
        pe_options=m.pe_options,
        feature_map_options=m.feature_map_options,
        context_learner=getattr(m, "context_learner", "none"),
    )
