"""Question 2: learned contexts (model.context_learner) — shapes, identity at step 0, gradients, config
identity."""

from __future__ import annotations

import pytest
import torch

from stripes.config import RunConfig, load_run_config
from stripes.errors import ConfigError
from stripes.models import build_model
from stripes.models.context_learner import (
    ChordEmbedding,
    build_context_learner,
    learner_parameters,
)

KINDS = ("linear", "mlp", "chord_embedding")


def _chroma(b: int = 2, t: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pos = (torch.rand(b, t, 12, generator=g) < 0.25).float()
    pos[:, :3] = 0.0  # no chord
    return pos


def _config(kind: str, pe: str = "ropepool", variant: str | None = None) -> RunConfig:
    ov = {"pe": pe, "context": "bin", "model.context_learner": kind}
    if variant:
        ov["model.pe_options.variant"] = variant
    return load_run_config("smoke", overrides=ov)


@pytest.mark.parametrize("kind", KINDS)
def test_learner_is_the_identity_at_the_start_and_keeps_the_shape(kind: str) -> None:
    pos = _chroma()
    learner = build_context_learner(kind, 12)
    out = learner(pos)
    assert out.shape == pos.shape and torch.equal(out, pos)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("pe", "variant"), [("ropepool", None), ("rope", "C")])
def test_model_at_step_0_equals_its_bin_twin(kind: str, pe: str, variant: str | None) -> None:
    """Same seed: every weight but the learner's is the BIN model's, and the outputs are equal."""
    torch.manual_seed(3)
    base = build_model(_config("none", pe, variant), 12).eval()
    after_base = torch.rand(1)
    torch.manual_seed(3)
    learned = build_model(_config(kind, pe, variant), 12).eval()
    assert torch.equal(torch.rand(1), after_base)  # the learner drew nothing from the global RNG
    sd_base, sd_learned = base.state_dict(), learned.state_dict()
    extra = set(sd_learned) - set(sd_base)
    assert extra and all(k.startswith("context_learner.") for k in extra)
    assert all(torch.equal(sd_base[k], sd_learned[k]) for k in sd_base)
    x = torch.rand(2, 24, 256)
    pos = _chroma()
    with torch.no_grad():
        torch.testing.assert_close(learned(x, pos), base(x, pos), rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_the_learner(kind: str) -> None:
    torch.manual_seed(0)
    model = build_model(_config(kind), 12).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y, pos = torch.rand(2, 24, 256), (torch.rand(2, 24, 128) < 0.1).float(), _chroma()
    params = dict(model.context_learner.named_parameters())
    start = {k: v.detach().clone() for k, v in params.items()}
    for _ in range(2):  # the MLP's inner layer gets gradients once its zero output layer has moved
        opt.zero_grad()
        model.loss(model(x, pos), y).backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params.values())
        opt.step()
    moved = {k for k, v in params.items() if not torch.equal(v.detach(), start[k])}
    assert moved == set(params), (kind, set(params) - moved)
    if kind == "chord_embedding":  # only the rows of chromas that occur move
        rows = torch.unique(model.context_learner.index(pos))
        changed = (params["table.weight"].detach() != 0).any(-1).nonzero().flatten()
        assert set(changed.tolist()) <= set(rows.tolist()) and len(changed) > 0


def test_parameter_counts_are_tiny() -> None:
    model = build_model(_config("none"), 12)
    assert learner_parameters(build_context_learner("none", 12)) == {"total": 0, "trainable": 0}
    assert learner_parameters(build_context_learner("linear", 12))["total"] == 12 * 12 + 12
    assert learner_parameters(build_context_learner("mlp", 12))["total"] == 12 * 32 + 32 + 32 * 12 + 12
    emb = build_context_learner("chord_embedding", 12)
    used = ChordEmbedding(12).index(_chroma())
    counts = learner_parameters(emb, used)
    assert counts["total"] == 4096 * 12 and counts["trainable"] == 12 * int(torch.unique(used).numel())
    assert sum(p.numel() for p in model.parameters()) > 10 * 156


def test_config_round_trip_and_unchanged_identity() -> None:
    from stripes.experiments.run import config_hash

    base = load_run_config("cpu", overrides={"pe": "ropepool", "context": "bin"})
    d = base.to_dict()
    assert "context_learner" not in d["model"] and "positions" not in d["eval"]  # omitted at the default
    assert config_hash(RunConfig.from_dict(d)) == config_hash(base)
    for kind in KINDS:
        cfg = load_run_config("cpu", overrides={"pe": "ropepool", "context": "bin",
                                                "model.context_learner": kind})
        dd = cfg.to_dict()
        assert dd["model"]["context_learner"] == kind
        again = RunConfig.from_dict(dd)
        assert again.model.context_learner == kind and config_hash(again) == config_hash(cfg)
        assert config_hash(cfg) != config_hash(base)
    pos_cfg = load_run_config("cpu", overrides={"eval.positions": True})
    assert pos_cfg.to_dict()["eval"]["positions"] is True
    with pytest.raises(ConfigError, match="context_learner"):
        load_run_config("smoke", overrides={"model.context_learner": "transformer"})
    with pytest.raises(ConfigError, match="chroma"):
        load_run_config("smoke", overrides={"context": "rep", "model.context_learner": "chord_embedding"})
    # a scalar context may take a linear or MLP learner (C -> C)
    assert build_model(load_run_config("smoke", overrides={"context": "rep", "model.context_learner": "mlp"}),
                       1).context_learner is not None


@pytest.mark.parametrize("kind", KINDS)
def test_the_generative_model_builds_its_learner_too(kind: str) -> None:
    """task=accompany: the learner maps the positions of the accompanist's backbone (it was dropped before,
    the run differing from its BIN twin by name only); step 0 still equals the twin."""
    from stripes.models.accompanist import build_accompanist

    def cfg(k: str) -> RunConfig:
        return load_run_config("smoke", overrides={"task": "accompany", "pe": "ropepool", "context": "bin",
                                                   "model.context_learner": k})

    torch.manual_seed(3)
    base = build_accompanist(cfg("none"), 12).eval()
    torch.manual_seed(3)
    learned = build_accompanist(cfg(kind), 12).eval()
    assert base.backbone.context_learner is None
    assert isinstance(learned.backbone.context_learner, type(build_context_learner(kind, 12)))
    x, pos = torch.rand(2, 24, 256), _chroma()
    onset, frame = (torch.rand(2, 24, 128) < 0.1).float(), (torch.rand(2, 24, 128) < 0.2).float()
    with torch.no_grad():
        a, b = learned(x, pos, onset, frame), base(x, pos, onset, frame)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    with torch.no_grad():  # a moved learner changes the accompanist's output
        for p in learned.backbone.context_learner.parameters():
            p.add_(0.5)
        moved = learned(x, pos, onset, frame)
    assert any(not torch.equal(moved[k], b[k]) for k in moved)
