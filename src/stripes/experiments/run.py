"""One run of a sweep: its spec (:class:`RunSpec`), its identity (the hash of its full resolved config), its
state on disk and its execution (train or resume, then evaluate), used by every launcher.

Run folder ``<out>/<name>`` holds ``sweep_run.json`` (the spec), ``status.json`` (pending | training |
trained | evaluating | paused | failed | done, with the error of a failure), the training outputs
(``config.json``, ...), ``metrics_{bars}.json`` and, last, ``DONE``.
Worker entry point: ``python -m stripes.experiments.run RUN_DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stripes.config import config_diff as config_diff  # re-exported
from stripes.errors import BudgetExceeded, ConfigError
from stripes.fileio import atomic_write_text as atomic_write

DONE = "DONE"
STATUS = "status.json"
SPEC = "sweep_run.json"


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

    def fmt(v: Any) -> str:  # a list option (S-RPE's bases) reads as 7920+10001+11339
        if isinstance(v, (list, tuple)):
            return "+".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
        return str(v)

    opts = "".join(f"-{k}={fmt(pe_options[k])}" for k in sorted(pe_options))
    ctx = "+".join(context) if isinstance(context, list) else context
    name = f"{profile}_{pe}{opts}_{ctx}_s{seed}_lr{_fmt_lr(lr)}" + (f"_{digest}" if digest else "")
    bad = set(name) - set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.")
    if bad:
        raise ConfigError(f"run name {name!r} has characters unsafe in a folder name: {''.join(sorted(bad))}")
    return name


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
    import json

    from stripes.experiments.evaluate import evaluate_run

    if json.loads((Path(run_dir) / "config.json").read_text()).get("task") == "accompany":
        from stripes.experiments.accompany import evaluate_accompanist  # sampled, scored vs the human

        return evaluate_accompanist(run_dir, bars, data_root=data_root, cache_dir=cache_dir)
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
            if past_deadline():
                raise BudgetExceeded(f"time budget reached before training {run.name}")
            resume = (run / "checkpoints" / "last.pt").exists()
            _set_status(run, state="training", attempts=attempts, resumed=resume, error=None)
            _train(config, run, resume, data_root, cache_dir)
            _set_status(run, state="trained", trained=True)
        for bars in spec.bars:
            written = [run / f"metrics_{bars}.json", run / f"metrics_accompany_{bars}.json"]
            if any(f.exists() for f in written) and bars in st.get("evaluated", []):
                continue
            if past_deadline():
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


def past_deadline() -> bool:
    """True when ``$STRIPES_DEADLINE`` (a sweep's time budget) has passed."""
    from stripes.train.loop import parse_deadline

    d = os.environ.get("STRIPES_DEADLINE")
    return bool(d) and time.time() >= parse_deadline(d)


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
    cmd = [sys.executable, "-m", "stripes.experiments.run", str(run_dir)]
    if data_root is not None:
        cmd += ["--data-root", str(data_root)]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    return cmd


def mark_worker_exit(run: Path, rc: int, log_file: Path | str) -> str:
    """Final state of a run whose worker process exited with ``rc`` (a crash that left no record is
    recorded as a failure)."""
    state = read_status(run).get("state")
    if state == "paused" and rc == 0:  # the worker paused it cleanly (a crash after a pause is a failure)
        return "paused"
    if rc != 0 and state != "failed" and not (run / DONE).exists():
        _set_status(run, state="failed", failed_during=state,
                    error=f"worker exited with code {rc} (see {log_file})")
        return "failed"
    return "done" if (run / DONE).exists() else "failed"


def main(argv: list[str] | None = None) -> int:
    """Worker entry point: ``python -m stripes.experiments.run RUN_DIR [--data-root D] [--cache-dir C]``."""
    p = argparse.ArgumentParser(prog="python -m stripes.experiments.run",
                                description="execute one prepared sweep run")
    p.add_argument("run_dir")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    state = execute_run(a.run_dir, a.data_root, a.cache_dir)
    return 0 if state in ("done", "paused") else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
