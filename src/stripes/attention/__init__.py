"""Efficient attention: feature maps, chunked causal / non-causal linear attention, recurrent step,
softmax (SDPA) path and :class:`AttentionLayer`. Shapes: q, k, v (B, T, H, D); positions (B, T, C)."""

from stripes.attention.cache import AttentionCache, KVCache, LinearCache, ModelCache
from stripes.attention.feature_maps import (
    FEATURE_MAPS,
    EluFeatureMap,
    FavorFeatureMap,
    FeatureMap,
    IdentityFeatureMap,
    ReluFeatureMap,
    build_feature_map,
    orthogonal_gaussian_matrix,
)
from stripes.attention.layer import AttentionLayer
from stripes.attention.linear import (
    LinearAttentionState,
    init_linear_state,
    linear_attention,
    linear_attention_step,
)
from stripes.attention.naive import cumsum_linear_attention, naive_linear_attention, naive_softmax_attention
from stripes.attention.softmax import softmax_attention

__all__ = [
    "FEATURE_MAPS",
    "AttentionCache",
    "AttentionLayer",
    "KVCache",
    "LinearCache",
    "ModelCache",
    "EluFeatureMap",
    "FavorFeatureMap",
    "FeatureMap",
    "IdentityFeatureMap",
    "LinearAttentionState",
    "ReluFeatureMap",
    "build_feature_map",
    "cumsum_linear_attention",
    "init_linear_state",
    "linear_attention",
    "linear_attention_step",
    "naive_linear_attention",
    "naive_softmax_attention",
    "orthogonal_gaussian_matrix",
    "softmax_attention",
]
