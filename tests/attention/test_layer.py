"""AttentionLayer: shapes, oracle composition, PE protocol (test doubles), padding, redraw, state dict."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from stripes.attention import AttentionLayer, linear_attention, softmax_attention
from stripes.errors import ConfigError, DataError, ModelError


class RotaryDouble(nn.Module):
    """Tiny RoPE-like test double (kind "qk"): rotates adjacent pairs by pos[..., 0] * f (learnable f per
    head and pair). ``widen`` concatenates [rot(q), rot(q)] to test out_dim != head_dim."""

    kind = "qk"

    def __init__(self, n_heads: int, head_dim: int, widen: bool = False) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.linspace(0.05, 1.0, n_heads * head_dim // 2).view(n_heads, -1))
        self.widen = widen
        self.out_dim = 2 * head_dim if widen else head_dim
        self.calls = 0

    def _rot(self, x, pos):
        ang = pos[..., :1, None] * self.freq  # (B, T, 1, 1) * (H, D/2) -> (B, T, H, D/2)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        c, s = ang.cos(), ang.sin()
        y = torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).flatten(-2)
        return torch.cat([y, y], dim=-1) if self.widen else y

    def forward(self, q, k, pos_q, pos_k=None):
        self.calls += 1
        return self._rot(q, pos_q), self._rot(k, pos_q if pos_k is None else pos_k)


class BiasDouble(nn.Module):
    """kind "bias": b_mn = -slope_h * |p_m - p_n| (ALiBi-like), (B, H, Tq, Tk)."""

    kind = "bias"

    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.linspace(0.1, 1.0, n_heads))

    def bias(self, pos_q, pos_k):
        d = (pos_q[:, None, :, 0, None] - pos_k[:, None, None, :, 0]).abs()
        return -self.slope[None, :, None, None] * d


class ContentBiasDouble(BiasDouble):
    """A bias that also depends on q (like P3 S-RPE): adds q_m . u_h to every logit of row m."""

    def __init__(self, n_heads: int, head_dim: int) -> None:
        super().__init__(n_heads)
        self.u = nn.Parameter(torch.randn(n_heads, head_dim))
        self.seen_q = None

    def bias(self, pos_q, pos_k, q=None):
        self.seen_q = q
        base = super().bias(pos_q, pos_k)
        return base + torch.einsum("bthd,hd->bht", q, self.u)[..., None]


class InputDouble(nn.Module):
    kind = "input"

    def embed(self, pos):  # pragma: no cover - the layer must never call it
        raise AssertionError("input PEs are applied by the model")


def _x(b=2, t=21, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, d, generator=g)
    pos = torch.arange(t, dtype=torch.float32).view(1, t, 1).expand(b, t, 1).clone()
    return x, pos


def _split(layer, x):
    b, t, _ = x.shape
    shape = (b, t, layer.n_heads, layer.head_dim)
    return layer.q_proj(x).view(shape), layer.k_proj(x).view(shape), layer.v_proj(x).view(shape)


@pytest.mark.parametrize("attention", ["linear", "softmax"])
@pytest.mark.parametrize("fmap", ["favor", "elu"])
def test_shapes_and_grad_flow(attention, fmap):
    pe = RotaryDouble(4, 4)
    layer = AttentionLayer(16, 4, pe=pe, attention=attention, feature_map=fmap, chunk_size=8, seed=0)
    x, pos = _x()
    x.requires_grad_()
    y = layer(x, pos)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert pe.freq.grad is not None and pe.freq.grad.abs().sum() > 0
    assert x.grad is not None and layer.q_proj.weight.grad.abs().sum() > 0


def test_linear_layer_equals_manual_composition():
    pe = RotaryDouble(4, 4, widen=True)
    layer = AttentionLayer(16, 4, pe=pe, n_features=12, chunk_size=5, seed=1)
    assert layer.feature_map.in_dim == 8 and layer.feature_map.out_dim == 12
    x, pos = _x(t=13)
    q, k, v = _split(layer, x)
    qp, kp = pe(q, k, pos, pos)
    phi = layer.feature_map
    phi_k, log_scale = phi.key_features(kp)
    ref = linear_attention(phi(qp, role="query"), phi_k, v, chunk_size=64, k_log_scale=log_scale)
    ref = layer.out_proj(ref.reshape(2, 13, 16))
    torch.testing.assert_close(layer(x, pos), ref)
    # the log-scaled keys are the plain FAVOR+ features phi(k) = exp(w.k - |k|^2/2) / sqrt(M), rescaled
    # (with eps = 0 the two are the same ratio; eps acts on the rescaled denominator in the stabilised form)
    phi_q = phi(qp, role="query")
    plain = linear_attention(phi_q, phi(kp, role=None), v, chunk_size=5, eps=0.0)
    scaled = linear_attention(phi_q, phi_k, v, chunk_size=5, eps=0.0, k_log_scale=log_scale)
    torch.testing.assert_close(scaled, plain, rtol=1e-5, atol=1e-6)


def test_softmax_layer_with_bias_pe_equals_manual():
    pe = BiasDouble(4)
    layer = AttentionLayer(16, 4, pe=pe, attention="softmax")
    x, pos = _x(t=9)
    q, k, v = _split(layer, x)
    ref = softmax_attention(q, k, v, bias=pe.bias(pos, pos))
    torch.testing.assert_close(layer(x, pos), layer.out_proj(ref.reshape(2, 9, 16)))
    assert any(p is pe.slope for p in layer.parameters())


def test_content_bias_gets_the_projected_queries():
    pe = ContentBiasDouble(4, 4)
    layer = AttentionLayer(16, 4, pe=pe, attention="softmax")
    x, pos = _x(t=9)
    y = layer(x, pos)
    q, k, v = _split(layer, x)
    torch.testing.assert_close(pe.seen_q, q)
    ref = softmax_attention(q, k, v, bias=pe.bias(pos, pos, q=q))
    torch.testing.assert_close(y, layer.out_proj(ref.reshape(2, 9, 16)))


def test_temperature_is_one_over_sqrt_head_dim_whatever_the_pe_out_dim():
    pe = RotaryDouble(4, 4, widen=True)  # out_dim 8, scores = 2 * rot(q).rot(k)
    layer = AttentionLayer(16, 4, pe=pe, attention="softmax").double()
    x, pos = _x(t=7)
    x, pos = x.double(), pos.double()
    q, k, v = _split(layer, x)
    qo, ko = pe(q, k, pos, pos)
    logits = torch.einsum("bthd,bshd->bhts", qo, ko) / 2.0  # sqrt(head_dim = 4)
    w = logits.masked_fill(~torch.ones(7, 7, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
    ref = torch.einsum("bhts,bshd->bthd", w, v).reshape(2, 7, 16)
    torch.testing.assert_close(layer(x, pos), layer.out_proj(ref))
    lin = AttentionLayer(16, 4, pe=RotaryDouble(4, 4, widen=True), seed=0)
    assert lin.feature_map.in_dim == 8 and lin.feature_map.scale == pytest.approx(4**-0.25)


def test_rope_double_shift_invariance_through_the_layer():
    # RoPE scores depend on p_m - p_n only: shifting all positions leaves the softmax layer unchanged
    layer = AttentionLayer(16, 4, pe=RotaryDouble(4, 4), attention="softmax").double()
    x, pos = _x(t=10)
    x, pos = x.double(), pos.double()
    torch.testing.assert_close(layer(x, pos + 7.0), layer(x, pos))
    assert not torch.allclose(layer(x, pos * 2.0), layer(x, pos))


def test_input_pe_is_rejected_with_what_to_do_instead():
    with pytest.raises(ConfigError, match="input-level PE.*pe.embed"):
        AttentionLayer(16, 4, pe=InputDouble(), seed=0)


@pytest.mark.parametrize("attention", ["linear", "softmax"])
@pytest.mark.parametrize("causal", [True, False])
def test_key_padding_mask_blocks_padded_tokens(attention, causal):
    torch.manual_seed(0)  # layer weights and the replacement noise come from the global generator
    layer = AttentionLayer(16, 4, pe=RotaryDouble(4, 4), attention=attention, causal=causal, seed=0)
    x, pos = _x(t=15)
    mask = torch.zeros(2, 15, dtype=torch.bool)
    mask[0, 10:] = True  # right padding
    mask[1, :3] = True  # left padding (seen by causal queries)
    y = layer(x, pos, key_padding_mask=mask)
    x2 = torch.where(mask[..., None], torch.randn_like(x) * 10, x)
    y2 = layer(x2, pos, key_padding_mask=mask)
    keep = ~mask
    torch.testing.assert_close(y2[keep], y[keep])
    y3 = layer(x2, pos)
    assert not torch.allclose(y3[keep], y[keep])


@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_right_padded_batch_equals_unpadded_sequence(attention):
    # non-causal, so every real query sees the padded positions unless they are masked out; large inputs
    # make FAVOR+ depend on its key stabiliser, which must ignore the (zeroed) padded keys
    layer = AttentionLayer(16, 4, pe=RotaryDouble(4, 4), attention=attention, causal=False, seed=0).double()
    x, pos = _x(b=1, t=16)
    x, pos = x.double() * 10, pos.double()
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, 11:] = True
    torch.testing.assert_close(layer(x, pos, key_padding_mask=mask)[:, :11], layer(x[:, :11], pos[:, :11]))


def test_redraw_in_training_fixed_in_eval_and_state_dict_round_trip():
    layer = AttentionLayer(16, 4, pe=RotaryDouble(4, 4), redraw="step", seed=0)
    x, pos = _x()
    layer.train()
    a, b = layer(x, pos), layer(x, pos)
    assert not torch.allclose(a, b)  # new features every training step
    layer.eval()
    c, d = layer(x, pos), layer(x, pos)
    torch.testing.assert_close(c, d)
    other = AttentionLayer(16, 4, pe=RotaryDouble(4, 4), redraw="step", seed=99).eval()
    assert not torch.allclose(other(x, pos), c)
    other.load_state_dict(layer.state_dict())
    torch.testing.assert_close(other(x, pos), c)
    assert "feature_map.omega" in layer.state_dict()


def test_seed_makes_layers_reproducible():
    torch.manual_seed(0)
    l1 = AttentionLayer(16, 4, seed=5)
    torch.manual_seed(0)
    l2 = AttentionLayer(16, 4, seed=5)
    x, _ = _x()
    torch.testing.assert_close(l1(x), l2(x))


def test_bf16_autocast_forward_backward():
    layer = AttentionLayer(16, 4, pe=RotaryDouble(4, 4), chunk_size=8, seed=0)
    x, pos = _x(t=40)
    ref = layer(x, pos)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x, pos)
    assert torch.isfinite(y).all()
    assert ((y.float() - ref).norm() / ref.norm()).item() < 5e-2
    y.float().sum().backward()
    assert torch.isfinite(layer.q_proj.weight.grad).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(d_model=16, n_heads=3), "divisible"),
        (dict(d_model=16, n_heads=4, attention="flash"), "attention"),
        (dict(d_model=16, n_heads=4, pe=BiasDouble(4)), "softmax"),
        (dict(d_model=16, n_heads=4, feature_map="tanh"), "unknown feature map"),
        (dict(d_model=16, n_heads=4, chunk_size=0), "chunk_size"),
        (dict(d_model=16, n_heads=4, dropout=1.5), "dropout"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AttentionLayer(**kwargs)


def test_bad_pe_objects():
    class NoKind(nn.Module):
        pass

    class NoDim(nn.Module):
        kind = "qk"

    with pytest.raises(ConfigError, match="kind"):
        AttentionLayer(16, 4, pe=NoKind())
    with pytest.raises(ConfigError, match="out_dim"):
        AttentionLayer(16, 4, pe=NoDim())


def test_bad_forward_inputs():
    layer = AttentionLayer(16, 4, pe=RotaryDouble(4, 4))
    x, pos = _x()
    with pytest.raises(ModelError, match="B, T, 16"):
        layer(x[..., :8], pos)
    with pytest.raises(ModelError, match="pos"):
        layer(x)
    with pytest.raises(ModelError, match="pos"):
        layer(x, pos[:, :5])
    with pytest.raises(ModelError, match="key_padding_mask"):
        layer(x, pos, key_padding_mask=torch.zeros(2, 21))


HAS_PE = importlib.util.find_spec("stripes.pe") is not None


@pytest.mark.skipif(not HAS_PE, reason="stripes.pe not available yet")
@pytest.mark.parametrize(
    "name,attention",
    [
        ("ropepool", "linear"),
        ("ropepool", "softmax"),
        ("rope", "linear"),
        ("fstripe1", "linear"),
        ("fstripe", "linear"),
        ("nope", "linear"),
        ("srpe", "softmax"),
    ],
)
def test_integration_with_stripes_pe(name, attention):
    from stripes.pe import build_pe

    pe = build_pe(name, head_dim=4, n_heads=4, context_dim=1, d_model=16)
    layer = AttentionLayer(16, 4, pe=pe, attention=attention, chunk_size=8, seed=0)
    x, pos = _x()
    y = layer(x, pos)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if attention == "linear":
        assert layer.feature_map.in_dim == pe.out_dim
    y.square().sum().backward()
    if name != "nope":
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pe.parameters())


@pytest.mark.skipif(not HAS_PE, reason="stripes.pe not available yet")
@pytest.mark.parametrize("padded", [False, True])
def test_srpe_folded_into_q_k_equals_the_bias_layer(padded):
    """S-RPE's bias folded into q and k (the default) gives the layer of P3's explicit logit bias:
    outputs and the gradients of every parameter, with one-hot and dense label columns."""
    from stripes.pe import build_pe

    g = torch.Generator().manual_seed(1)
    b, t = 2, 17
    pos = torch.stack(
        [torch.randint(0, 3, (b, t), generator=g), torch.randint(0, 300, (b, t), generator=g)], dim=-1
    ).double()  # column 0: one-hot path; column 1: 17 labels > d_model = 8, dense path
    x = torch.randn(b, t, 8, generator=g, dtype=torch.float64)
    kpm = torch.zeros(b, t, dtype=torch.bool)
    if padded:
        kpm[1, 12:] = True
    outs, grads = [], []
    for fold in (False, True):
        torch.manual_seed(0)
        pe = build_pe("srpe", head_dim=4, n_heads=2, context_dim=2, fold=fold).double()
        layer = AttentionLayer(8, 2, pe=pe, attention="softmax").double()
        y = layer(x, pos, key_padding_mask=kpm if padded else None)
        y.square().sum().backward()
        outs.append(y)
        grads.append([p.grad for p in layer.parameters()])
    torch.testing.assert_close(outs[1], outs[0])
    for a, c in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, c)
    q, k, _ = _split(layer, x)
    q2, k2, bias = pe.fold(q, k, pos, pos)
    assert bias is None and q2.shape[-1] == k2.shape[-1] > 4  # folded: wider q, k, no bias tensor
    with pytest.raises(DataError, match="k must"):
        pe.fold(q, k[:, :, :1], pos, pos)


@pytest.mark.skipif(not HAS_PE, reason="stripes.pe not available yet")
def test_srpe_fold_keeps_the_bias_in_bf16_when_a_column_has_many_labels():
    from stripes.pe import build_pe

    pe = build_pe("srpe", head_dim=4, n_heads=2, context_dim=1)
    q = torch.randn(1, 30, 2, 4).bfloat16()
    many = torch.arange(30.0).view(1, 30, 1)
    _, _, bias = pe.fold(q, q, many, many)
    assert bias is not None and bias.shape == (1, 2, 30, 30) and bias.dtype == torch.bfloat16
    q2, _, bias = pe.fold(q, q, many % 3, many % 3)  # three labels: exact one-hot, folded
    assert bias is None and q2.dtype == torch.bfloat16


@pytest.mark.skipif(not HAS_PE, reason="stripes.pe not available yet")
def test_ropepool_softmax_layer_equals_softmax_of_pe_scores():
    # the layer feeds the PE's q_out, k_out to attention: logits = pe.scores / sqrt(head_dim) (P1 eq. (23))
    from stripes.pe import build_pe

    pe = build_pe("ropepool", head_dim=4, n_heads=4, context_dim=1).double()
    layer = AttentionLayer(16, 4, pe=pe, attention="softmax").double()
    x, pos = _x(t=9)
    x, pos = x.double(), pos.double() * 3.0
    q, k, v = _split(layer, x)
    logits = pe.scores(q, k, pos, pos) / 2.0
    w = logits.masked_fill(~torch.ones(9, 9, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
    ref = torch.einsum("bhts,bshd->bthd", w, v).reshape(2, 9, 16)
    torch.testing.assert_close(layer(x, pos), layer.out_proj(ref))


def test_causal_favor_layer_output_ignores_future_inputs_exactly():
    # the default FAVOR+ key stabiliser is a max over the whole sequence; a causal layer must not use it
    torch.manual_seed(0)
    layer = AttentionLayer(16, 4, pe=RotaryDouble(4, 4), attention="linear", feature_map="favor", seed=0)
    layer.eval()
    x, pos = _x(t=24)
    x2 = x.clone()
    x2[:, 12:] = torch.randn_like(x2[:, 12:]) * 20
    torch.testing.assert_close(layer(x2, pos)[:, :12], layer(x, pos)[:, :12], rtol=0, atol=0)


@pytest.mark.skipif(not HAS_PE, reason="stripes.pe not available yet")
@pytest.mark.parametrize(("name", "options"), [("rope", {"variant": "C"}), ("ropepool", {}),
                                               ("fstripe1", {}), ("fstripe1", {"pooled": False}),
                                               ("fstripe", {})])
def test_linear_layer_with_a_real_pe_tends_to_softmax_of_its_scores(name, options):
    """End to end, per PE: the FAVOR+ layer (PE codes -> φ -> causal linear attention) approaches the
    softmax layer with logits = q_out.k_out / sqrt(head_dim) as M grows (temperature, code width and the
    PE's place in the layer together)."""
    from stripes.pe import build_pe

    torch.manual_seed(0)
    pe = build_pe(name, head_dim=4, n_heads=4, context_dim=1, **options).double()
    exact = AttentionLayer(16, 4, pe=pe, attention="softmax").double().eval()
    x, pos = _x(t=12)
    x, pos = 0.5 * x.double(), pos.double()
    ref = exact(x, pos)
    errs = {}
    for m in (8, 8192):
        approx = AttentionLayer(16, 4, pe=pe, attention="linear", n_features=m, seed=1).double().eval()
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            getattr(approx, proj).load_state_dict(getattr(exact, proj).state_dict())
        assert approx.feature_map.in_dim == pe.out_dim
        errs[m] = ((approx(x, pos) - ref).norm() / ref.norm()).item()
    assert errs[8192] < 0.05 and errs[8192] < errs[8] / 4, errs
