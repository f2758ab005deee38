"""softmax_attention (SDPA) against an explicit softmax with bias and masks."""

from __future__ import annotations

import pytest
import torch

from stripes.attention import naive_softmax_attention, softmax_attention
from stripes.attention import softmax as softmax_mod
from stripes.attention.softmax import causal_blocks_attention
from stripes.errors import ModelError

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
    with pytest.raises(ModelError, match="B, T, H, D"):
        softmax_attention(q[0], k, v)
    with pytest.raises(ModelError, match="bias"):
        softmax_attention(q, k, v, bias=torch.zeros(2, 3, 11, 10, dtype=torch.float64))
    with pytest.raises(ModelError, match="key_padding_mask"):
        softmax_attention(q, k, v, key_padding_mask=torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(ModelError, match="as many queries"):
        softmax_attention(q[:, :4], k, v)


# ---- the CPU training path: causal attention with dropout, one query block at a time ----------------------

@pytest.mark.parametrize("with_mask", [False, True])
def test_causal_blocks_equal_explicit_softmax_outputs_and_gradients(with_mask):
    """Without dropout the block-by-block path is the causal softmax formula (bias and padding included)."""
    q, k, v = (x.requires_grad_() for x in _qkv(t=37))
    bias = mask = None
    extra = None
    if with_mask:
        bias = torch.randn(2, 3, 37, 37, dtype=torch.float64)
        mask = torch.zeros(2, 37, dtype=torch.bool)
        mask[0, 30:] = True
        allowed = torch.ones(37, 37, dtype=torch.bool).tril() & ~mask[:, None, None, :]
        extra = bias.masked_fill(~allowed, float("-inf"))
    out = causal_blocks_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), extra, block=8)
    out = out.transpose(1, 2)
    if mask is not None:  # softmax_attention zeroes padded rows; the raw block kernel does not
        out = out.masked_fill(mask[:, :, None, None], 0.0)
    ref = explicit_softmax(q, k, v, True, bias, mask)
    torch.testing.assert_close(out, ref)
    for a, b in zip(torch.autograd.grad(out.sum(), (q, k, v)), torch.autograd.grad(ref.sum(), (q, k, v))):
        torch.testing.assert_close(a, b)


def _uniform_one_hot(t, b=2, h=3):
    """q = k = 0 (uniform weights over the visible keys) and v = one-hot of the key index: output[m, n] is the
    (dropped, rescaled) weight of key n for query m."""
    q = torch.zeros(b, t, h, 4, dtype=torch.float64)
    v = torch.eye(t, dtype=torch.float64)[None, :, None, :].expand(b, t, h, t).contiguous()
    return q, q.clone(), v


@pytest.mark.parametrize("with_bias", [False, True])
def test_dropout_path_drops_each_visible_weight_and_never_a_future_one(monkeypatch, with_bias):
    """In training on CPU, softmax_attention goes block by block (patched to 4-query blocks) and drops each
    visible weight 1/(m+1) with probability p, rescaling the kept ones by 1/(1-p); future keys stay 0."""
    monkeypatch.setattr(softmax_mod, "DROPOUT_BLOCK", 4)
    calls = []
    real = softmax_mod.causal_blocks_attention
    monkeypatch.setattr(softmax_mod, "causal_blocks_attention",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    t, p = 13, 0.3
    q, k, v = _uniform_one_hot(t)
    bias = torch.zeros(1, 1, t, t, dtype=torch.float64) if with_bias else None
    torch.manual_seed(0)
    outs = torch.stack([softmax_attention(q, k, v, causal=True, bias=bias, dropout_p=p) for _ in range(400)])
    assert calls, "the block path was not taken"
    m = torch.arange(t)
    visible = (m[None, :] <= m[:, None])[None, None, :, None, :].expand(outs.shape)  # (draws, B, Tq, H, Tk)
    weight = (1.0 / (m + 1.0)).to(torch.float64)[None, None, :, None, None].expand(outs.shape)
    assert (outs[~visible] == 0).all()
    kept = outs[visible] != 0
    torch.testing.assert_close(outs[visible][kept], (weight[visible] / (1 - p))[kept])
    assert abs(1 - kept.double().mean().item() - p) < 0.01  # ~180k Bernoulli draws
    # unbiased: the mean over draws tends to the attention without dropout
    torch.testing.assert_close(outs.mean(0), softmax_attention(q, k, v, causal=True), atol=0.03, rtol=0)


def test_dropout_path_is_causal_under_a_fixed_seed(monkeypatch):
    """Changing keys and values after position j leaves outputs up to j unchanged, dropout mask included."""
    monkeypatch.setattr(softmax_mod, "DROPOUT_BLOCK", 4)
    q, k, v = _qkv(t=17)
    k2, v2 = k.clone(), v.clone()
    k2[:, 9:] += 1.0
    v2[:, 9:] -= 2.0
    torch.manual_seed(3)
    a = softmax_attention(q, k, v, causal=True, dropout_p=0.2)
    torch.manual_seed(3)
    b = softmax_attention(q, k2, v2, causal=True, dropout_p=0.2)
    torch.testing.assert_close(a[:, :9], b[:, :9])
    assert not torch.allclose(a[:, 9:], b[:, 9:])


@pytest.mark.parametrize("bias_shape", [(2, 3, 37, 37), (1, 3, 37, 37), (2, 1, 37, 37), (1, 1, 37, 37)])
def test_block_path_with_bias_and_left_padding_matches_the_square(monkeypatch, bias_shape):
    """softmax_attention's own block path (8-query blocks) with a learned bias of every broadcast shape and
    left padding (rows that see no key): outputs and gradients of q, k, v and the bias equal the one-call
    path. Dropout 1e-12 takes the block path while dropping nothing (a draw below it: negligible)."""
    q, k, v = (x.requires_grad_() for x in _qkv(t=37))
    bias = torch.randn(bias_shape, dtype=torch.float64, requires_grad=True)
    pad = torch.zeros(2, 37, dtype=torch.bool)
    pad[1, :11] = True  # batch 1: queries 0..10 see nothing (their output is zero)
    ref = softmax_attention(q, k, v, causal=True, bias=bias, key_padding_mask=pad)
    g_ref = torch.autograd.grad((ref * ref).sum(), (q, k, v, bias))
    monkeypatch.setattr(softmax_mod, "DROPOUT_BLOCK", 8)
    calls = []
    real = softmax_mod.causal_blocks_attention
    monkeypatch.setattr(softmax_mod, "causal_blocks_attention",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    out = softmax_attention(q, k, v, causal=True, bias=bias, key_padding_mask=pad, dropout_p=1e-12)
    assert calls and torch.isfinite(out).all() and (out[1, :11] == 0).all()
    torch.testing.assert_close(out, ref)
    for a, b in zip(torch.autograd.grad((out * out).sum(), (q, k, v, bias)), g_ref):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b)
