"""``stripes sweep``: run a grid of trainings + evaluations, resumably (see :mod:`stripes.sweep`)."""

from __future__ import annotations

import argparse


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by ``sweep`` and ``reproduce``."""
    from stripes.config import list_profiles

    p.add_argument("--profile", choices=list_profiles(), default=None,
                   help="run profile (default: the sweep config's, usually quick)")
    p.add_argument("--contexts", default=None,
                   help="only these contexts, comma-separated (e.g. bin,time); default: all of the sweep")
    p.add_argument("--methods", default=None,
                   help="only these methods, comma-separated labels or PE names (e.g. RoPEPool or ropepool)")
    p.add_argument("--jobs", type=int, default=1, help="local runs in parallel subprocesses (default 1)")
    p.add_argument("--lrs", default=None,
                   help="learning rates to run instead of the sweep's grid, comma-separated (e.g. 5e-4)")
    p.add_argument("--budget-min", type=float, default=None,
                   help="stop cleanly after this many minutes (runs pause after a checkpoint; rerun resumes)")
    p.add_argument("--launcher", choices=["local", "submitit"], default="local",
                   help="where runs execute: local (default; --jobs) or submitit (one Slurm job per run)")
    p.add_argument("--cluster", default="slurm", help="submitit cluster: slurm (default) or local")
    p.add_argument("--partition", default=None, help="submitit: Slurm partition")
    p.add_argument("--time-min", type=int, default=60, help="submitit: job time limit, minutes (default 60)")
    p.add_argument("--gpus", type=int, default=0, help="submitit: GPUs per job (default 0)")
    p.add_argument("--cpus", type=int, default=2, help="submitit: CPUs per job (default 2)")
    p.add_argument("--mem-gb", type=int, default=None, help="submitit: memory per job")
    p.add_argument("--submitit-dir", default=None, help="submitit: log folder (default <out>/submitit)")
    p.add_argument("--seeds", type=int, default=None,
                   help="use the first N seeds of the config (more than it lists: the next integers)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable), e.g. train.device=cuda")
    p.add_argument("--data-root", default=None, help="data folder (default $STRIPES_DATA, then the cache)")
    p.add_argument("--cache-dir", default=None, help="prepared-array cache (default $STRIPES_CACHE)")


def parse_lrs(text: str | None) -> list[float] | None:
    """``"5e-4,1e-3"`` -> [0.0005, 0.001]; None stays None."""
    from stripes.errors import ConfigError

    if not text:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--lrs must be comma-separated numbers, got {text!r}") from exc


def launcher_from_args(args: argparse.Namespace) -> object:
    """The launcher the options ask for (``--launcher`` and the submitit options)."""
    from stripes.experiments.launchers import make_launcher

    return make_launcher(args.launcher, args.jobs, folder=args.submitit_dir, cluster=args.cluster,
                         partition=args.partition, timeout_min=args.time_min, gpus_per_node=args.gpus,
                         cpus_per_task=args.cpus, mem_gb=args.mem_gb)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sweep", help="train + evaluate a grid of runs (resumable)")
    p.add_argument("config", help="sweep JSON file or bundled name (p1-table2, p1-table3, p2-table1)")
    p.add_argument("--out", default=None, help="folder of the run folders (default results/sweeps/<profile>)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    add_common(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stripes.config import parse_overrides
    from stripes.errors import ConfigError
    from stripes.experiments.sweep import (
        DONE,
        expand,
        filter_contexts,
        filter_methods,
        load_sweep,
        read_status,
        run_sweep,
    )

    if args.jobs < 1:
        raise ConfigError("--jobs must be >= 1")
    cfg = load_sweep(args.config)
    specs = expand(cfg, args.profile, args.seeds, parse_overrides(args.overrides), lrs=parse_lrs(args.lrs))
    specs = filter_methods(filter_contexts(specs, args.contexts), args.methods)
    profile = specs[0].profile if specs else (args.profile or "quick")
    out = Path(args.out or f"results/sweeps/{profile}")
    if args.dry_run:
        for s in specs:
            run = out / s.name
            state = "done" if (run / DONE).exists() else read_status(run).get("state", "new")
            print(f"{state:<10} {s.label:<16} {s.name}")
        print(f"{len(specs)} runs in {out}")
        return 0
    summary = run_sweep(specs, out, jobs=args.jobs, data_root=args.data_root, cache_dir=args.cache_dir,
                        launcher=launcher_from_args(args), budget_min=args.budget_min)
    print(f"done {len(summary['done'])}, failed {len(summary['failed'])}, "
          f"already done {len(summary['skipped'])}, paused {len(summary['paused'])}; "
          f"status in {out / 'sweep_status.json'}")
    for name in summary["failed"]:
        print(f"  failed: {name}: {read_status(out / name).get('error')}")
    return 1 if summary["failed"] else 0
