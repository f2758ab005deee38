"""softmax_attention (SDPA) against an explicit softmax with bias and masks."""

from __future__ import annotations

import pytest
import torch

from stripes.attention import naive_softmax_attention, softmax_attention
from stripes.errors import ConfigError

explicit_softmax = naive_softmax_attention  # the library's reference (stripes.attention.naive)


def _qkv(b=2, t=11, h=3, d=4, dv=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, t, h, d, generator=g, dtype=torch.float64),
        torch.randn(b, t, h, d, generator=g, dtype=torch.float64),
        torch.randn(b, t, h, dv, generator=g, dtype=torch.float64),
    )


@pytest.mark.parametrize("causal", [True, False])
def test_matches_explicit_softmax(causal):
    q, k, v = _qkv()
    torch.testing.assert_close(softmax_attention(q, k, v, causal=causal), explicit_softmax(q, k, v, causal))


@pytest.mark.parametrize("causal", [True, False])
def test_wider_queries_and_keys_than_values_match_explicit_softmax(causal):
    """q, k wider than v (a PE that widens q, k; S-RPE folded in): v is zero-padded for the fused kernel
    and cut back; outputs and gradients equal the explicit formula."""
    q, k, v = (x.requires_grad_() for x in _qkv(d=7, dv=4))
    out = softmax_attention(q, k, v, causal=causal)
    ref = explicit_softmax(q, k, v, causal)
    assert out.shape == v.shape
    torch.testing.assert_close(out, ref)
    for a, b in zip(torch.autograd.grad(out.sum(), (q, k, v)), torch.autograd.grad(ref.sum(), (q, k, v))):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("bias_shape", [(2, 3, 11, 11), (1, 3, 11, 11), (2, 1, 11, 11)])
def test_bias_and_padding(bias_shape):
    q, k, v = _qkv()
    bias = torch.randn(bias_shape, dtype=torch.float64)
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[0, 8:] = True
    out = softmax_attention(q, k, v, causal=True, bias=bias, key_padding_mask=mask)
    torch.testing.assert_close(out, explicit_softmax(q, k, v, True, bias, mask))
    # the bias really matters
    assert not torch.allclose(out, softmax_attention(q, k, v, causal=True, key_padding_mask=mask))


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = _qkv()
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[1, :3] = True  # left padding: causal queries 0..2 of batch 1 see nothing
    out = softmax_attention(q, k, v, causal=True, key_padding_mask=mask)
    assert torch.isfinite(out).all()
    assert (out[1, :3] == 0).all()
    torch.testing.assert_close(out, explicit_softmax(q, k, v, True, None, mask))


def test_gradients_match():
    q, k, v = (x.requires_grad_() for x in _qkv(t=6))
    bias = torch.randn(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    g1 = torch.autograd.grad(softmax_attention(q, k, v, bias=bias).square().sum(), (q, k, v, bias))
    g2 = torch.autograd.grad(explicit_softmax(q, k, v, True, bias).square().sum(), (q, k, v, bias))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_bad_shapes():
    q, k, v = _qkv()
    with pytest.raises(ConfigError, match="B, T, H, D"):
        softmax_attention(q[0], k, v)
    with pytest.raises(ConfigError, match="bias"):
        softmax_attention(q, k, v, bias=torch.zeros(2, 3, 11, 10, dtype=torch.float64))
    with pytest.raises(ConfigError, match="key_padding_mask"):
        softmax_attention(q, k, v, key_padding_mask=torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(ConfigError, match="as many queries"):
        softmax_attention(q[:, :4], k, v)
