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

Run folder ``<out>/<name>`` (name from the parameters, :func:`run_name`) holds ``sweep_run.json`` (the
spec), ``status.json`` (state: pending | training | trained | evaluating | failed | done, with the error of a
failure), ``config.json`` etc. written by training, ``metrics_{bars}.json`` and, last, ``DONE`` (written
atomically after every evaluation). A run with ``DONE`` is never rerun; any other run is resumed
(``train(..., resume=True)`` when ``checkpoints/last.pt`` exists). A failed run is recorded and the sweep
goes on; running the sweep again retries it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from stripes.errors import BudgetExceeded, ConfigError
from stripes.fileio import atomic_write_text as atomic_write

DONE = "DONE"
STATUS = "status.json"
SPEC = "sweep_run.json"
_METHOD_KEYS = {"label", "pe", "pe_options", "attention", "context", "contexts", "overrides"}
_SWEEP_KEYS = {"name", "table", "description", "profile", "bars", "seeds", "lrs", "contexts", "overrides",
               "methods"}


@dataclass
class RunSpec:
    """One point of a sweep grid."""

    name: str
    label: str
    table: str
    profile: str
    pe: str
    context: str | list[str]
    seed: int
    lr: float | None
    bars: list[int]
    attention: str | None = None
    pe_options: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    def config_overrides(self) -> dict[str, Any]:
        """Dotted-key overrides for :func:`stripes.config.load_run_config`."""
        ov: dict[str, Any] = dict(self.overrides)
        ov.update({"pe": self.pe, "context": self.context, "seed": self.seed})
        if self.attention is not None:
            ov["attention"] = self.attention
        if self.lr is not None:
            ov["train.lr"] = self.lr
        for k, v in self.pe_options.items():
            ov[f"model.pe_options.{k}"] = v
        return ov

    def resolve_config(self) -> Any:
        """The validated :class:`stripes.config.RunConfig` of this run."""
        from stripes.config import load_run_config

        return load_run_config(self.profile, overrides=self.config_overrides())


def _fmt_lr(lr: float) -> str:
    """Compact but exact: 0.0005 -> "5e-4", 0.00025 -> "2.5e-4"."""
    mant, exp = f"{lr:.6e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def config_hash(config: Any) -> str:
    """Short (8 hex) SHA-256 of a resolved config (RunConfig or dict), keys sorted: the run's identity."""
    d = config.to_dict() if hasattr(config, "to_dict") else config
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


def run_name(pe: str, pe_options: dict[str, Any], context: str | list[str], seed: int, lr: float,
             profile: str, digest: str | None = None) -> str:
    """Folder name: the main axes for a reader, then the hash of the full resolved config, e.g.
    ``quick_rope-variant=A_bin_s0_lr5e-4_1a2b3c4d``. Two configs that differ anywhere (attention, an
    override, a default) get different names; equal configs share one folder."""
    opts = "".join(f"-{k}={pe_options[k]}" for k in sorted(pe_options))
    ctx = "+".join(context) if isinstance(context, list) else context
    name = f"{profile}_{pe}{opts}_{ctx}_s{seed}_lr{_fmt_lr(lr)}" + (f"_{digest}" if digest else "")
    bad = set(name) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.")
    if bad:
        raise ConfigError(f"run name {name!r} has characters unsafe in a folder name: {''.join(sorted(bad))}")
    return name


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


def check_run_identity(run: Path, config: Any) -> None:
    """Raise ConfigError when ``run/config.json`` exists and differs from ``config`` (differing keys listed):
    a run folder is only ever reused for the exact config it was trained with."""
    f = run / "config.json"
    if not f.is_file():
        return
    try:
        saved = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{f} is unreadable ({exc}); move the run folder away to retrain it") from exc
    want = config.to_dict() if hasattr(config, "to_dict") else config
    diff = config_diff(saved, want)
    if diff:
        raise ConfigError(f"{run} was trained with another config than requested ({'; '.join(diff[:8])}"
                          f"{'; ...' if len(diff) > 8 else ''}); use another --out or remove the folder")


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
            spec.name = run_name(spec.pe, spec.pe_options, ctx, seed, rc.train.lr, profile, config_hash(rc))
            specs.setdefault(spec.name, spec)  # equal names = equal resolved configs: one run
    return list(specs.values())


def filter_contexts(specs: Sequence[RunSpec], contexts: str | Sequence[str] | None) -> list[RunSpec]:
    """Keep the runs whose context (or every part of a multi-context) is in ``contexts`` (comma-separated
    or a list; None keeps all), in order. An unknown context name raises ConfigError."""
    if contexts is None:
        return list(specs)
    want = [c.strip() for c in contexts.split(",")] if isinstance(contexts, str) else list(contexts)
    from stripes.config import CONTEXT_NAMES

    bad = [c for c in want if c not in CONTEXT_NAMES]
    if bad:
        raise ConfigError(f"unknown context(s) {', '.join(bad)}; choose among {', '.join(CONTEXT_NAMES)}")
    out = []
    for s in specs:
        parts = [s.context] if isinstance(s.context, str) else list(s.context)
        if all(p in want for p in parts):
            out.append(s)
    return out


# ---------------------------------------------------------------------------------------------- run state


def read_status(run_dir: Path) -> dict[str, Any]:
    """The run's status.json ({} when absent or unreadable); ``state`` is "done" when DONE exists."""
    st: dict[str, Any] = {}
    try:
        st = json.loads((run_dir / STATUS).read_text())
    except (OSError, json.JSONDecodeError):
        st = {}
    if (run_dir / DONE).exists():
        st["state"] = "done"
    return st


def _set_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    st = read_status(run_dir)
    st.update(fields, updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    atomic_write(run_dir / STATUS, json.dumps(st, indent=1) + "\n")
    return st


def _train(config: Any, out_dir: Path, resume: bool, data_root: Any, cache_dir: Any) -> Any:
    from stripes.train import train

    return train(config, out_dir, resume=resume, data_root=data_root, cache_dir=cache_dir)


def _evaluate(run_dir: Path, bars: int, data_root: Any, cache_dir: Any) -> Any:
    from stripes.experiments.evaluate import evaluate_run

    return evaluate_run(run_dir, bars=bars, data_root=data_root, cache_dir=cache_dir)


def execute_run(run_dir: str | os.PathLike, data_root: Any = None, cache_dir: Any = None) -> str:
    """Train (or resume) then evaluate the run described by ``run_dir/sweep_run.json``.

    Returns the final state ("done", "failed", or "paused" when the time budget ``$STRIPES_DEADLINE`` ran out:
    training stops after a checkpoint, and an evaluation is not started past the deadline); never raises
    for a failure of the run itself."""
    run = Path(run_dir)
    if (run / DONE).exists():
        return "done"
    st = read_status(run)
    attempts = int(st.get("attempts", 0)) + 1
    try:
        try:
            spec = RunSpec(**json.loads((run / SPEC).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{run / SPEC} is missing or not a sweep run spec ({exc})") from exc
        config = spec.resolve_config()
        check_run_identity(run, config)
        if not st.get("trained"):
            resume = (run / "checkpoints" / "last.pt").exists()
            _set_status(run, state="training", attempts=attempts, resumed=resume, error=None)
            _train(config, run, resume, data_root, cache_dir)
            _set_status(run, state="trained", trained=True)
        for bars in spec.bars:
            if (run / f"metrics_{bars}.json").exists() and bars in st.get("evaluated", []):
                continue
            if _past_deadline():
                raise BudgetExceeded(f"time budget reached before evaluating {run.name} at {bars} bars")
            _set_status(run, state="evaluating", bars=bars, attempts=attempts)
            _evaluate(run, bars, data_root, cache_dir)
            st = _set_status(run, evaluated=sorted(set(read_status(run).get("evaluated", [])) | {bars}))
        _set_status(run, state="done", error=None, traceback=None)
        atomic_write(run / DONE, time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        return "done"
    except KeyboardInterrupt:
        raise
    except BudgetExceeded as exc:
        _set_status(run, state="paused", error=None, note=str(exc))
        return "paused"
    except Exception as exc:  # one run failing must not stop the sweep
        prev = read_status(run).get("state", "pending")
        _set_status(run, state="failed", failed_during=prev, attempts=attempts,
                    error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
        return "failed"


def _past_deadline() -> bool:
    d = os.environ.get("STRIPES_DEADLINE")
    return bool(d) and time.time() >= float(d)


def prepare_run(spec: RunSpec, out: Path) -> Path:
    """Create the run folder and its spec (kept as is when it exists with the same spec)."""
    run = out / spec.name
    check_run_identity(run, spec.resolve_config())
    run.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(spec), indent=1, sort_keys=True) + "\n"
    if not (run / SPEC).exists() or (run / SPEC).read_text() != text:
        atomic_write(run / SPEC, text)
    if not (run / STATUS).exists():
        _set_status(run, state="pending", attempts=0)
    return run


def worker_command(run_dir: Path, data_root: Any, cache_dir: Any) -> list[str]:
    """Command line that executes one run in a fresh Python process."""
    cmd = [sys.executable, "-m", "stripes.experiments.sweep", str(run_dir)]
    if data_root is not None:
        cmd += ["--data-root", str(data_root)]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    return cmd


def mark_worker_exit(run: Path, rc: int, log_file: Path | str) -> str:
    """Final state of a run whose worker process exited with ``rc`` (a crash that left no record is
    recorded as a failure)."""
    state = read_status(run).get("state")
    if state == "paused":
        return "paused"
    if rc != 0 and state != "failed" and not (run / DONE).exists():
        _set_status(run, state="failed", failed_during=state,
                    error=f"worker exited with code {rc} (see {log_file})")
        return "failed"
    return "done" if (run / DONE).exists() else "failed"


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
    if budget_min is not None:
        os.environ["STRIPES_DEADLINE"] = str(time.time() + 60.0 * budget_min)
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


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: ``python -m stripes.experiments.sweep RUN_DIR [--data-root D] [--cache-dir C]``."""
    p = argparse.ArgumentParser(prog="python -m stripes.experiments.sweep",
                                description="execute one prepared sweep run")
    p.add_argument("run_dir")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    state = execute_run(a.run_dir, a.data_root, a.cache_dir)
    return 0 if state in ("done", "paused") else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
