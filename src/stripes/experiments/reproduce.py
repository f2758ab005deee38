"""``stripes reproduce``: the sweeps of the chosen tables, the MI table and the report, in one resumable
command (each step skips what is already done)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stripes.errors import ConfigError, DataError
from stripes.experiments.sweep import RunSpec, expand, filter_contexts, filter_methods, load_sweep, run_sweep


def reproduce(tables: Sequence[str], profile: str = "quick", out: str | os.PathLike | None = None,
              n_seeds: int | None = None, jobs: int = 1, overrides: dict[str, Any] | None = None,
              data_root: Any = None, cache_dir: Any = None, mi: bool = True,
              log: Callable[[str], None] = print, launcher: Any = None,
              contexts: str | Sequence[str] | None = None, budget_min: float | None = None,
              lrs: Sequence[float] | None = None,
              methods: str | Sequence[str] | None = None) -> dict[str, Any]:
    """Run the sweeps of ``tables`` into ``out/runs`` (shared folders: a run common to two tables runs
    once), then the MI table into ``out/mi`` (skipped when ``mi.json`` exists) and the report into
    ``out/report``. The report folder is commit-ready: it also holds ``mi.json`` and, in ``runs/``, the
    record of every reported run (config, log, metrics, DONE; no checkpoints or pianorolls), from which
    ``stripes report`` remakes it and which a sweep skips as finished. ``contexts`` / ``methods`` keep only
    runs of those contexts / methods (e.g. "bin,time", "RoPEPool").
    Returns {"report": path or None, "failed": [run names], "paused": [run names], "runs": n}."""
    from stripes.experiments.report import make_report

    if not tables:
        raise ConfigError("no tables given (e.g. --tables p1-table2,p1-table3,p2-table1)")
    root = Path(out or f"results/reproduce/{profile}")
    specs: dict[str, RunSpec] = {}
    for t in tables:
        grid = filter_contexts(expand(load_sweep(t), profile, n_seeds, overrides, lrs=lrs), contexts)
        for s in filter_methods(grid, methods):
            specs.setdefault(s.name, s)
    summary = run_sweep(list(specs.values()), root / "runs", jobs, data_root, cache_dir, log, launcher,
                        budget_min)
    mi_json = root / "mi" / "mi.json"
    if mi and not mi_json.exists():
        from stripes.analysis.mi import mi_table, write_mi_table

        log("MI table (P1 Table I) ...")
        write_mi_table(mi_table(data_root, cache_dir, split="train"), root / "mi")
    try:
        report: Path | None = make_report([root / "runs"], root / "report",
                                          mi_json if mi_json.exists() else None, table=",".join(tables),
                                          copy_runs=True)
    except DataError:
        if not summary["paused"]:
            raise
        report = None  # the budget ran out before any run was evaluated
        log("no run evaluated yet (budget reached); rerun the same command to continue")
    return {"report": report, "failed": summary["failed"], "paused": summary["paused"], "runs": len(specs)}
