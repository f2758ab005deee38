"""Harmonizer: shapes for every PE, causality, input/bias PE wiring, loss."""

from __future__ import annotations

import pytest
import torch

from stripes.errors import ConfigError, ModelError
from stripes.models import Harmonizer
from stripes.pe import list_pes

SCALAR_ONLY = {"spe", "ape"}  # PEs defined on a scalar (time) position


def _model(pe: str, context_dim: int, attention: str = "linear", **kw) -> Harmonizer:
    torch.manual_seed(0)
    if pe == "srpe":
        attention = "softmax"
    return Harmonizer(
        pe=pe,
        context_dim=context_dim,
        d_model=16,
        n_heads=2,
        n_layers=2,
        d_ff=32,
        dropout=0.0,
        attention=attention,
        chunk_size=8,
        feature_map_options={"stabilize_keys": False},
        **kw,
    )


def _inputs(context_dim: int, b: int = 2, t: int = 24, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, t, 256, generator=g) < 0.05).float()
    if context_dim == 1:
        pos = torch.arange(t, dtype=torch.float32).expand(b, t)[..., None].contiguous()
    else:
        pos = (torch.rand(b, t, context_dim, generator=g) < 0.3).float()
    return x, pos


@pytest.mark.parametrize("pe", sorted(list_pes()))
def test_shapes_and_gradients_for_every_pe(pe: str) -> None:
    c = 1 if pe in SCALAR_ONLY else 12
    model = _model(pe, c)
    x, pos = _inputs(c)
    logits = model(x, pos)
    assert logits.shape == (2, 24, 128)
    assert torch.isfinite(logits).all()
    loss = model.loss(logits, torch.zeros_like(logits))
    loss.backward()
    assert all(p.grad is not None for p in model.in_proj.parameters())
    pe_params = [p for n, p in model.named_parameters() if ".pe." in n or n.startswith("input_pe.")]
    if pe_params:  # learnable PE parameters receive gradient
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pe_params)


@pytest.mark.parametrize(
    ("pe", "attention", "c"),
    [
        ("nope", "linear", 12),
        ("ropepool", "linear", 12),
        ("rope_c", "linear", 1),
        ("fstripe", "linear", 12),
        ("fstripe1", "linear", 12),
        ("sape", "linear", 12),
        ("ropepool", "softmax", 12),
        ("srpe", "softmax", 12),
    ],
)
def test_causal_output_independent_of_future(pe: str, attention: str, c: int) -> None:
    model = _model(pe, c, attention).eval()
    x, pos = _inputs(c, t=32)
    t0 = 13
    x2, pos2 = x.clone(), pos.clone()
    x2[:, t0 + 1 :] = (torch.rand_like(x2[:, t0 + 1 :]) < 0.5).float()
    pos2[:, t0 + 1 :] = pos2[:, t0 + 1 :].flip(1) + 1.0
    with torch.no_grad():
        a, b = model(x, pos), model(x2, pos2)
    torch.testing.assert_close(a[:, : t0 + 1], b[:, : t0 + 1], atol=2e-5, rtol=1e-4)
    assert not torch.allclose(a[:, t0 + 1 :], b[:, t0 + 1 :], atol=1e-4)  # the future did change


def test_positions_matter_only_with_a_pe() -> None:
    x, pos = _inputs(12)
    pos2 = torch.roll(pos, 5, dims=1)
    for pe, depends in (("nope", False), ("ropepool", True), ("sape", True)):
        model = _model(pe, 12).eval()
        with torch.no_grad():
            same = torch.allclose(model(x, pos), model(x, pos2), atol=1e-6)
        assert same is not depends, pe


def test_input_pe_is_added_once_and_layers_get_none() -> None:
    model = _model("sape", 12)
    assert model.input_pe is not None and model.pe_kind == "input"
    assert all(block.attn.pe is None for block in model.blocks)
    model = _model("ropepool", 12)
    assert model.input_pe is None
    assert model.blocks[0].attn.pe is not model.blocks[1].attn.pe  # one PE per layer by default
    shared = _model("ropepool", 12, share_pe=True)
    assert shared.blocks[0].attn.pe is shared.blocks[1].attn.pe


def test_bias_pe_needs_softmax_and_bad_shapes_are_rejected() -> None:
    with pytest.raises(ConfigError):
        Harmonizer(pe="srpe", context_dim=12, d_model=16, n_heads=2, attention="linear")
    with pytest.raises(ConfigError):
        Harmonizer(pe="nope", d_model=15, n_heads=2)
    with pytest.raises(ConfigError):
        Harmonizer(pe="no_such_pe", d_model=16, n_heads=2)
    model = _model("nope", 12)
    x, pos = _inputs(12)
    with pytest.raises(ModelError):
        model(x[..., :128], pos)
    with pytest.raises(ModelError):
        model(x, pos[..., :3])


def test_loss_is_mean_bce() -> None:
    logits = torch.tensor([[[0.0, 2.0]]])
    y = torch.tensor([[[1.0, 0.0]]])
    expected = (torch.log1p(torch.exp(torch.tensor(0.0))) + torch.log1p(torch.exp(torch.tensor(2.0)))) / 2
    torch.testing.assert_close(Harmonizer.loss(logits, y), expected)


def test_paper_shape_parameter_count() -> None:
    from stripes.config import load_run_config
    from stripes.models import build_model

    cfg = load_run_config("paper", overrides={"pe": "nope"})
    model = build_model(cfg, 12)
    d, f = 512, 512
    per_block = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    expected = (256 * d + d) + 2 * per_block + (d * 128 + 128)
    assert sum(p.numel() for p in model.parameters()) == expected
