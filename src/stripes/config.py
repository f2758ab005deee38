"""Typed run configurations: dataclasses, JSON profiles, strict loading and ``key=value`` overrides.

A run is described by one :class:`RunConfig`. Profiles live in ``stripes/configs/<name>.json`` and hold
the full nested dictionary; :func:`load_run_config` reads one, applies overrides (``"train.lr=5e-4"``
or a dict of dotted keys) and validates the result. Unknown keys and wrongly typed values raise
:class:`stripes.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from stripes.data.contexts import (
    CONTEXT_ALIASES,  # the one list of contexts
    parse_variant,
)
from stripes.data.contexts import CONTEXT_NAMES as _CANONICAL
from stripes.errors import ConfigError

CONTEXT_NAMES = _CANONICAL + tuple(CONTEXT_ALIASES)  # accepted spellings (m, c, p = melody, chord, phrase)
ATTENTIONS = ("linear", "softmax")
BIAS_PES = ("srpe",)  # bias-type PEs only work with softmax attention (P3 S-RPE)
CONTEXT_LEARNERS = ("none", "linear", "mlp", "chord_embedding")  # model.context_learner (question 2)
TASKS = ("harmonize", "accompany", "melody")  # stripes.data.melody: the inputs and targets of "melody"


@dataclass
class ModelConfig:
    """Harmonizer shape (P1 §IV-C: d=512, H=4, L=2; d_ff=512, dropout 0.1 from the P3 code)."""

    d_model: int = 512
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 512
    dropout: float = 0.1
    n_features: int | None = None  # feature-map width M; None = attention module default
    chunk_size: int = 64
    redraw: str | float = "step"  # FAVOR+ random features: fixed | step | redraw probability per step
    share_pe: bool = False  # one PE module for all layers instead of one per layer
    pe_options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of build_pe
    # options of the feature map. stabilize_keys (kept: it is part of every recorded run's identity) no longer
    # changes the layer, whose causal FAVOR+ keys are stabilised by a running maximum (docs/attention.md)
    feature_map_options: dict[str, Any] = field(default_factory=lambda: {"stabilize_keys": False})
    # accompaniment model only: also feed the positions (the BIN chroma of the chord at t) as input features,
    # so the model knows the absolute chord, not only what its PE's kernel tells it
    pos_input: bool = False
    # question 2 (a learned structure): positions' = f_θ(positions) before every PE, trained end to end
    # (stripes.models.context_learner): "none" | "linear" | "mlp" | "chord_embedding"; each starts as the
    # identity, so step 0 equals the hand-made context
    context_learner: str = "none"


@dataclass
class TrainConfig:
    """Optimisation recipe (P1 §IV-C / P3 code, docs/papers.md §9.4)."""

    lr: float = 5e-4
    batch_size: int = 8
    epochs: int = 15
    warmup_steps: int = 160
    lr_gamma: float = 0.85  # StepLR, once per epoch
    curriculum_epochs: float = 3.0  # length curriculum 16 -> max_len over these epochs (0 = off)
    curriculum_min_len: int = 16
    max_len: int | None = None  # crop training windows to this many ticks (None = full window)
    grad_clip: float = 0.0005  # gradient-norm clipping (P3 config value; 0 = off)
    max_train_windows: int | None = None  # random subset of training windows (fixed by seed)
    max_val_windows: int | None = None  # first N validation windows for the per-epoch validation
    val_metrics_windows: int = 16  # windows on which per-epoch validation metrics are computed
    bf16: bool = True  # bf16 autocast, used on CUDA only
    device: str = "auto"  # auto | cpu | cuda
    tensorboard: bool = True  # also write TensorBoard scalars when tensorboard is installed


@dataclass
class DataConfig:
    """Which data the run uses."""

    source: str = "pop909"  # pop909 | synthetic (random rolls, for tests and benchmarks)
    bars: int = 16  # training / validation window length in bars (64 ticks per bar)
    synthetic_windows: int = 64  # number of windows per split for source=synthetic
    # training-time augmentation (stripes.train.augment): random transposition of melody, bridge, piano and
    # BIN chroma together by k in [lo, hi] semitones per window, and the bridge track zeroed at random
    transpose: list[int] | None = None
    bridge_dropout: float = 0.0


@dataclass
class EvalConfig:
    """Binarization grid (docs/papers.md §9.5) and evaluation limits."""

    # low thresholds matter: small models put little probability on any one cell (docs/reproduce.md)
    thresholds: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8])
    merges: list[int | None] = field(default_factory=lambda: [None, 2, 4, 8])
    criterion: str = "onset_f1"
    max_val_windows: int | None = None  # validation windows used to choose the binarization
    max_test_windows: int | None = None
    n_examples: int = 2  # windows written as MIDI + PNG
    batch_size: int = 4
    # also write metrics_{bars}_positions.json (test BCE per bar, per window; question 3 of docs/results.md)
    positions: bool = False


# keys added after runs were recorded: left out of to_dict() (and so of the run identity) at their default
_OMIT_AT_DEFAULT = ((("task",), "harmonize"), (("model", "pos_input"), False),
                    (("model", "context_learner"), "none"), (("eval", "positions"), False))


@dataclass
class RunConfig:
    """Everything that defines one training run. Experiment axes sit at the top level."""

    profile: str = "paper"
    seed: int = 0
    pe: str = "ropepool"
    context: str | list[str] = "bin"
    attention: str = "linear"
    feature_map: str = "favor"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # "harmonize": the parallel P1 model (logits of the piano roll); "accompany": the autoregressive
    # accompaniment model (stripes.models.accompanist), sampled tick by tick; "melody": the inverse problem
    # (question 4), the parallel model from the piano roll to the melody roll on the same windows and contexts
    task: str = "harmonize"

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dictionary (JSON-serialisable). Keys added later (``task``, ``model.pos_input``,
        ``model.context_learner``, ``eval.positions``) are left out at their default, so the identity (config
        hash) of every run recorded before them is unchanged."""
        d = dataclasses.asdict(self)
        for path, default in _OMIT_AT_DEFAULT:
            node = d
            for key in path[:-1]:
                node = node[key]
            if node.get(path[-1]) == default:
                del node[path[-1]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Strict construction: unknown keys or wrong types raise ConfigError."""
        cfg = _build(cls, d, "")
        canonicalize(cfg)
        validate(cfg)
        return cfg

    @property
    def contexts(self) -> list[str]:
        """Context names as a list."""
        return [self.context] if isinstance(self.context, str) else list(self.context)

    def summary(self) -> dict[str, Any]:
        """Flat view of the main axes (pe, context, attention, feature_map, seed, lr, profile)."""
        return {
            "profile": self.profile,
            "pe": self.pe,
            "context": self.context,
            "attention": self.attention,
            "feature_map": self.feature_map,
            "seed": self.seed,
            "lr": self.train.lr,
        }


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, arg) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, tp)


def _coerce(value: Any, tp: Any) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    origin = typing.get_origin(tp)
    if origin is list and isinstance(value, list):
        args = typing.get_args(tp)
        return [_coerce(v, args[0]) for v in value] if args else list(value)
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            if a is not type(None) and _type_ok(value, a):
                return _coerce(value, a)
    return value


def _build(cls: type, d: Any, prefix: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}' must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        where = f" in section '{prefix[:-1]}'" if prefix else ""
        raise ConfigError(f"unknown config key(s){where}: {', '.join(prefix + k for k in unknown)}")
    kwargs = {}
    for name, value in d.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
            continue
        if not _type_ok(value, tp):
            raise ConfigError(f"config key '{prefix}{name}' has invalid value {value!r} (expected {tp})")
        kwargs[name] = _coerce(value, tp)
    return cls(**kwargs)


def canonicalize(cfg: RunConfig) -> None:
    """One spelling per config, so that equal models get equal run identities: context aliases (m, c, p) ->
    melody, chord, phrase; a one-element context list -> its name; ``rope_a|b|c`` -> ``rope`` with
    ``pe_options.variant``; S-RPE / S-APE without ``bases`` get P3's base of each context by name (melody
    7920, chord 10001, phrase 11339), written into ``pe_options`` so the run's config records them. Values
    of ``pe_options`` keep their type (``base=10`` vs ``10.0`` differ)."""
    names = [CONTEXT_ALIASES.get(c, c) for c in cfg.contexts]
    cfg.context = names[0] if len(names) == 1 else names
    if cfg.pe in ("rope_a", "rope_b", "rope_c"):
        variant = cfg.pe[-1].upper()
        given = cfg.model.pe_options.get("variant")
        if given is not None and str(given).upper() != variant:
            raise ConfigError(f"pe {cfg.pe!r} contradicts model.pe_options.variant={given!r}")
        cfg.pe = "rope"
        cfg.model.pe_options = {**cfg.model.pe_options, "variant": variant}
    if cfg.pe in ("srpe", "sape") and "bases" not in cfg.model.pe_options and all(
        c in _CANONICAL for c in names
    ):
        from stripes.pe.ape import p3_bases

        cfg.model.pe_options = {**cfg.model.pe_options, "bases": p3_bases(names)}


def validate(cfg: RunConfig) -> None:
    """Value checks that types alone cannot express."""
    m, t, e = cfg.model, cfg.train, cfg.eval
    if cfg.attention not in ATTENTIONS:
        raise ConfigError(f"attention must be one of {ATTENTIONS}, got {cfg.attention!r}")
    if cfg.task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    if cfg.task == "melody" and (cfg.data.transpose is not None or cfg.data.bridge_dropout > 0):
        raise ConfigError("task=melody reads the piano alone (no bridge) and has no transposition: "
                          "leave data.transpose and data.bridge_dropout at their defaults")
    if cfg.pe in BIAS_PES and cfg.attention != "softmax":
        raise ConfigError(f"pe '{cfg.pe}' adds a bias to the attention logits: use attention=softmax")
    for c in cfg.contexts:
        try:
            variant = parse_variant(c)  # a degraded BIN context (bin_corrupt0.5, bin_shift2)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if c not in CONTEXT_NAMES and variant is None:
            raise ConfigError(f"unknown context {c!r}; choose among {', '.join(CONTEXT_NAMES)} "
                              "(or bin_corrupt<rate>, bin_shift<beats>)")
    if not cfg.contexts:
        raise ConfigError("context must name at least one context")
    for name in ("d_model", "n_heads", "n_layers", "d_ff", "chunk_size"):
        if getattr(m, name) <= 0:
            raise ConfigError(f"model.{name} must be positive")
    if m.d_model % m.n_heads:
        raise ConfigError(f"model.d_model ({m.d_model}) must be divisible by model.n_heads ({m.n_heads})")
    if m.context_learner not in CONTEXT_LEARNERS:
        raise ConfigError(f"model.context_learner must be one of {', '.join(CONTEXT_LEARNERS)}, "
                          f"got {m.context_learner!r}")
    if m.context_learner == "chord_embedding" and (len(cfg.contexts) != 1 or not (
            cfg.contexts[0] == "bin" or parse_variant(cfg.contexts[0]) is not None)):
        raise ConfigError("model.context_learner='chord_embedding' reads the chord's chroma: use context bin "
                          f"(or a BIN variant), got {cfg.context!r}")
    if not 0.0 <= m.dropout < 1.0:
        raise ConfigError("model.dropout must be in [0, 1)")
    if t.lr <= 0 or t.batch_size <= 0 or t.epochs <= 0:
        raise ConfigError("train.lr, train.batch_size and train.epochs must be positive")
    if t.warmup_steps < 0 or t.curriculum_epochs < 0 or t.grad_clip < 0 or not 0 < t.lr_gamma <= 1:
        raise ConfigError("train.warmup_steps, curriculum_epochs, grad_clip must be >= 0, lr_gamma in (0, 1]")
    if t.max_len is not None and t.max_len < t.curriculum_min_len:
        raise ConfigError("train.max_len must be >= train.curriculum_min_len")
    if t.device not in ("auto", "cpu", "cuda"):
        raise ConfigError("train.device must be auto, cpu or cuda")
    if cfg.data.source not in ("pop909", "synthetic"):
        raise ConfigError("data.source must be pop909 or synthetic")
    if cfg.data.bars <= 0:
        raise ConfigError("data.bars must be positive")
    tr = cfg.data.transpose
    if tr is not None and (len(tr) != 2 or tr[0] > tr[1] or abs(tr[0]) > 24 or abs(tr[1]) > 24):
        raise ConfigError(f"data.transpose must be [lo, hi] semitones with lo <= hi (|k| <= 24), got {tr}")
    if tr is not None and any(c in ("melody", "chord", "m", "c") for c in cfg.contexts):
        raise ConfigError("data.transpose cannot be used with the melody/chord contexts (absolute labels)")
    if not 0.0 <= cfg.data.bridge_dropout <= 1.0:
        raise ConfigError("data.bridge_dropout must be in [0, 1]")
    if not e.thresholds or any(not 0 < x < 1 for x in e.thresholds):
        raise ConfigError("eval.thresholds must be a non-empty list of values in (0, 1)")
    if not e.merges or any(s is not None and s < 1 for s in e.merges):
        raise ConfigError("eval.merges must be a non-empty list of None or positive gap lengths")
    if e.criterion not in ("onset_f1", "frame_f1", "cs"):
        raise ConfigError("eval.criterion must be onset_f1, frame_f1 or cs")


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts (``key: a -> b``)."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out


def list_profiles() -> list[str]:
    """Names of the bundled profiles: every ``stripes/configs/<name>.json`` (the one list of profiles; a new
    profile is one new file)."""
    root = resources.files("stripes") / "configs"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


def _read_json(path: Path | Any, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid JSON: {exc}") from exc


def _parse_value(text: str) -> Any:
    low = text.strip()
    if low.lower() in ("none", "null"):
        return None
    if low.lower() in ("true", "false"):
        return low.lower() == "true"
    try:
        return json.loads(low)
    except json.JSONDecodeError:
        return low


def parse_overrides(items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``["train.lr=5e-4", ...]`` -> ``{"train.lr": 5e-4}``; values parsed as JSON when possible."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=5e-4)")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value)
    return out


def apply_overrides(d: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy); unknown sections are caught later by from_dict."""
    d = json.loads(json.dumps(d))
    for key, value in overrides.items():
        parts = key.split(".")
        node = d
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise ConfigError(f"unknown config section in override '{key}'")
            node = node[p]
        option = len(parts) >= 2 and parts[-2].endswith("options")
        if parts[-1] not in node and not option:
            raise ConfigError(f"unknown config key in override '{key}'")
        node[parts[-1]] = value
    return d


def load_run_config(
    profile: str = "quick",
    path: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> RunConfig:
    """Load a profile (or a JSON file at ``path``), apply overrides, validate.

    Keys missing from the file take the dataclass defaults (the ``paper`` recipe).
    """
    if path is not None:
        d = _read_json(Path(path), "config file")
    else:
        res = resources.files("stripes") / "configs" / f"{profile}.json"
        if not res.is_file():
            raise ConfigError(f"unknown profile {profile!r}; available: {', '.join(list_profiles())}")
        d = _read_json(res, "profile")
    base = dataclasses.asdict(RunConfig.from_dict(d))  # validates the file (strict keys); every key present
    return RunConfig.from_dict(apply_overrides(base, parse_overrides(overrides)))
