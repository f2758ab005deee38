"""Each row of the issue "A library researchers can trust inside their own models", reproduced.

A new user's causal LM around ``build_pe`` + ``AttentionLayer``: what broke (NaN from padding, future NaN in a
chunk, silent broadcasting of positions, dimension mismatches found late, collapsed causal FAVOR+ rows,
three exception types, no typing) and now holds. Rows 6 (lean install) and 8-9 (catalog, docs) have their
own files (tests/test_lean_core.py, tests/pe/test_catalog.py).
"""

from __future__ import annotations

import importlib.resources

import pytest
import torch
from torch import nn

from stripes.attention import AttentionLayer, linear_attention, softmax_attention
from stripes.attention.naive import naive_linear_attention, naive_softmax_attention
from stripes.errors import ConfigError, DataError, ModelError, StripesError
from stripes.pe import PositionalEncoding, build_pe
from stripes.pe.base import PEInputError

LINEAR_PES = [  # (name, context_dim, options)
    ("nope", 1, {}),
    ("rope", 12, {}),
    ("rope_a", 1, {}),
    ("ropepool", 12, {}),
    ("fstripe1", 12, {}),
    ("fstripe", 12, {}),
    ("fstripe_sff", 12, {}),
    ("spe", 1, {}),
]


class TinyLM(nn.Module):
    """The 2-layer causal LM a user writes around the library (pre-LN, residual)."""

    def __init__(self, pe_name: str, context_dim: int, attention: str, options: dict, d=32, h=4):
        super().__init__()
        self.emb = nn.Linear(8, d)
        self.layers = nn.ModuleList(
            AttentionLayer(
                d, h, pe=build_pe(pe_name, head_dim=d // h, n_heads=h, context_dim=context_dim, d_model=d,
                                  **options),
                attention=attention, chunk_size=4, seed=i,
            )
            for i in range(2)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(2))
        self.head = nn.Linear(d, 8)

    def forward(self, x, pos, mask=None):
        h = self.emb(x)
        for norm, layer in zip(self.norms, self.layers):
            h = h + layer(norm(h), pos, key_padding_mask=mask)
        return self.head(h)


def _batch(b=3, t=11, c=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, 8, generator=g)
    if c > 1:
        pos = (torch.rand(b, t, c, generator=g) < 0.4).float()
    else:
        pos = torch.arange(t).float()[None, :, None]
    return x, pos.expand(b, t, c).clone()


def _poison(x, pos, mask, value):
    x, pos = x.clone(), pos.clone()
    x[mask] = value
    pos[mask] = value
    return x, pos


# ---- row 1: NaN / inf at padded rows never reach valid outputs or gradients ----------------------------


@pytest.mark.parametrize("attention", ["linear", "softmax"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("name,c,options", LINEAR_PES)
def test_nan_at_pads_reaches_no_valid_output_and_no_gradient(name, c, options, side, attention):
    torch.manual_seed(0)
    model = TinyLM(name, c, attention, options).eval()  # eval: stochastic PEs use their fixed noise
    x, pos = _batch(c=c)
    mask = torch.zeros(3, 11, dtype=torch.bool)
    if side == "left":
        mask[0, :4], mask[2, :1] = True, True
    else:
        mask[0, 7:], mask[2, 10:] = True, True
    clean = model(x, pos, mask)
    for value in (float("nan"), float("inf"), -float("inf"), 1e30):
        xp, pp = _poison(x, pos, mask, value)
        out = model(xp, pp, mask)
        valid = ~mask
        assert torch.isfinite(out[valid]).all(), value
        torch.testing.assert_close(out[valid], clean[valid], rtol=1e-5, atol=1e-5)
        loss = (out[valid] ** 2).mean()  # the user's masked loss
        model.zero_grad()
        loss.backward()
        # the library's parameters (projections, the PE's own) get finite gradients; the user's emb / head
        # multiply NaN rows by zero output gradients (torch's matmul gives NaN there: theirs to sanitise)
        for pname, p in model.layers.named_parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), (pname, value)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.layers.parameters())


def test_nan_activations_at_pads_from_a_previous_layer_and_left_padding_equal_the_unpadded_sequence():
    """Layer 2 sees NaN at pads straight from layer 1's output: valid rows equal the unpadded run."""
    torch.manual_seed(0)
    pe = build_pe("ropepool", head_dim=8, n_heads=4, context_dim=12)
    layer = AttentionLayer(32, 4, pe=pe, chunk_size=4, seed=0).eval()
    g = torch.Generator().manual_seed(1)
    t, pad = 9, 3
    x = torch.randn(1, t, 32, generator=g)
    pos = (torch.rand(1, t, 12, generator=g) < 0.5).float()
    xp = torch.cat([torch.full((1, pad, 32), float("nan")), x], dim=1)
    pp = torch.cat([torch.full((1, pad, 12), float("nan")), pos], dim=1)
    mask = torch.zeros(1, t + pad, dtype=torch.bool)
    mask[:, :pad] = True
    torch.testing.assert_close(layer(xp, pp, mask)[:, pad:], layer(x, pos), rtol=1e-5, atol=1e-6)


# ---- row 2: a NaN in v (or k) at a future step reaches no earlier output --------------------------------


@pytest.mark.parametrize("where", ["v", "k"])
@pytest.mark.parametrize("chunk", [4, 8, 64])
def test_future_nan_reaches_no_earlier_output_linear(where, chunk):
    g = torch.Generator().manual_seed(0)
    q, k = torch.rand(2, 19, 3, 6, generator=g) + 0.1, torch.rand(2, 19, 3, 6, generator=g) + 0.1
    v = torch.randn(2, 19, 3, 5, generator=g)
    clean = linear_attention(q, k, v, chunk_size=chunk)
    bad = {"v": v.clone(), "k": k.clone()}
    bad[where][:, 13, 1, 2] = float("nan")
    kk, vv = (bad["k"], bad["v"])
    out = linear_attention(q, kk, vv, chunk_size=chunk)
    torch.testing.assert_close(out[:, :13], clean[:, :13])  # same chunk as step 13 included
    ref = naive_linear_attention(q.double(), kk.double(), vv.double())  # what the formula gives later on
    assert torch.equal(out[:, 13:].isnan(), ref[:, 13:].isnan())


@pytest.mark.parametrize("where", ["v", "k"])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_future_nan_reaches_no_earlier_output_softmax(where, dropout):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 150, 3, 4, generator=g) for _ in range(3))
    bad = {"v": v.clone(), "k": k.clone()}
    bad[where][:, 140, 0, 1] = float("nan")
    torch.manual_seed(0)
    clean = softmax_attention(q, k, v, dropout_p=dropout)
    torch.manual_seed(0)
    out = softmax_attention(q, bad["k"], bad["v"], dropout_p=dropout)
    torch.testing.assert_close(out[:, :140], clean[:, :140])
    if dropout == 0.0 and where == "v":  # (the oracle zeroes NaN weights, so only v's NaN shows there)
        ref = naive_softmax_attention(q, bad["k"], bad["v"])
        assert torch.equal(out[:, 140:].isnan(), ref[:, 140:].isnan())


# ---- row 3: positions, validated and broadcast the same way everywhere -----------------------------------


@pytest.mark.parametrize("name", ["rope", "ropepool", "fstripe1"])
def test_theta_and_kernel_reject_a_wrong_context_width(name):
    pe = build_pe(name, head_dim=8, n_heads=2, context_dim=12)
    with pytest.raises(PEInputError, match="C=12"):
        pe.theta(torch.rand(2, 5, 1))  # (B, T, 1) used to broadcast silently over the 12 frequencies
    fs = build_pe("fstripe", head_dim=8, n_heads=2, context_dim=12)
    with pytest.raises(PEInputError, match="C=12"):
        fs.kernel(torch.rand(2, 5, 1), torch.rand(2, 5, 1))


def test_position_shapes_accepted_the_same_by_pes_and_the_layer():
    pe = build_pe("ropepool", head_dim=8, n_heads=2, context_dim=12)
    q = torch.randn(3, 6, 2, 8)
    full = torch.rand(3, 6, 12)
    one = full[:1]
    ref = pe(q, q, one.expand(3, 6, 12))
    for pos in (one, one[0]):  # (1, T, C) and (T, C) broadcast over the batch
        torch.testing.assert_close(pe(q, q, pos), ref)
    pe1 = build_pe("rope", head_dim=8, n_heads=2, context_dim=1)
    scalar = torch.rand(3, 6)
    torch.testing.assert_close(pe1(q, q, scalar), pe1(q, q, scalar[..., None]))  # (B, T) for C = 1
    layer = AttentionLayer(16, 2, pe=pe1, seed=0)
    x = torch.randn(3, 6, 16)
    torch.testing.assert_close(layer(x, scalar), layer(x, scalar[..., None]))  # the layer too
    layer12 = AttentionLayer(16, 2, pe=pe, seed=0)
    torch.testing.assert_close(layer12(x, one[0]), layer12(x, one.expand(3, 6, 12)))


def test_non_finite_positions_at_valid_rows_are_named():
    pe = build_pe("ropepool", head_dim=8, n_heads=2, context_dim=12)
    q = torch.randn(2, 6, 2, 8)
    pos = torch.rand(2, 6, 12)
    pos[1, 4, 7] = float("nan")
    with pytest.raises(PEInputError, match=r"non-finite.*batch 1, step 4, context 7"):
        pe(q, q, pos)
    layer = AttentionLayer(16, 2, pe=pe, seed=0)
    with pytest.raises(PEInputError, match="non-finite"):
        layer(torch.randn(2, 6, 16), pos)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[1, 4] = True  # the same NaN at a padded row is fine
    assert torch.isfinite(layer(torch.randn(2, 6, 16), pos, key_padding_mask=mask)).all()


# ---- row 4: mismatches found at construction ---------------------------------------------------------------


def test_pe_layer_dimension_mismatch_and_input_pes_fail_at_construction():
    pe = build_pe("rope", head_dim=16, n_heads=4)
    with pytest.raises(ConfigError, match="head_dim=16.*head_dim=8"):
        AttentionLayer(32, 4, pe=pe)
    with pytest.raises(ConfigError, match="n_heads"):
        AttentionLayer(32, 2, pe=build_pe("rope", head_dim=16, n_heads=4))
    for name in ("ape", "sape"):
        with pytest.raises(ConfigError, match="input-level.*embed"):
            AttentionLayer(32, 4, pe=build_pe(name, head_dim=8, n_heads=4, d_model=32))


# ---- row 5: causal FAVOR+ stays finite and non-degenerate at large activations ---------------------------


def test_causal_favor_at_10x_activations_keeps_every_row_alive_and_causal():
    """q, k projections at 10x their init scale (q entries of std ~6): the unstabilised causal FAVOR+ of
    before lost ~98 % of the rows; now none, the ratio is exact and the layer stays causal bit for bit."""
    torch.manual_seed(0)
    pe = build_pe("ropepool", head_dim=64, n_heads=4, context_dim=12)
    layer = AttentionLayer(256, 4, pe=pe, seed=0).eval()
    with torch.no_grad():
        for proj in (layer.q_proj, layer.k_proj):
            proj.weight.mul_(10.0)
    g = torch.Generator().manual_seed(0)
    b, t = 2, 512
    x = torch.randn(b, t, 256, generator=g)
    pos = (torch.rand(b, t, 12, generator=g) < 0.4).float()
    with torch.no_grad():
        q = layer.q_proj(x).view(b, t, 4, 64)
        k = layer.k_proj(x).view(b, t, 4, 64)
        v = layer.v_proj(x).view(b, t, 4, 64)
        qp, kp = layer.pe(q, k, pos)
        fm = layer.feature_map
        phi_q = fm(qp, role="query")
        old = linear_attention(phi_q, fm(kp, role=None), v)  # no key stabiliser: the old causal default
        phi_k, log_scale = fm.key_features(kp)
        new = linear_attention(phi_q, phi_k, v, k_log_scale=log_scale)

    def dead(o):
        return ((o.norm(dim=-1) < 1e-6 * v.norm(dim=-1)) | ~torch.isfinite(o).all(-1)).float().mean().item()

    assert dead(old) > 0.5  # the bug: most rows silently collapse
    assert dead(new) == 0.0
    # the exact ratio: a float64 evaluation of the same features without any stabiliser
    ref = naive_linear_attention(phi_q[:, :64].double(), phi_k[:, :64].double(), v[:, :64].double(), eps=0.0,
                                 k_log_scale=log_scale[:, :64].double())
    torch.testing.assert_close(new[:, :64].double(), ref, rtol=1e-3, atol=1e-4)
    # causal, even through the stabiliser: huge future inputs leave earlier outputs bit-identical
    y = layer(x, pos)
    x2 = x.clone()
    x2[:, 300:] *= 50.0
    torch.testing.assert_close(layer(x2, pos)[:, :300], y[:, :300], rtol=0, atol=0)


# (convergence to the softmax layer of the same scores as M grows, through the stabilised path:
# tests/attention/test_layer.py::test_linear_layer_with_a_real_pe_tends_to_softmax_of_its_scores)


# ---- row 7: one exception family ---------------------------------------------------------------------------


def test_one_exception_family():
    for err in (ConfigError, ModelError, PEInputError):
        assert issubclass(err, StripesError) and issubclass(err, ValueError)
    with pytest.raises(TypeError):
        build_pe("rope", head_dim=8, n_heads=2)(torch.randn(1, 3, 2, 8), torch.randn(1, 3, 2, 8), [1, 2, 3])
    with pytest.raises(StripesError):
        linear_attention(torch.rand(2, 3), torch.rand(2, 3), torch.rand(2, 3))
    from stripes.models import Harmonizer

    with pytest.raises(ModelError):
        model = Harmonizer(pe="rope", n_layers=1, d_model=16, n_heads=2, d_ff=16)
        model(torch.rand(1, 4, 3), torch.rand(1, 4, 1))
    assert issubclass(PEInputError, DataError)  # still caught where data errors were


# ---- row 8: typed and documented ---------------------------------------------------------------------------


def test_typed_and_documented():
    assert importlib.resources.files("stripes").joinpath("py.typed").is_file()
    for name, c, options in LINEAR_PES + [("ape", 1, {}), ("srpe", 1, {})]:
        pe = build_pe(name, head_dim=8, n_heads=2, context_dim=c, d_model=16, **options)
        assert isinstance(pe, PositionalEncoding) and pe.kind in ("qk", "input", "bias"), name
        if pe.kind == "qk":
            assert isinstance(pe.out_dim, int) and hasattr(pe, "scores")
    import pydoc

    from stripes.pe import RoPEPool

    text = pydoc.render_doc(RoPEPool)
    assert "head_dim" in text and "(B, T, H" in text and "Parameters" in text
    assert "variant C" in (build_pe.__doc__ or "")


# ---- row 10: torch.compile, one graph --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rope", "ropepool", "fstripe1", "fstripe"])
def test_linear_path_compiles_with_fullgraph_and_matches_eager(name):
    """One graph (fullgraph=True) for the layer, forward and backward, with padding; same numbers."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    pe = build_pe(name, head_dim=8, n_heads=2, context_dim=12)
    layer = AttentionLayer(16, 2, pe=pe, chunk_size=8, seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 21, 16, generator=g)
    pos = (torch.rand(2, 21, 12, generator=g) < 0.4).float()
    mask = torch.zeros(2, 21, dtype=torch.bool)
    mask[1, 17:] = True
    compiled = torch.compile(layer, fullgraph=True)
    out = compiled(x, pos, mask)
    ref = layer(x, pos, mask)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    grads = torch.autograd.grad(out.square().sum(), list(layer.parameters()))
    grads_ref = torch.autograd.grad(ref.square().sum(), list(layer.parameters()))
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fstripe_compile_operator_equals_the_fused_kernel():
    """stripes::fourier_pool_pair (what compiled F-StrIPE runs): same outputs and gradients; opcheck."""
    from stripes.pe.fourier_compile import fourier_pool_pair
    from stripes.pe.fourier_fused import fourier_pool_shared

    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 37, 3, 8, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2))
    pos = (torch.rand(2, 37, 12, generator=g) < 0.3).double()
    freqs = torch.rand(3, 8, 5, 12, generator=g, dtype=torch.float64).requires_grad_()
    gains = torch.rand(3, 8, 5, generator=g, dtype=torch.float64).requires_grad_()
    off = torch.randn(3, 8, 5, generator=g, dtype=torch.float64).requires_grad_()
    ref = fourier_pool_shared(q, k, pos, pos, freqs, gains, off, None, None)
    out = fourier_pool_pair(q, k, pos, freqs, gains, off, 0)
    w = [torch.randn(r.shape, generator=g, dtype=torch.float64) for r in ref]
    leaves = (q, k, freqs, gains, off)
    g_ref = torch.autograd.grad(sum((r * wi).sum() for r, wi in zip(ref, w)), leaves)
    g_out = torch.autograd.grad(sum((o * wi).sum() for o, wi in zip(out, w)), leaves)
    for a, b in zip((*out, *g_out), (*ref, *g_ref)):
        torch.testing.assert_close(a, b)
    torch.library.opcheck(torch.ops.stripes.fourier_pool_pair.default, (q, k, pos, freqs, gains, off, 0))
