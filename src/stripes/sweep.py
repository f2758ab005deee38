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
import itertools
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from stripes.errors import ConfigError
from stripes.fileio import atomic_write_text as atomic_write

PROFILES = ("smoke", "quick", "paper")
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


def run_name(pe: str, pe_options: dict[str, Any], context: str | list[str], seed: int, lr: float,
             profile: str) -> str:
    """Folder name from the parameters, e.g. ``quick_rope-variant=A_bin_s0_lr5e-4`` (deterministic)."""
    opts = "".join(f"-{k}={pe_options[k]}" for k in sorted(pe_options))
    ctx = "+".join(context) if isinstance(context, list) else context
    name = f"{profile}_{pe}{opts}_{ctx}_s{seed}_lr{_fmt_lr(lr)}"
    bad = set(name) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.")
    if bad:
        raise ConfigError(f"run name {name!r} has characters unsafe in a folder name: {''.join(sorted(bad))}")
    return name


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
           extra_overrides: dict[str, Any] | None = None, validate: bool = True) -> list[RunSpec]:
    """All runs of a sweep (methods x contexts x seeds x lrs), deduplicated by name, in a stable order.

    ``n_seeds`` keeps the first N seeds (more than listed: the next integers); ``extra_overrides`` are applied
    to every run. With ``validate`` each run's config is resolved (unknown PE/context names or keys raise
    ConfigError)."""
    profile = profile or cfg.get("profile", "quick")
    if profile not in PROFILES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    seeds = [int(s) for s in _by_profile(cfg.get("seeds", [0]), profile, "seeds")]
    if n_seeds is not None:
        if n_seeds < 1:
            raise ConfigError("--seeds must be >= 1")
        extra = [max(seeds, default=-1) + 1 + i for i in range(n_seeds - len(seeds))]
        seeds = seeds[:n_seeds] + extra  # more than listed: the next integers (e.g. 5 seeds as P1)
    lrs = _by_profile(cfg.get("lrs", [None]), profile, "lrs")
    bars = [int(b) for b in cfg.get("bars", [16, 64])]
    contexts = cfg.get("contexts", ["time"])
    base_ov = {**cfg.get("overrides", {}), **(extra_overrides or {})}
    if validate:
        from stripes.pe import list_pes

        known = list_pes()
        for m in cfg["methods"]:
            if m["pe"] not in known:
                raise ConfigError(f"unknown PE {m['pe']!r} in sweep {cfg['name']}; known: {', '.join(known)}")
    profile_lr: float | None = None
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
            if spec.lr is None or validate:
                rc = spec.resolve_config()
                if spec.lr is None:
                    profile_lr = rc.train.lr
            eff_lr = spec.lr if spec.lr is not None else profile_lr
            assert eff_lr is not None
            spec.name = run_name(spec.pe, spec.pe_options, ctx, seed, eff_lr, profile)
            specs.setdefault(spec.name, spec)
    return list(specs.values())


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
    from stripes.evaluate import evaluate_run

    return evaluate_run(run_dir, bars=bars, data_root=data_root, cache_dir=cache_dir)


def execute_run(run_dir: str | os.PathLike, data_root: Any = None, cache_dir: Any = None) -> str:
    """Train (or resume) then evaluate the run described by ``run_dir/sweep_run.json``.

    Returns the final state ("done" or "failed"); never raises for a failure of the run itself."""
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
        if not st.get("trained"):
            resume = (run / "checkpoints" / "last.pt").exists()
            _set_status(run, state="training", attempts=attempts, resumed=resume, error=None)
            _train(config, run, resume, data_root, cache_dir)
            _set_status(run, state="trained", trained=True)
        for bars in spec.bars:
            if (run / f"metrics_{bars}.json").exists() and bars in st.get("evaluated", []):
                continue
            _set_status(run, state="evaluating", bars=bars, attempts=attempts)
            _evaluate(run, bars, data_root, cache_dir)
            st = _set_status(run, evaluated=sorted(set(read_status(run).get("evaluated", [])) | {bars}))
        _set_status(run, state="done", error=None, traceback=None)
        atomic_write(run / DONE, time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        return "done"
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one run failing must not stop the sweep
        prev = read_status(run).get("state", "pending")
        _set_status(run, state="failed", failed_during=prev, attempts=attempts,
                    error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
        return "failed"


def prepare_run(spec: RunSpec, out: Path) -> Path:
    """Create the run folder and its spec (kept as is when it exists with the same spec)."""
    run = out / spec.name
    run.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(spec), indent=1, sort_keys=True) + "\n"
    if not (run / SPEC).exists() or (run / SPEC).read_text() != text:
        atomic_write(run / SPEC, text)
    if not (run / STATUS).exists():
        _set_status(run, state="pending", attempts=0)
    return run


def worker_command(run_dir: Path, data_root: Any, cache_dir: Any) -> list[str]:
    """Command line that executes one run in a fresh Python process."""
    cmd = [sys.executable, "-m", "stripes.sweep", str(run_dir)]
    if data_root is not None:
        cmd += ["--data-root", str(data_root)]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    return cmd


def _run_subprocess(run: Path, data_root: Any, cache_dir: Any, threads: int) -> str:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    log = run / "sweep_worker.log"
    with open(log, "a", encoding="utf-8") as fh:
        rc = subprocess.run(worker_command(run, data_root, cache_dir), stdout=fh, stderr=subprocess.STDOUT,
                            env=env, check=False).returncode
    state = read_status(run).get("state")
    if rc != 0 and state != "failed" and not (run / DONE).exists():
        _set_status(run, state="failed", failed_during=state,
                    error=f"worker exited with code {rc} (see {log})")
        return "failed"
    return "done" if (run / DONE).exists() else "failed"


def run_sweep(specs: Sequence[RunSpec], out: str | os.PathLike, jobs: int = 1, data_root: Any = None,
              cache_dir: Any = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every spec not yet done into ``out/<name>``; returns {"done": [...], "failed": [...],
    "skipped": [...]} (skipped = already DONE before this call) and writes ``out/sweep_status.json``."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    todo, skipped = [], []
    for spec in specs:
        run = prepare_run(spec, root)
        (skipped if (run / DONE).exists() else todo).append(run)
    log(f"sweep: {len(specs)} runs, {len(skipped)} already done, {len(todo)} to run (jobs={jobs})")
    results: dict[str, str] = {}
    if jobs <= 1:
        for i, run in enumerate(todo, 1):
            log(f"[{i}/{len(todo)}] {run.name}")
            results[run.name] = execute_run(run, data_root, cache_dir)
            if results[run.name] == "failed":
                log(f"  failed: {read_status(run).get('error')}")
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futs = {r.name: pool.submit(_run_subprocess, r, data_root, cache_dir, threads) for r in todo}
            for name, fut in futs.items():
                results[name] = fut.result()
                log(f"{name}: {results[name]}")
    summary = {
        "done": sorted(n for n, s in results.items() if s == "done"),
        "failed": sorted(n for n, s in results.items() if s == "failed"),
        "skipped": sorted(r.name for r in skipped),
    }
    runs = {s.name: read_status(root / s.name).get("state", "pending") for s in specs}
    atomic_write(root / "sweep_status.json", json.dumps({"runs": runs, **summary}, indent=1) + "\n")
    return summary


def reproduce(tables: Sequence[str], profile: str = "quick", out: str | os.PathLike | None = None,
              n_seeds: int | None = None, jobs: int = 1, overrides: dict[str, Any] | None = None,
              data_root: Any = None, cache_dir: Any = None, mi: bool = True,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the sweeps of ``tables`` into ``out/runs`` (shared folders: a run common to two tables runs
    once), then the MI table into ``out/mi`` (skipped when ``mi.json`` exists) and the report into
    ``out/report``. Returns {"report": path, "failed": [run names], "runs": n}."""
    from stripes.analysis.report import make_report

    if not tables:
        raise ConfigError("no tables given (e.g. --tables p1-table2,p1-table3,p2-table1)")
    root = Path(out or f"results/reproduce/{profile}")
    specs: dict[str, RunSpec] = {}
    for t in tables:
        for s in expand(load_sweep(t), profile, n_seeds, overrides):
            specs.setdefault(s.name, s)
    summary = run_sweep(list(specs.values()), root / "runs", jobs, data_root, cache_dir, log)
    mi_json = root / "mi" / "mi.json"
    if mi and not mi_json.exists():
        from stripes.analysis.mi import mi_table, write_mi_table

        log("MI table (P1 Table I) ...")
        write_mi_table(mi_table(data_root, cache_dir, split="train"), root / "mi")
    report = make_report([root / "runs"], root / "report", mi_json if mi_json.exists() else None)
    return {"report": report, "failed": summary["failed"], "runs": len(specs)}


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: ``python -m stripes.sweep RUN_DIR [--data-root D] [--cache-dir C]``."""
    p = argparse.ArgumentParser(prog="python -m stripes.sweep", description="execute one prepared sweep run")
    p.add_argument("run_dir")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    return 0 if execute_run(a.run_dir, a.data_root, a.cache_dir) == "done" else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
