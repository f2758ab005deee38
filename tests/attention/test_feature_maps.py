"""Feature maps: FAVOR+ kernel approximation, orthogonality, stabilisers, redraw policies, state dict."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stripes.attention import build_feature_map, linear_attention, orthogonal_gaussian_matrix
from stripes.errors import ConfigError


def test_orthogonal_rows_within_blocks_and_chi_norms():
    w = orthogonal_gaussian_matrix(40, 16, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert w.shape == (40, 16)
    for start in (0, 16):
        blk = w[start : start + 16]
        u = blk / blk.norm(dim=1, keepdim=True)
        torch.testing.assert_close(u @ u.T, torch.eye(16, dtype=torch.float64), atol=1e-10, rtol=0)
    # squared row norms ~ chi^2(16): mean 16 (loose check over 40 rows)
    assert 10 < (w.norm(dim=1) ** 2).mean().item() < 22


def _softmax_attention_matrix(q, k):
    """(T, T) causal softmax attention with logits q.k / sqrt(D); q, k (T, D)."""
    logits = q @ k.T / math.sqrt(q.shape[-1])
    logits = logits.masked_fill(~torch.ones_like(logits, dtype=torch.bool).tril(), float("-inf"))
    return logits.softmax(dim=-1)


def _favor_attention_matrix(fm, q, k):
    pq = fm(q[None, :, None], role="query")[0, :, 0]
    pk = fm(k[None, :, None], role="key")[0, :, 0]
    a = (pq @ pk.T).tril()
    return a / a.sum(dim=-1, keepdim=True)


def test_favor_approximates_softmax_attention_error_shrinks_with_m():
    g = torch.Generator().manual_seed(0)
    d, t = 16, 24
    q = torch.randn(t, d, generator=g, dtype=torch.float64) * 0.5
    k = torch.randn(t, d, generator=g, dtype=torch.float64) * 0.5
    exact = _softmax_attention_matrix(q, k)
    errs = {}
    for m in (8, 128, 4096):
        vals = []
        for seed in range(4):
            fm = build_feature_map("favor", d, n_features=m, seed=seed).double()
            vals.append(((_favor_attention_matrix(fm, q, k) - exact).norm() / exact.norm()).item())
        errs[m] = sum(vals) / len(vals)
    assert errs[8] > errs[128] > errs[4096]
    assert errs[4096] < 0.05  # stated accuracy at M = 4096, D = 16
    # Monte Carlo rate ~ 1/sqrt(M): 32x more features -> error at least 2x smaller
    assert errs[4096] < errs[128] / 2


def test_favor_unstabilised_kernel_is_unbiased_estimate_of_exp():
    # E[phi(x).phi(y)] = exp(x.y / sqrt(D)) (role=None: no stabiliser), averaged over many draws
    g = torch.Generator().manual_seed(3)
    d = 8
    x = torch.randn(5, d, generator=g, dtype=torch.float64) * 0.5
    y = torch.randn(5, d, generator=g, dtype=torch.float64) * 0.5
    exact = torch.exp(x @ y.T / math.sqrt(d))
    fm = build_feature_map("favor", d, n_features=2048, seed=1).double()
    est = fm(x[None, :, None])[0, :, 0] @ fm(y[None, :, None])[0, :, 0].T
    assert ((est - exact).abs() / exact).max() < 0.05


def test_favor_stabilisers_cancel_in_attention_and_stay_finite():
    g = torch.Generator().manual_seed(0)
    d = 16
    q = torch.randn(2, 30, 2, d, generator=g, dtype=torch.float64)
    k = torch.randn(2, 30, 2, d, generator=g, dtype=torch.float64)
    v = torch.randn(2, 30, 2, 4, generator=g, dtype=torch.float64)
    fm = build_feature_map("favor", d, n_features=64, seed=0).double()
    raw = linear_attention(fm(q), fm(k), v, chunk_size=8, eps=0.0)
    stab = linear_attention(fm(q, role="query"), fm(k, role="key"), v, chunk_size=8, eps=0.0)
    torch.testing.assert_close(stab, raw, rtol=1e-10, atol=1e-10)
    # large activations: -|x|^2/2 dominates and unstabilised float32 features underflow to exact zeros
    # (every key would then weigh 0); the stabilised ones keep a max of 1/sqrt(M) and a usable output
    fm32 = build_feature_map("favor", d, n_features=64, seed=0)
    big_q, big_k = q * 60, k * 60
    assert (fm32(big_k.float()) == 0).all()
    pq, pk = fm32(big_q.float(), role="query"), fm32(big_k.float(), role="key")
    assert torch.isfinite(pq).all() and torch.isfinite(pk).all()
    assert pk.amax().item() == pytest.approx(1 / 8, rel=1e-3)
    assert pq.amax(dim=-1).min().item() == pytest.approx(1 / 8, rel=1e-3)
    out32 = linear_attention(pq, pk, v.float(), chunk_size=8)
    out64 = linear_attention(fm(big_q, role="query"), fm(big_k, role="key"), v, chunk_size=8)
    assert torch.isfinite(out32).all() and out32.abs().max() > 0.1
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-5)
    # without key stabilisation keys get identical features whatever the rest of the sequence
    fm_gen = build_feature_map("favor", d, n_features=64, seed=0, stabilize_keys=False).double()
    torch.testing.assert_close(fm_gen(k, role="key")[:, :5], fm_gen(k[:, :5], role="key"))


def test_favor_under_bf16_autocast_computes_fp32_features():
    fm = build_feature_map("favor", 8, n_features=16, seed=0)
    x = torch.randn(1, 4, 2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fm(x.bfloat16(), role="query")
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, fm(x.bfloat16().float(), role="query"))


def test_deterministic_maps():
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(build_feature_map("elu", 5)(x), F.elu(x) + 1)
    torch.testing.assert_close(build_feature_map("relu", 5)(x), x.clamp(min=0))
    torch.testing.assert_close(build_feature_map("identity", 5)(x), x)
    assert (build_feature_map("elu", 5)(x) > 0).all()
    assert build_feature_map("elu", 5).out_dim == 5


def test_seed_reproducible_and_generator_accepted():
    a = build_feature_map("favor", 8, n_features=32, seed=7)
    b = build_feature_map("favor", 8, n_features=32, seed=torch.Generator().manual_seed(7))
    c = build_feature_map("favor", 8, n_features=32, seed=8)
    torch.testing.assert_close(a.omega, b.omega)
    assert not torch.allclose(a.omega, c.omega)
    assert a.out_dim == 32 and a.omega.shape == (16, 8)
    assert build_feature_map("favor", 8).out_dim == 16  # default M = 2 D


def test_redraw_policies_and_fixed_in_eval():
    fixed = build_feature_map("favor", 8, n_features=16, redraw="fixed", seed=0)
    w0 = fixed.omega.clone()
    for _ in range(3):
        assert not fixed.maybe_redraw()
    torch.testing.assert_close(fixed.omega, w0)

    step = build_feature_map("favor", 8, n_features=16, redraw="step", seed=0)
    w0 = step.omega.clone()
    assert step.maybe_redraw()
    assert not torch.allclose(step.omega, w0)
    step.eval()
    w1 = step.omega.clone()
    assert not step.maybe_redraw()
    torch.testing.assert_close(step.omega, w1)

    prob = build_feature_map("favor", 8, n_features=16, redraw=0.3, seed=0)
    hits = sum(prob.maybe_redraw() for _ in range(400))
    assert 80 < hits < 160  # Binomial(400, 0.3): mean 120, sd ~9


def test_state_dict_round_trip_keeps_features():
    a = build_feature_map("favor", 8, n_features=16, redraw="step", seed=0)
    a.maybe_redraw()
    b = build_feature_map("favor", 8, n_features=16, seed=123)
    assert not torch.allclose(a.omega, b.omega)
    assert "omega" in a.state_dict()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 5, 2, 8)
    torch.testing.assert_close(b(x, role="key"), a(x, role="key"))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="softplus", in_dim=4), "unknown feature map"),
        (dict(name="favor", in_dim=4, n_features=7), "even"),
        (dict(name="favor", in_dim=4, redraw="sometimes"), "redraw"),
        (dict(name="favor", in_dim=4, redraw=1.5), "redraw"),
        (dict(name="elu", in_dim=4, n_features=8), "M = in_dim"),
        (dict(name="favor", in_dim=0), "positive"),
        (dict(name="favor", in_dim=4, seed="x"), "seed"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_feature_map(**kwargs)


def test_bad_input_shape_raises():
    fm = build_feature_map("favor", 8, n_features=16)
    with pytest.raises(ConfigError, match="8"):
        fm(torch.randn(1, 3, 2, 5))
    with pytest.raises(ConfigError, match="role"):
        fm(torch.randn(1, 3, 2, 8), role="value")


def test_favor_key_stabiliser_ignores_padded_keys():
    g = torch.Generator().manual_seed(0)
    fm = build_feature_map("favor", 16, n_features=64, seed=0).double()
    k = torch.randn(1, 10, 2, 16, generator=g, dtype=torch.float64) * 3  # large keys: max exponent < 0
    kp = torch.cat([k, torch.zeros(1, 5, 2, 16, dtype=torch.float64)], dim=1)  # zeroed padding
    mask = torch.tensor([[False] * 10 + [True] * 5])
    torch.testing.assert_close(fm(kp, role="key", key_padding_mask=mask)[:, :10], fm(k, role="key"))
    assert not torch.allclose(fm(kp, role="key")[:, :10], fm(k, role="key"))  # the mask matters
    all_pad = fm(kp, role="key", key_padding_mask=torch.ones(1, 15, dtype=torch.bool))
    assert torch.isfinite(all_pad).all()
    with pytest.raises(ConfigError, match="key_padding_mask"):
        fm(kp, role="key", key_padding_mask=mask[:, :5])
