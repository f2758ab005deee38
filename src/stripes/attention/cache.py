"""Caches for generating token by token: what an :class:`AttentionLayer` keeps between calls.

- :class:`LinearCache` (linear attention): the fixed-size state of :func:`linear_attention`, s (B, H, M, Dv),
  z (B, H, M) and, with FAVOR+, the running log scale (B, H). Its size never changes, however many tokens
  it has seen: O(1) time and memory per new token.
- :class:`KVCache` (softmax attention): the keys after the PE, the values, the positions and the padding mask
  of every token seen so far. It grows by one row per token (the usual KV cache, the comparison).

Both are filled by calling the layer with ``cache=``: a prefill (many tokens) and a step (one token) are the
same call. A model passes one :class:`ModelCache` (a list of layer caches) through its layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from stripes.attention.linear import LinearAttentionState
from stripes.errors import ModelError


@dataclass
class LinearCache:
    """State of causal linear attention after ``seen`` tokens (None before the first call).

    Attributes
    ----------
    batch_size : int
        B; every call must use it.
    state : LinearAttentionState or None
        s (B, H, M, Dv), z (B, H, M), log_scale (B, H) or None.
    seen : int
        Tokens fed so far (padding included).
    """

    batch_size: int
    state: LinearAttentionState | None = None
    seen: int = 0

    def nbytes(self) -> int:
        """Bytes held by the cache's tensors (constant once the first token is in)."""
        if self.state is None:
            return 0
        return sum(t.numel() * t.element_size() for t in self.state if t is not None)


@dataclass
class KVCache:
    """Keys (after the PE), values, positions and padding of the tokens seen (softmax attention).

    Attributes
    ----------
    batch_size : int
        B.
    k, v : Tensor or None
        (B, T_seen, H, qk_dim) and (B, T_seen, H, head_dim).
    pos : Tensor or None
        (B, T_seen, C) positions (for bias PEs such as S-RPE, which compare every pair).
    mask : Tensor or None
        (B, T_seen) bool, True = padding.
    """

    batch_size: int
    k: torch.Tensor | None = None
    v: torch.Tensor | None = None
    pos: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    @property
    def seen(self) -> int:
        return 0 if self.k is None else self.k.shape[1]

    def nbytes(self) -> int:
        """Bytes held by the cache's tensors (grows with every token)."""
        held = (self.k, self.v, self.pos, self.mask)
        return sum(t.numel() * t.element_size() for t in held if t is not None)


AttentionCache = LinearCache | KVCache


@dataclass
class ModelCache:
    """One cache per attention layer of a model, in layer order; ``seen`` tokens so far."""

    layers: list[AttentionCache] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.layers[0].seen if self.layers else 0

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.layers)


def check_cache(cache: object, attention: str, batch: int) -> None:
    """Raise ModelError unless ``cache`` is the kind this layer fills, for this batch size."""
    want = LinearCache if attention == "linear" else KVCache
    if not isinstance(cache, want):
        raise ModelError(
            f"a {attention} attention layer needs a {want.__name__} (from layer.init_cache(batch_size)), "
            f"got {type(cache).__name__}"
        )
    if cache.batch_size != batch:
        raise ModelError(f"the cache was made for batch size {cache.batch_size}, got a batch of {batch}")


def append_kv(
    cache: KVCache, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor | None, mask: torch.Tensor
) -> None:
    """Append the new tokens' keys, values, positions and padding mask to ``cache`` (in place)."""

    def cat(old: torch.Tensor | None, new: torch.Tensor | None) -> torch.Tensor | None:
        if new is None:
            return old
        return new if old is None else torch.cat([old, new.to(old.dtype)], dim=1)

    cache.k, cache.v = cat(cache.k, k), cat(cache.v, v)
    cache.pos, cache.mask = cat(cache.pos, pos), cat(cache.mask, mask)
