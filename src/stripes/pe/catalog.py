"""A catalog of the registered positional encodings: what each one is, where it comes from, how to use it.

``catalog()`` returns one :class:`PEInfo` per name of ``stripes.pe``'s registry: kind, the attention it works
with, aliases, paper and equations, constraints, the ``out_dim`` formula and the options. The options and
their defaults are read from the class's ``__init__`` with :mod:`inspect`, and their meaning from the
``Parameters`` section of the class docstring, so the catalog cannot drift from the code.
``stripes pe list`` prints it (``--json`` for a machine-readable form); docs/pe.md has the equations.

Note: ``build_pe("rope")`` is RoPE **variant C** (learnable per-head frequencies, P1's best RoPE).
Textbook RoPE, with fixed frequencies, is ``build_pe("rope_a")`` or ``variant="A"``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stripes.errors import ConfigError

# constructor arguments that size the PE (given by build_pe / the model), not options
STRUCTURAL = ("self", "head_dim", "n_heads", "context_dim", "d_model")

KINDS = (
    "q/k rotation",
    "q/k random Fourier features",
    "q/k stochastic (SFF)",
    "input-level",
    "softmax logit bias",
    "none",
)

ROPE_NOTE = (
    'build_pe("rope") is variant C: learnable per-head frequencies (P1\'s best RoPE). '
    'Textbook RoPE with fixed frequencies is "rope_a" (or variant="A").'
)


@dataclass(frozen=True)
class Option:
    """One constructor option of a PE: name, default (read from ``__init__``), type and meaning."""

    name: str
    default: Any
    annotation: str
    help: str

    def as_dict(self) -> dict[str, Any]:
        default = _jsonable(self.default)
        return {"name": self.name, "default": default, "type": self.annotation, "help": self.help}


@dataclass(frozen=True)
class PEInfo:
    """What a registered PE is. ``options`` are read from the class; everything else is stated here."""

    name: str
    title: str
    cls: type
    kind: str
    attention: str
    paper: str
    equations: str
    out_dim: str
    constraints: tuple[str, ...]
    docs: str
    aliases: dict[str, str] = field(default_factory=dict)
    note: str = ""
    options: tuple[Option, ...] = ()

    @property
    def description(self) -> str:
        """The class's one-line ``description`` (the text of ``list_pes()``)."""
        return str(getattr(self.cls, "description", ""))

    @property
    def class_path(self) -> str:
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "class": self.class_path,
            "description": self.description,
            "kind": self.kind,
            "attention": self.attention,
            "aliases": dict(self.aliases),
            "note": self.note,
            "paper": self.paper,
            "equations": self.equations,
            "out_dim": self.out_dim,
            "constraints": list(self.constraints),
            "options": [o.as_dict() for o in self.options],
            "docs": self.docs,
        }


@dataclass(frozen=True)
class _Facts:
    title: str
    kind: str
    attention: str
    paper: str
    equations: str
    out_dim: str
    out_dim_fn: Callable[[int, dict[str, Any]], int | None]
    constraints: tuple[str, ...]
    docs: str
    aliases: dict[str, str] = field(default_factory=dict)
    note: str = ""


QK = "linear and softmax"
_POS = "positions (B, T, C) or (B, T) when C = 1"

_FACTS: dict[str, _Facts] = {
    "nope": _Facts(
        "NoPE: no positional encoding", "none", QK,
        "P2 baseline (transformer without PE)", "none",
        "D (head_dim): q, k unchanged", lambda d, o: d,
        (f"{_POS} are checked, then ignored",), "docs/pe.md (nope), docs/papers.md §7"),
    "rope": _Facts(
        "RoPE: rotary PE, variants A/B/C (default C)", "q/k rotation", QK,
        "P1 (Of All StrIPEs); variants A/B/C: P1 §IV-E",
        "P1 eq. (8)-(10), (14), (21)-(22)",
        "D (head_dim), unpooled", lambda d, o: d,
        ("head_dim even (pairs are rotated)", "variant in {'A', 'B', 'C'}", "base > 1"),
        "docs/pe.md (rope), docs/papers.md §3",
        aliases={
            "rope_a": 'variant="A": fixed geometric frequencies shared by all heads (textbook RoPE)',
            "rope_b": 'variant="B": fixed frequencies, a different slice per head',
            "rope_c": 'variant="C": learnable per-head frequencies (the same as "rope")',
        },
        note=ROPE_NOTE),
    "ropepool": _Facts(
        "RoPEPool: RoPE rotation, then each pair's two coordinates summed", "q/k rotation", QK,
        "P1 (Of All StrIPEs) §III-D", "P1 eq. (22)-(23), (26)",
        "D/2 (one number per pair)", lambda d, o: d // 2,
        ("head_dim even (pairs are rotated)", "base > 1",
         "not shift invariant: scores depend on p_m + p_n too"),
        "docs/pe.md (ropepool), docs/papers.md §6.4"),
    "fstripe1": _Facts(
        "F-StrIPE1: one learnable frequency per dimension", "q/k random Fourier features", QK,
        "P1 (Of All StrIPEs) §III-C", "P1 eq. (15), (19)-(20), (25)",
        "2 if pooled (default), 2D if pooled=False", lambda d, o: 2 if o.get("pooled", True) else 2 * d,
        ("head_dim even (the two dimensions of a pair start at one frequency)", "base > 1",
         "pooled scores include cross-dimension terms (not shift invariant)"),
        "docs/pe.md (fstripe1), docs/papers.md §6.2-§6.3"),
    "fstripe": _Facts(
        "F-StrIPE: learnable RFF codes over C structure levels", "q/k random Fourier features", QK,
        "P2 (F-StrIPE); summarised in P1 §III-A", "P2 eq. (6)-(9); P1 eq. (11)-(12)",
        "2*n_sines if pooled (default), 2*n_sines*D if pooled=False",
        lambda d, o: 2 * o["n_sines"] * (1 if o.get("pooled", True) else d),
        ("n_sines >= 1", "chunk_size a positive integer or None"),
        "docs/pe.md (fstripe), docs/papers.md §5"),
    "fstripe_sff": _Facts(
        "F-StrIPE:SFF: stochastic Fourier features (sineSPE with vector labels)", "q/k stochastic (SFF)",
        QK, "P2 (F-StrIPE), F-StrIPE:SFF", "P2 eq. (6); P1 eq. (5)-(7)",
        "R = n_realizations", lambda d, o: o["n_realizations"],
        ("n_sines >= 1, n_realizations >= 1",
         "noise redrawn every forward in train(), fixed buffers in eval()"),
        "docs/pe.md (fstripe_sff), docs/papers.md §4"),
    "spe": _Facts(
        "SPE: sineSPE of Liutkus et al. 2021 (gated)", "q/k stochastic (SFF)", QK,
        "Liutkus et al., ICML 2021; P2 baseline", "P1 eq. (6)-(7); P2 eq. (3)-(5)",
        "R = n_realizations", lambda d, o: o["n_realizations"],
        ("context_dim must be 1 (scalar positions; use fstripe_sff for vector labels)",
         "n_sines >= 1, n_realizations >= 1",
         "noise redrawn every forward in train(), fixed buffers in eval()"),
        "docs/pe.md (fstripe_sff, spe), docs/papers.md §4"),
    "ape": _Facts(
        "APE: sinusoidal PE of the step index, added to the input", "input-level",
        "input (any attention)", "Vaswani et al. 2017", "none (sinusoidal table)",
        "d_model (embedding added to the input projection)", lambda d, o: None,
        ("needs d_model", "label values are ignored: only the step index t = 0..T-1 is encoded"),
        "docs/pe.md (ape), docs/papers.md §7"),
    "sape": _Facts(
        "S-APE: P3's sinusoidal structure APE, added to the input", "input-level",
        "input (any attention)", "P3 (ICASSP 2024), S S-APE", "none (P3 official code)",
        "d_model (embedding added to the input projection)", lambda d, o: None,
        ("needs d_model", "bases: one per context column, each > 1"),
        "docs/pe.md (sape), docs/papers.md §7"),
    "srpe": _Facts(
        "S-RPE: P3's sinusoidal structure RPE, a softmax logit bias", "softmax logit bias",
        "softmax only", "P3 (ICASSP 2024), S S-RPE; P2 baseline", "none (P3 official code)",
        "none: a bias (B, H, Tq, Tk), or folded into q, k as D + F columns", lambda d, o: None,
        ('needs attention="softmax" (ConfigError with linear attention)',
         "d_model == n_heads * head_dim", "quadratic in T",
         "distinct in {'auto', 'always', 'never'}"),
        "docs/pe.md (srpe), docs/papers.md §7"),
}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return repr(value)


def _annotation(param: inspect.Parameter) -> str:
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return ""
    return ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))


def parameter_docs(cls: type) -> dict[str, str]:
    """Name → text of the numpy-style ``Parameters`` section of ``cls``'s docstring.

    A line "a, b : int" documents both a and b.
    """
    lines = (inspect.getdoc(cls) or "").splitlines()
    docs: dict[str, list[str]] = {}
    current: list[str] = []
    inside = False
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if underline:  # a section header
            inside = line.strip() == "Parameters"
            current = []
            continue
        if not inside or set(line.strip()) == {"-"}:
            continue
        if line and not line[0].isspace():
            current = [n.strip() for n in line.split(":")[0].split(",") if n.strip()]
            for n in current:
                docs[n] = []
        elif line.strip():
            for n in current:
                docs[n].append(line.strip())
    return {n: " ".join(text) for n, text in docs.items()}


def options_of(cls: type) -> tuple[Option, ...]:
    """The options of ``cls``: every ``__init__`` parameter except the sizes (head_dim, n_heads, context_dim,
    d_model), with the default read from the signature and the meaning from the class docstring."""
    helps = parameter_docs(cls)
    out = []
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in STRUCTURAL or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = None if param.default is inspect.Parameter.empty else param.default
        out.append(Option(name, default, _annotation(param), helps.get(name, "")))
    return tuple(out)


def _registry() -> dict[str, type]:
    from stripes.pe import _REGISTRY

    return dict(_REGISTRY)


def catalog() -> dict[str, PEInfo]:
    """Name → :class:`PEInfo` for every registered PE, in registry order.

    Raises ConfigError if a registered PE has no catalog entry (or an entry names no registered PE).
    """
    registry = _registry()
    missing, stale = sorted(set(registry) - set(_FACTS)), sorted(set(_FACTS) - set(registry))
    if missing or stale:
        raise ConfigError(f"PE catalog out of date: no entry for {missing}, entries for unknown {stale}")
    out = {}
    for name, cls in registry.items():
        f = _FACTS[name]
        out[name] = PEInfo(
            name=name, title=f.title, cls=cls, kind=f.kind, attention=f.attention, paper=f.paper,
            equations=f.equations, out_dim=f.out_dim, constraints=f.constraints, docs=f.docs,
            aliases=dict(f.aliases), note=f.note, options=options_of(cls),
        )
    return out


def expected_out_dim(name: str, head_dim: int, **options: Any) -> int | None:
    """``out_dim`` by the catalog's formula for a q/k PE (None for input and bias PEs); the tests check it
    against built modules. Options not given take the constructor's defaults."""
    info = catalog()[name]
    values = {o.name: o.default for o in info.options}
    values.update(options)
    return _FACTS[name].out_dim_fn(head_dim, values)


def catalog_json() -> list[dict[str, Any]]:
    """The catalog as JSON-ready dicts, one per PE."""
    return [info.as_dict() for info in catalog().values()]
