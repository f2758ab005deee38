"""Multi-head attention layer: projections -> PE on q, k -> feature map -> attention -> output projection."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from stripes.attention.cache import AttentionCache, KVCache, LinearCache, append_kv, check_cache
from stripes.attention.feature_maps import FeatureMap, RedrawPolicy, build_feature_map
from stripes.attention.linear import LinearAttentionState, linear_attention, linear_attention_step
from stripes.attention.masking import check_key_padding_mask, zero_rows
from stripes.attention.softmax import softmax_attention
from stripes.errors import ConfigError, ModelError
from stripes.pe.base import QKPositionalEncoding, compute_dtype


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` that returns its input untouched in eval mode or at p = 0 without a call
    into torch: the same outputs, less overhead per generated token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) if self.training and self.p > 0 else x


class AttentionLayer(nn.Module):
    """Self-attention with an optional positional encoding (PE) applied to q and k before the feature map.

    ``pe`` follows the ``stripes.pe`` protocol (any module with a ``kind`` attribute works):
    - kind "qk": ``q_out, k_out = pe(q, k, pos_q, pos_k)`` (B, T, H, ``pe.out_dim``); the feature map then
      takes ``pe.out_dim`` inputs (P1/P2 and the SPE code apply the PE before phi);
    - kind "bias": ``pe.bias(pos_q, pos_k)`` (B, H, Tq, Tk) is added to the softmax logits (softmax only);
      if ``pe.bias`` has a ``q`` parameter it also gets the projected queries (B, T, H, D); a bias PE
      with ``pe.fold(q, k, pos_q, pos_k) -> (q', k', bias | None)`` (P3 S-RPE) folds it into q and k;
    - kind "input" (ape, sape) is rejected: add ``pe.embed(pos)`` to the model input instead.
    The PE must be built with the layer's head_dim = d_model / n_heads and n_heads (checked here).
    ``attention`` is "linear" (feature map + chunked linear attention) or "softmax" (SDPA).
    Temperature: a qk PE's ``q_out . k_out`` approximates the PE-enriched q.k of dimension head_dim (P1 eq.
    (4)), so the temperature is always 1/sqrt(head_dim), never 1/sqrt(out_dim): softmax logits are
    q_out.k_out / sqrt(head_dim) and FAVOR+ scales its inputs by head_dim^-1/4 (override with
    ``feature_map_options={"scale": ...}``). ``dropout`` drops attention weights (softmax) or the
    attention output before the output projection (linear, which has no weight matrix).
    ``n_features`` defaults to 2 x the feature map's input dim (FAVOR+); ``redraw``, ``seed`` go to the map.
    Causal FAVOR+ is stabilised with a running maximum of the keys' log scales (see
    :func:`stripes.attention.linear_attention`): causal exactly, finite at large activations.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        pe: Any = None,
        attention: str = "linear",
        feature_map: str = "favor",
        n_features: int | None = None,
        chunk_size: int = 64,
        dropout: float = 0.0,
        seed: int | torch.Generator | None = None,
        causal: bool = True,
        redraw: RedrawPolicy = "fixed",
        eps: float = 1e-6,
        feature_map_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, val in (("d_model", d_model), ("n_heads", n_heads), ("chunk_size", chunk_size)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ConfigError(f"{name} must be a positive int, got {val!r}")
        if d_model % n_heads:
            raise ConfigError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if attention not in ("linear", "softmax"):
            raise ConfigError(f"attention must be 'linear' or 'softmax', got {attention!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.attention, self.causal, self.chunk_size, self.eps = attention, causal, chunk_size, eps
        self.dropout_p = dropout

        kind = getattr(pe, "kind", None) if pe is not None else None
        if pe is not None and kind not in ("qk", "input", "bias"):
            raise ConfigError(f"pe.kind must be 'qk', 'input' or 'bias', got {kind!r}")
        if kind == "input":
            raise ConfigError(
                f"{type(pe).__name__} is an input-level PE: the layer cannot apply it. Add it to the model "
                "input instead (x = x + pe.embed(pos), as stripes.models.Harmonizer does) and build the "
                "layer with pe=None"
            )
        if kind == "bias" and attention != "softmax":
            raise ConfigError("a bias PE (e.g. srpe) needs attention='softmax' (linear has no logits)")
        if kind in ("qk", "bias"):
            for attr, want in (("head_dim", self.head_dim), ("n_heads", n_heads)):
                got = getattr(pe, attr, want)
                if got != want:
                    raise ConfigError(
                        f"the PE was built with {attr}={got} but this layer has {attr}={want} "
                        f"(d_model={d_model}, n_heads={n_heads}): build it with "
                        f"build_pe(..., head_dim={self.head_dim}, n_heads={n_heads})"
                    )
        self.pe_kind = kind
        self.pe = pe
        if self.pe_kind == "qk":
            qk_dim = getattr(pe, "out_dim", None)
            if isinstance(qk_dim, bool) or not isinstance(qk_dim, int) or qk_dim < 1:
                raise ConfigError(f"a qk PE must expose a positive int out_dim, got {qk_dim!r}")
        else:
            qk_dim = self.head_dim
        self.qk_dim = qk_dim
        self._bias_takes_q = False
        # a stripes q/k PE whose forward is the checked encode: the layer's own position check suffices
        self._pe_checked = (
            isinstance(pe, QKPositionalEncoding) and type(pe).forward is QKPositionalEncoding.forward
        )
        if self.pe_kind == "bias":
            try:
                self._bias_takes_q = "q" in inspect.signature(pe.bias).parameters
            except (TypeError, ValueError):
                self._bias_takes_q = False

        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.drop = Dropout(dropout)
        self.feature_map: FeatureMap | None = None
        if attention == "linear":
            options = dict(feature_map_options or {})
            if feature_map == "favor":
                # temperature 1/sqrt(head_dim) whatever the PE's out_dim (see the class docstring)
                options.setdefault("scale", self.head_dim**-0.25)
                # only for direct phi(k, role="key") calls: the layer's keys go through key_features (a
                # running maximum inside linear_attention), whatever this says
                options.setdefault("stabilize_keys", not causal)
            self.feature_map = build_feature_map(
                feature_map, qk_dim, n_features=n_features, redraw=redraw, seed=seed, **options
            )

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        cache: AttentionCache | None = None,
    ) -> torch.Tensor:
        """Self-attention over a batch of sequences.

        Parameters
        ----------
        x : Tensor
            (B, T, d_model) inputs.
        pos : Tensor, optional
            Positions (B, T, C), (1, T, C) or (T, C) (and (B, T) when C = 1), C = ``pe.context_dim``;
            required when the layer has a PE. Values at padded steps are ignored (replaced by 0).
        key_padding_mask : Tensor, optional
            (B, T) bool, True = padding. Padded steps reach no valid output and no gradient, whatever
            ``x`` and ``pos`` hold there (NaN and inf included); their own outputs are 0, and gradients
            arriving at them (even NaN) are dropped.
        cache : LinearCache or KVCache, optional
            From :meth:`init_cache`: the tokens of this call attend to every token the cache has seen and
            to each other (causally), and the cache is updated in place. A prefill (many tokens) and a step
            (one token) are the same call; the outputs equal those of one call on the whole sequence.

        Returns
        -------
        Tensor
            (B, T, d_model).
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
            got = tuple(getattr(x, "shape", ()))
            raise ModelError(f"AttentionLayer expects x (B, T, {self.d_model}), got {got}")
        b, t, _ = x.shape
        check_key_padding_mask(key_padding_mask, b, t)
        x = zero_rows(x, key_padding_mask)  # a select: whatever padded rows hold never enters a sum
        pos = self._positions(pos, b, t, key_padding_mask)
        shape = (b, t, self.n_heads, self.head_dim)
        q = self.q_proj(x).view(shape)
        k = self.k_proj(x).view(shape)
        v = self.v_proj(x).view(shape)
        if self.pe_kind == "qk":  # per token: a token's codes depend on its own position only
            if self._pe_checked and pos is not None and pos.dtype == compute_dtype(q.dtype):
                q, k = self.pe.encode_checked(q, k, pos, pos)  # pos was checked above: not twice a token
            else:
                q, k = self.pe(q, k, pos, pos)
        if cache is None:
            out = self._attend(q, k, v, pos, key_padding_mask)
        else:
            check_cache(cache, self.attention, b)
            out = self._attend_cached(q, k, v, pos, key_padding_mask, cache)
        if self.attention == "linear":
            out = self.drop(out)
        # padded rows output 0 (a select): a NaN gradient arriving there never reaches the parameters
        return zero_rows(self.out_proj(out.reshape(b, t, self.d_model)), key_padding_mask)

    def _positions(
        self, pos: torch.Tensor | None, b: int, t: int, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor | None:
        """pos as (B, T, C) float with padded rows set to 0, or None when the layer has no PE."""
        if self.pe is None:
            return pos
        if pos is None:
            raise ModelError(
                f"this layer's PE ({type(self.pe).__name__}) needs positions pos of shape (B, T, C) = "
                f"({b}, {t}, {getattr(self.pe, 'context_dim', 'C')})"
            )
        from stripes.pe.base import check_positions

        context_dim = getattr(self.pe, "context_dim", None)
        if context_dim is None:  # a duck-typed PE: (B, T, C) of any C
            if not isinstance(pos, torch.Tensor) or pos.dim() != 3 or pos.shape[:2] != (b, t):
                got = tuple(pos.shape) if isinstance(pos, torch.Tensor) else type(pos).__name__
                raise ModelError(f"this PE needs pos of shape (B, T, C) = ({b}, {t}, C), got {got}")
            context_dim = pos.shape[-1]
        if isinstance(pos, torch.Tensor) and key_padding_mask is not None and pos.is_floating_point():
            # sanitise before the PE's check, so only valid rows must be finite
            if tuple(pos.shape[:2]) == (b, t):
                pos = zero_rows(pos, key_padding_mask)
        dtype = pos.dtype if isinstance(pos, torch.Tensor) and pos.is_floating_point() else torch.float32
        return check_positions(pos, b, t, context_dim, "pos", dtype)

    def init_cache(self, batch_size: int) -> AttentionCache:
        """An empty cache for generating ``batch_size`` sequences token by token (causal layers only).

        Linear attention: a :class:`LinearCache` of fixed size; softmax: a growing :class:`KVCache`.
        """
        if not self.causal:
            raise ConfigError("a cache continues a causal sequence; this layer is not causal")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        return LinearCache(batch_size) if self.attention == "linear" else KVCache(batch_size)

    def _attend_cached(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        pos: torch.Tensor | None,
        mask: torch.Tensor | None,
        cache: AttentionCache,
    ) -> torch.Tensor:
        """The new tokens attend to the cache and to each other; the cache takes them in (in place)."""
        if isinstance(cache, LinearCache):
            # no redraw: every step must use the same features
            if q.shape[1] == 1 and mask is None:  # one token: the recurrence itself (what linear_attention
                out, cache.state = self._linear_step(q, k, v, cache.state)  # runs for one token, unchecked)
            else:
                out, cache.state = self._linear(q, k, v, mask, initial_state=cache.state, return_state=True)
            cache.seen += q.shape[1]
            return out
        assert isinstance(cache, KVCache)
        off, t = cache.seen, q.shape[1]
        if mask is None:
            mask = torch.zeros(q.shape[0], t, dtype=torch.bool, device=q.device)
        keep_pos = pos if self.pe_kind == "bias" else None
        append_kv(cache, k, v, keep_pos, mask)
        assert cache.k is not None and cache.v is not None and cache.mask is not None
        # query m (absolute off + m) sees keys n <= off + m
        allowed = torch.ones(t, off + t, dtype=torch.bool, device=q.device).tril(off)
        bias = torch.zeros(1, 1, t, off + t, dtype=q.dtype, device=q.device)
        bias = bias.masked_fill(~allowed, float("-inf"))
        if self.pe_kind == "bias":
            extra = {"q": q} if self._bias_takes_q else {}
            bias = bias + self.pe.bias(pos, cache.pos, **extra).to(q.dtype)
        return softmax_attention(
            q, cache.k, cache.v, causal=False, bias=bias, key_padding_mask=cache.mask,
            dropout_p=0.0, scale=self.head_dim**-0.5,
        )

    def _attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        pos: torch.Tensor | None,
        key_padding_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """q, k (B, T, H, qk_dim), v (B, T, H, head_dim) -> (B, T, H, head_dim)."""
        if self.attention == "softmax":
            bias = None
            if self.pe_kind == "bias" and hasattr(self.pe, "fold"):
                # S-RPE: the bias q W Sin(p_m - p_n) folded into q and k (no (T, T) tensor; pe.fold)
                q, k, bias = self.pe.fold(q, k, pos, pos)
            elif self.pe_kind == "bias":  # content-dependent biases also get q
                bias = self.pe.bias(pos, pos, q=q) if self._bias_takes_q else self.pe.bias(pos, pos)
            return softmax_attention(
                q, k, v, causal=self.causal, bias=bias, key_padding_mask=key_padding_mask,
                dropout_p=self.dropout_p if self.training else 0.0, scale=self.head_dim**-0.5,
            )
        assert self.feature_map is not None
        self.feature_map.maybe_redraw()
        return self._linear(q, k, v, key_padding_mask)

    def _linear_step(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: LinearAttentionState | None
    ) -> tuple[torch.Tensor, LinearAttentionState]:
        """One token (B, 1, H, ·) through the feature maps and :func:`linear_attention_step`: the same
        numbers as :meth:`_linear` on it, without the sequence machinery (generation's hot path)."""
        assert self.feature_map is not None
        phi_k, log_scale = self.feature_map.key_features(k)
        phi_q = self.feature_map(q, role="query")
        out, state = linear_attention_step(
            phi_q[:, 0], phi_k[:, 0], v[:, 0], state, eps=self.eps,
            k_log_scale=None if log_scale is None else log_scale[:, 0],
        )
        return out.unsqueeze(1), state

    def _linear(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                **state: Any) -> Any:
        """Feature maps (keys with their log scale) then :func:`linear_attention`; ``state``: its
        ``initial_state`` / ``return_state``."""
        assert self.feature_map is not None
        phi_k, log_scale = self.feature_map.key_features(k, mask)
        return linear_attention(
            self.feature_map(q, role="query"), phi_k, v, causal=self.causal, chunk_size=self.chunk_size,
            eps=self.eps, key_padding_mask=mask, k_log_scale=log_scale, **state,
        )
