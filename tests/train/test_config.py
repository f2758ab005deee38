"""Typed configs: profiles, strict keys and types, overrides."""

from __future__ import annotations

import json

import pytest

from stripes.config import RunConfig, list_profiles, load_run_config, parse_overrides
from stripes.errors import ConfigError


def test_profiles_load_and_round_trip() -> None:
    assert {"paper", "quick", "smoke"} <= set(list_profiles())
    for name in ("paper", "quick", "smoke"):
        cfg = load_run_config(name)
        assert cfg.profile == name
        assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_paper_profile_is_the_p1_recipe() -> None:
    cfg = load_run_config("paper")
    m, t = cfg.model, cfg.train
    assert (m.d_model, m.n_heads, m.n_layers, m.d_ff, m.dropout) == (512, 4, 2, 512, 0.1)
    assert (t.batch_size, t.epochs, t.lr_gamma, t.curriculum_epochs, t.max_len) == (8, 15, 0.85, 3.0, None)
    assert t.lr in (1e-4, 5e-4, 1e-3) and cfg.data.bars == 16


def test_overrides_named_and_dotted() -> None:
    cfg = load_run_config(
        "quick",
        overrides=[
            "train.lr=5e-4",
            "pe=rope_c",
            'context=["bin","time"]',
            "eval.merges=[null,4]",
            "model.pe_options.base=500",
        ],
    )
    assert cfg.train.lr == 5e-4 and cfg.pe == "rope" and cfg.contexts == ["bin", "time"]
    assert cfg.eval.merges == [None, 4] and cfg.model.pe_options == {"base": 500, "variant": "C"}
    assert parse_overrides(["a.b=true", "c=none", "d=abc"]) == {"a.b": True, "c": None, "d": "abc"}


@pytest.mark.parametrize(
    "bad",
    [
        ["train.lrx=1"],
        ["nosuch=1"],
        ["nosection.lr=1"],
        ["train.lr=fast"],
        ["train.epochs=1.5"],
        ["model.d_model=31"],
        ["attention=exact"],
        ["context=beat"],
        ["pe=srpe"],
        ["eval.thresholds=[1.5]"],
        ["train.lr"],
        ["data.source=web"],
    ],
)
def test_bad_overrides_raise_config_error(bad: list[str]) -> None:
    with pytest.raises(ConfigError):
        load_run_config("smoke", overrides=bad)


def test_from_dict_is_strict(tmp_path) -> None:
    d = load_run_config("smoke").to_dict()
    d["train"]["unknown"] = 1
    with pytest.raises(ConfigError, match="train.unknown"):
        RunConfig.from_dict(d)
    d = load_run_config("smoke").to_dict()
    d["model"] = 3
    with pytest.raises(ConfigError):
        RunConfig.from_dict(d)
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError):
        load_run_config(path=path)
    with pytest.raises(ConfigError, match="unknown profile"):
        load_run_config("huge")


def test_srpe_with_softmax_is_valid_and_partial_file_takes_defaults(tmp_path) -> None:
    cfg = load_run_config("smoke", overrides={"pe": "srpe", "attention": "softmax"})
    assert cfg.attention == "softmax"
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"profile": "mine", "train": {"lr": 0.001}}))
    cfg = load_run_config(path=path)
    assert cfg.train.lr == 0.001 and cfg.model.d_model == 512 and cfg.profile == "mine"


def test_canonical_spellings_give_one_identity() -> None:
    from stripes.experiments.run import config_hash

    a = load_run_config("quick", overrides={"pe": "rope_c", "context": ["bin"]})
    b = load_run_config("quick", overrides={"pe": "rope", "model.pe_options.variant": "C", "context": "bin"})
    assert a.to_dict() == b.to_dict() and config_hash(a) == config_hash(b)
    m = load_run_config("quick", overrides={"pe": "fstripe", "context": ["m", "c"]})
    assert m.context == ["melody", "chord"]
    with pytest.raises(ConfigError, match="contradicts"):
        load_run_config("quick", overrides={"pe": "rope_a", "model.pe_options.variant": "B"})


def test_srpe_bases_follow_context_names_not_column_order() -> None:
    """P3's bases belong to labels (melody 7920, tempo 9919, chord 10001, sections 11339): the chord column
    of [melody, chord, phrase] must get 10001, not P3's second (tempo) base by position."""
    from stripes.models.harmonizer import build_model

    cfg = load_run_config("smoke", overrides={"pe": "srpe", "attention": "softmax",
                                              "context": ["m", "chord", "phrase"]})
    assert cfg.model.pe_options["bases"] == [7920.0, 10001.0, 11339.0]
    pes = [mod for _, mod in build_model(cfg, 3).named_modules() if hasattr(mod, "bases")]
    assert pes and all(tuple(p.bases) == (7920.0, 10001.0, 11339.0) for p in pes)
    alone = load_run_config("smoke", overrides={"pe": "sape", "context": "phrase"})
    assert alone.model.pe_options["bases"] == [11339.0]
    given = load_run_config("smoke", overrides={"pe": "srpe", "attention": "softmax", "context": "chord",
                                                "model.pe_options.bases": [500.0]})
    assert given.model.pe_options["bases"] == [500.0]  # an explicit choice is kept
    assert load_run_config(path=None, overrides=cfg.to_dict()).to_dict() == cfg.to_dict()  # idempotent


def test_run_name_of_a_list_option_is_a_safe_folder_name() -> None:
    from stripes.experiments.run import run_name

    name = run_name("srpe", {"bases": [7920.0, 10001.0, 11339.0]}, ["melody", "chord", "phrase"], 0, 2e-3,
                    "cpu")
    assert name == "cpu_srpe-bases=7920+10001+11339_melody+chord+phrase_s0_lr2e-3"
