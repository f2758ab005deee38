"""``stripes reproduce``: the sweeps of the chosen tables, the MI table and the report, in one resumable
command (each step skips what is already done)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stripes.errors import ConfigError, DataError
from stripes.experiments.context_quality import CONTEXT_MI, ensure_context_mi, is_bin_family
from stripes.experiments.sweep import RunSpec, expand, filter_contexts, filter_methods, load_sweep, run_sweep

Q3_TABLE = "q3-rep-generalisation"


def reproduce(tables: Sequence[str], profile: str = "quick", out: str | os.PathLike | None = None,
              n_seeds: int | None = None, jobs: int = 1, overrides: dict[str, Any] | None = None,
              data_root: Any = None, cache_dir: Any = None, mi: bool = True,
              log: Callable[[str], None] = print, launcher: Any = None,
              contexts: str | Sequence[str] | None = None, budget_min: float | None = None,
              lrs: Sequence[float] | None = None,
              methods: str | Sequence[str] | None = None,
              reuse: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """Run the sweeps of ``tables`` into ``out/runs`` (shared folders: a run common to two tables runs
    once), then the MI table into ``out/mi`` (skipped when ``mi.json`` exists; with degraded BIN contexts,
    question 1, also their MI in ``out/mi/context_mi.json``, each context once) and the report into
    ``out/report``. The report folder is commit-ready: it also holds ``mi.json`` and, in ``runs/``, the
    record of every reported run (config, log, metrics, DONE; no checkpoints or pianorolls), from which
    ``stripes report`` remakes it and which a sweep skips as finished. ``contexts`` / ``methods`` keep only
    runs of those contexts / methods (e.g. "bin,time", "RoPEPool"). ``reuse`` names committed report folders
    (or their ``runs/``): the finished records there of this command's runs, and their ``mi.json``, are
    copied into ``out`` first, so a sweep continued on another machine or in a later session reruns nothing
    that is already committed.
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
    reused = reuse_records(reuse, list(specs), root)
    if reused:
        log(f"reused {reused} finished run record(s) from {', '.join(str(r) for r in reuse)}")
    summary = run_sweep(list(specs.values()), root / "runs", jobs, data_root, cache_dir, log, launcher,
                        budget_min)
    mi_json = root / "mi" / "mi.json"
    if mi and not mi_json.exists():
        from stripes.analysis.mi import mi_table, write_mi_table

        log("MI table (P1 Table I) ...")
        write_mi_table(mi_table(data_root, cache_dir, split="train"), root / "mi")
    variants = sorted({c for s in specs.values() for c in ([s.context] if isinstance(s.context, str)
                                                           else s.context) if is_bin_family(c)})
    if mi and any(c != "bin" for c in variants):  # question 1: the MI of each degraded BIN context
        ensure_context_mi(root / "mi" / CONTEXT_MI, variants, data_root, cache_dir, log)
    if any(s.table == Q3_TABLE for s in specs.values()):  # question 3: REP values, kernels, the hypothesis
        from stripes.analysis.rep_generalisation import analyse

        log("REP generalisation analysis (question 3) ...")
        analyse([root / "runs"], root / "report", data_root, cache_dir, log=log)
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


def reuse_records(sources: Sequence[str | os.PathLike], names: Sequence[str], root: Path) -> int:
    """Copy into ``root/runs`` each finished record (a folder with DONE) among ``names`` found in a source
    (a report folder holding ``runs/``, or a runs folder), unless ``root/runs`` already has it finished; a
    source's ``mi.json`` becomes ``root/mi/mi.json`` (its ``context_mi.json``, ``root/mi/context_mi.json``)
    when there is none. Returns the number of runs copied.
    A run's folder name hashes its resolved config and the sweep checks it against the copied config.json,
    so a record of another config is never taken for this one."""
    import shutil

    from stripes.experiments.context_quality import find_context_mi
    from stripes.experiments.report.figures import find_mi
    from stripes.experiments.run import DONE
    from stripes.fileio import atomic_path

    copied = 0
    for src in map(Path, sources):
        records = src / "runs" if (src / "runs").is_dir() else src
        if not records.is_dir():
            raise DataError(f"--reuse: {src} is not a folder (give a report folder or its runs/)")
        for name in names:
            rec, dest = records / name, root / "runs" / name
            if not (rec / DONE).is_file() or (dest / DONE).is_file():
                continue
            if dest.exists():  # an unfinished attempt of the same config: the finished record supersedes it
                shutil.rmtree(dest)
            tmp = dest.with_name(f".{name}.reuse")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(rec, tmp)
            tmp.replace(dest)
            copied += 1
        for mi, target in ((find_mi([records]), root / "mi" / "mi.json"),  # the report's search
                           (find_context_mi([records]), root / "mi" / CONTEXT_MI)):
            if mi is not None and not target.exists():
                with atomic_path(target) as t:
                    shutil.copyfile(mi, t)
    return copied
