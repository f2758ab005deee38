"""Sweeps: expand a JSON grid (methods x contexts x seeds x learning rates) into runs, train and evaluate each
in its own folder, resumably, optionally several at a time in subprocesses.

A sweep config (``stripes/configs/sweeps/<name>.json`` or any JSON file)::

    {"name": "p1-table2", "table": "p1-table2", "profile": "quick", "bars": [16, 64],
     "seeds": {"quick": [0, 1, 2], "paper": [0, 1, 2, 3, 4]},       # or a plain list
     "lrs": {"quick": [null], "paper": [1e-4, 5e-4, 1e-3]},         # null = the profile's train.lr
     "contexts": ["time", "rep", "key", "bin"],
     "overrides": {"train.epochs": 4},                              # optional, dotted config keys
     "methods": [{"label": "RoPE(A)", "pe": "rope", "pe_options": {"variant": "A"}},
                 {"label": "F-StrIPE:C", "pe": "fstripe", "context": "chord"},   # fixed context
                 {"label": "RoPE(B)", "pe": "rope", "pe_options": {"variant": "B"}, "contexts": ["rep"]},
                 {"label": "S S-RPE", "pe": "srpe", "attention": "softmax"}]}

Each run gets the folder ``<out>/<name>`` (its axes plus the hash of its resolved config,
:func:`stripes.experiments.run.run_name`); the folder layout, states and execution are in
:mod:`stripes.experiments.run`. A run with ``DONE`` is never rerun; any other run is resumed. A failed run is
recorded and the sweep goes on; running the sweep again retries it.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from stripes.errors import ConfigError
from stripes.experiments.run import (
    DONE,
    SPEC,
    STATUS,
    RunSpec,
    check_run_identity,
    config_diff,
    config_hash,
    execute_run,
    mark_worker_exit,
    prepare_run,
    read_status,
    run_name,
    worker_command,
)
from stripes.fileio import atomic_write_text as atomic_write

# the run-level names are re-exported from stripes.experiments.run (the sweep API of earlier versions)
__all__ = [
    "check_run_identity", "config_diff", "config_hash", "DONE", "execute_run", "expand",
    "filter_contexts", "filter_methods", "find_sweep_config", "list_sweeps", "load_sweep", "mark_worker_exit",
    "prepare_run", "read_status", "run_name", "run_sweep", "RunSpec", "SPEC", "STATUS", "worker_command",
]

_METHOD_KEYS = {"label", "pe", "pe_options", "attention", "context", "contexts", "overrides"}
_SWEEP_KEYS = {"name", "table", "description", "profile", "bars", "seeds", "lrs", "contexts", "overrides",
               "methods"}


def _by_profile(value: Any, profile: str, key: str) -> list[Any]:
    if isinstance(value, dict):
        if profile not in value:
            raise ConfigError(f"sweep '{key}' has no entry for profile {profile!r} (has {', '.join(value)})")
        value = value[profile]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"sweep '{key}' must be a non-empty list (or a mapping profile -> list)")
    return value


def find_sweep_config(name_or_path: str | os.PathLike) -> Path:
    """A JSON path, or the name of a bundled sweep (``p1-table2``, ``p1-table3``, ``p2-table1``)."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        if not p.is_file():
            raise ConfigError(f"sweep config not found: {p}")
        return p
    res = resources.files("stripes") / "configs" / "sweeps" / f"{name_or_path}.json"
    if not res.is_file():
        raise ConfigError(f"unknown sweep {str(name_or_path)!r}; bundled: {', '.join(list_sweeps())}")
    return Path(str(res))


def list_sweeps() -> list[str]:
    """Names of the bundled sweep configs."""
    root = resources.files("stripes") / "configs" / "sweeps"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


def load_sweep(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Read and check the structure of a sweep config (no expansion)."""
    path = find_sweep_config(name_or_path)
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"sweep config {path} is not valid JSON: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ConfigError(f"sweep config {path} must be a JSON object")
    unknown = set(cfg) - _SWEEP_KEYS
    if unknown:
        raise ConfigError(f"sweep config {path}: unknown key(s) {', '.join(sorted(unknown))}")
    methods = cfg.get("methods")
    if not isinstance(methods, list) or not methods:
        raise ConfigError(f"sweep config {path}: 'methods' must be a non-empty list")
    for m in methods:
        if not isinstance(m, dict) or "pe" not in m:
            raise ConfigError(f"sweep config {path}: each method needs at least a 'pe' ({m!r})")
        bad = set(m) - _METHOD_KEYS
        if bad:
            raise ConfigError(f"sweep config {path}: method {m.get('label', m['pe'])}: unknown key(s) {bad}")
    cfg.setdefault("name", path.stem)
    return cfg


def expand(cfg: dict[str, Any], profile: str | None = None, n_seeds: int | None = None,
           extra_overrides: dict[str, Any] | None = None, validate: bool = True,
           lrs: Sequence[float] | None = None) -> list[RunSpec]:
    """All runs of a sweep (methods x contexts x seeds x lrs), deduplicated by name, in a stable order.

    ``n_seeds`` keeps the first N seeds (more than listed: the next integers); ``extra_overrides`` are applied
    to every run. Each run's config is resolved (unknown context names or keys raise ConfigError) and hashed
    into its name; with ``validate`` unknown PE names are reported first, with the list of known ones."""
    profile = profile or cfg.get("profile", "quick")
    from stripes.config import list_profiles

    if profile not in list_profiles():
        raise ConfigError(f"profile must be one of {', '.join(list_profiles())}, got {profile!r}")
    seeds = [int(s) for s in _by_profile(cfg.get("seeds", [0]), profile, "seeds")]
    if n_seeds is not None:
        if n_seeds < 1:
            raise ConfigError("--seeds must be >= 1")
        extra = [max(seeds, default=-1) + 1 + i for i in range(n_seeds - len(seeds))]
        seeds = seeds[:n_seeds] + extra  # more than listed: the next integers (e.g. 5 seeds as P1)
    lrs = list(lrs) if lrs else _by_profile(cfg.get("lrs", [None]), profile, "lrs")  # replaces the grid
    bars = [int(b) for b in cfg.get("bars", [16, 64])]
    contexts = cfg.get("contexts", ["time"])
    base_ov = {**cfg.get("overrides", {}), **(extra_overrides or {})}
    if validate:
        from stripes.pe import list_pes

        known = list_pes()
        for m in cfg["methods"]:
            if m["pe"] not in known:
                raise ConfigError(f"unknown PE {m['pe']!r} in sweep {cfg['name']}; known: {', '.join(known)}")
    specs: dict[str, RunSpec] = {}
    for m in cfg["methods"]:
        if "context" in m:
            ctxs: list[Any] = [m["context"]]
        else:
            ctxs = [c for c in contexts if c in m.get("contexts", contexts)]
        for ctx, seed, lr in itertools.product(ctxs, seeds, lrs):
            spec = RunSpec(name="", label=m.get("label", m["pe"]), table=cfg.get("table", cfg["name"]),
                           profile=profile, pe=m["pe"], context=ctx, seed=seed,
                           lr=None if lr is None else float(lr), bars=bars, attention=m.get("attention"),
                           pe_options=dict(m.get("pe_options", {})),
                           overrides={**base_ov, **m.get("overrides", {})})
            rc = spec.resolve_config()
            spec.name = run_name(rc.pe, rc.model.pe_options, rc.context, seed, rc.train.lr, profile,
                                 config_hash(rc))  # named from the resolved config, not the spec
            specs.setdefault(spec.name, spec)  # equal names = equal resolved configs: one run
    # seed-major order: an interrupted or budget-limited sweep has whole seeds of every cell first
    order = {s: i for i, s in enumerate(seeds)}
    return sorted(specs.values(), key=lambda s: order[s.seed])


def _names(value: str | Sequence[str]) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ["a", "b"]."""
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)


def filter_methods(specs: Sequence[RunSpec], methods: str | Sequence[str] | None) -> list[RunSpec]:
    """Keep the runs whose method label (``RoPEPool``) or PE name (``ropepool``) is in ``methods``
    (comma-separated or a list; None keeps all). A name that matches no run raises ConfigError."""
    if methods is None:
        return list(specs)
    want = _names(methods)
    known = {s.label for s in specs} | {s.pe for s in specs}
    bad = [m for m in want if m not in known]
    if bad:
        have = ", ".join(sorted(known))
        raise ConfigError(f"no run of method(s) {', '.join(bad)} in this sweep; it has {have}")
    return [s for s in specs if s.label in want or s.pe in want]


def filter_contexts(specs: Sequence[RunSpec], contexts: str | Sequence[str] | None) -> list[RunSpec]:
    """Keep the runs whose context (or every part of a multi-context) is in ``contexts`` (comma-separated
    or a list; None keeps all), in order. An unknown context name raises ConfigError."""
    if contexts is None:
        return list(specs)
    from stripes.config import CONTEXT_ALIASES, CONTEXT_NAMES
    from stripes.data.contexts import parse_variant

    want = _names(contexts)
    try:
        bad = [c for c in want if c not in CONTEXT_NAMES and parse_variant(c) is None]
    except ValueError as exc:  # a BIN variant in a non-canonical spelling
        raise ConfigError(str(exc)) from None
    if bad:
        raise ConfigError(f"unknown context(s) {', '.join(bad)}; choose among {', '.join(CONTEXT_NAMES)} "
                          "(or bin_corrupt<rate>, bin_shift<beats>)")
    canon = {CONTEXT_ALIASES.get(c, c) for c in want}  # "m" and "melody" select the same runs
    out = []
    for s in specs:
        parts = [s.context] if isinstance(s.context, str) else list(s.context)
        if all(CONTEXT_ALIASES.get(p, p) in canon for p in parts):
            out.append(s)
    return out


def run_sweep(specs: Sequence[RunSpec], out: str | os.PathLike, jobs: int = 1, data_root: Any = None,
              cache_dir: Any = None, log: Callable[[str], None] = print,
              launcher: Any = None, budget_min: float | None = None) -> dict[str, Any]:
    """Run every spec not yet done into ``out/<name>``; returns {"done": [...], "failed": [...],
    "skipped": [...], "paused": [...]} (skipped = already DONE before this call; paused = stopped or not
    started because ``budget_min`` minutes ran out) and writes ``out/sweep_status.json``.
    A budget sets ``$STRIPES_DEADLINE``: runs stop after a checkpoint, no run or evaluation starts past it,
    and the same call later resumes them.

    ``launcher`` (:mod:`stripes.experiments.launchers`) decides where runs execute; default: in this process
    for ``jobs <= 1``, else ``jobs`` local subprocesses."""
    from stripes.experiments.launchers import LocalLauncher

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    todo, skipped = [], []
    for spec in specs:
        run = prepare_run(spec, root)
        (skipped if (run / DONE).exists() else todo).append(run)
    launcher = launcher or LocalLauncher(jobs)
    previous = os.environ.get("STRIPES_DEADLINE")
    if budget_min is not None:
        os.environ["STRIPES_DEADLINE"] = str(time.time() + 60.0 * budget_min)
    try:
        return _run(specs, root, todo, skipped, launcher, data_root, cache_dir, log)
    finally:  # the budget is this call's only: never leak it into later runs of the same process
        if previous is None:
            os.environ.pop("STRIPES_DEADLINE", None)
        else:
            os.environ["STRIPES_DEADLINE"] = previous


def _run(specs: Sequence[RunSpec], root: Path, todo: list[Path], skipped: list[Path], launcher: Any,
         data_root: Any, cache_dir: Any, log: Callable[[str], None]) -> dict[str, Any]:
    log(f"sweep: {len(specs)} runs, {len(skipped)} already done, {len(todo)} to run ({launcher.describe()})")
    results = launcher.run(todo, data_root, cache_dir, log) if todo else {}
    summary = {
        "done": sorted(n for n, s in results.items() if s == "done"),
        "failed": sorted(n for n, s in results.items() if s == "failed"),
        "skipped": sorted(r.name for r in skipped),
        "paused": sorted(n for n, s in results.items() if s == "paused"),
    }
    runs = {s.name: read_status(root / s.name).get("state", "pending") for s in specs}
    atomic_write(root / "sweep_status.json", json.dumps({"runs": runs, **summary}, indent=1) + "\n")
    return summary


