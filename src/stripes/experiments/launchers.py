"""Where sweep runs execute. A launcher takes prepared run folders (``sweep_run.json`` written) and returns
``{run name: "done" | "failed"}``; every backend ends in :func:`stripes.experiments.run.execute_run`, so
resume, failure records and the ``DONE`` marker behave the same everywhere.

- :class:`LocalLauncher` (``--launcher local``, default): in this process (``jobs=1``) or ``jobs`` worker
  subprocesses on this machine, each with ``cpu_count // jobs`` threads.
- :class:`SubmititLauncher` (``--launcher submitit``): one Slurm job per run through `submitit
  <https://github.com/facebookincubator/submitit>`_ (``pip install stripes[cluster]``); its local executor
  (``cluster="local"``) runs the same jobs as local processes, which is how the tests exercise it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stripes.errors import ConfigError

Log = Callable[[str], None]


@dataclass
class LocalLauncher:
    """Runs on this machine: in-process for ``jobs <= 1``, else ``jobs`` subprocesses at a time."""

    jobs: int = 1

    def describe(self) -> str:
        return f"local, jobs={self.jobs}"

    def run(self, runs: Sequence[Path], data_root: Any, cache_dir: Any, log: Log) -> dict[str, str]:
        from stripes.experiments import run as runmod

        results: dict[str, str] = {}
        if self.jobs <= 1:
            for i, run in enumerate(runs, 1):
                if runmod.past_deadline():
                    results[run.name] = _pause(run)
                    continue
                log(f"[{i}/{len(runs)}] {run.name}")
                results[run.name] = runmod.execute_run(run, data_root, cache_dir)
                if results[run.name] == "failed":
                    log(f"  failed: {runmod.read_status(run).get('error')}")
            return results
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futs = {r.name: pool.submit(_subprocess_run, r, data_root, cache_dir, threads) for r in runs}
            for name, fut in futs.items():
                results[name] = fut.result()
                log(f"{name}: {results[name]}")
        return results


def _pause(run: Path) -> str:
    """Record a run that the budget kept from starting as paused (its status.json says so too)."""
    from stripes.experiments.run import _set_status

    _set_status(run, state="paused", note="time budget reached before it started")
    return "paused"


def _subprocess_run(run: Path, data_root: Any, cache_dir: Any, threads: int) -> str:
    from stripes.experiments import run as runmod

    if runmod.past_deadline():  # the budget ran out while this run waited for a slot
        return _pause(run)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    log_file = run / "sweep_worker.log"
    with open(log_file, "a", encoding="utf-8") as fh:
        rc = subprocess.run(runmod.worker_command(run, data_root, cache_dir), stdout=fh,
                            stderr=subprocess.STDOUT, env=env, check=False).returncode
    return runmod.mark_worker_exit(run, rc, log_file)


def _job(run_dir: str, data_root: Any, cache_dir: Any) -> str:
    """What one submitit job executes (a module-level function, so that it pickles by reference)."""
    from stripes.experiments.run import execute_run

    return execute_run(run_dir, data_root, cache_dir)


@dataclass
class SubmititLauncher:
    """One job per run through submitit: ``cluster="slurm"`` (default) or ``"local"`` (subprocesses).

    ``slurm`` holds extra ``slurm_*`` parameters passed through (e.g. ``{"slurm_account": "x"}``); logs go to
    ``folder`` (default ``<sweep out>/submitit``)."""

    folder: str | os.PathLike | None = None
    cluster: str = "slurm"
    partition: str | None = None
    timeout_min: int = 60
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: int | None = None
    slurm: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"submitit ({self.cluster}{', ' + self.partition if self.partition else ''})"

    def _executor(self, default_folder: Path) -> Any:
        try:
            import submitit
        except ImportError as exc:
            raise ConfigError("--launcher submitit needs submitit: pip install 'stripes[cluster]'") from exc
        folder = Path(self.folder) if self.folder else default_folder
        ex = submitit.AutoExecutor(folder=str(folder), cluster=self.cluster)
        params: dict[str, Any] = {"timeout_min": self.timeout_min, "cpus_per_task": self.cpus_per_task,
                                  "gpus_per_node": self.gpus_per_node, "name": "stripes-sweep"}
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.partition and self.cluster == "slurm":
            params["slurm_partition"] = self.partition
        params.update(self.slurm if self.cluster == "slurm" else {})
        ex.update_parameters(**params)
        return ex

    def run(self, runs: Sequence[Path], data_root: Any, cache_dir: Any, log: Log) -> dict[str, str]:
        from stripes.experiments import run as runmod

        if not runs:
            return {}
        ex = self._executor(Path(runs[0]).parent / "submitit")
        jobs = {}
        for run in runs:
            jobs[run.name] = (run, ex.submit(_job, str(run), data_root, cache_dir))
            log(f"submitted {run.name}: job {jobs[run.name][1].job_id}")
        results: dict[str, str] = {}
        for name, (run, job) in jobs.items():
            try:
                results[name] = str(job.result())
            except Exception as exc:  # the job died (killed, out of time): record it like a dead worker
                runmod.mark_worker_exit(run, 1, f"submitit job {job.job_id}: {type(exc).__name__}")
                results[name] = "failed"
            log(f"{name}: {results[name]}")
        return results


def make_launcher(name: str, jobs: int = 1, **options: Any) -> LocalLauncher | SubmititLauncher:
    """``"local"`` or ``"submitit"`` (options: folder, cluster, partition, timeout_min, gpus_per_node,
    cpus_per_task, mem_gb, slurm)."""
    if name == "local":
        return LocalLauncher(jobs)
    if name == "submitit":
        return SubmititLauncher(**{k: v for k, v in options.items() if v is not None})
    raise ConfigError(f"unknown launcher {name!r}; choose local or submitit")
