"""``stripes sweep``: run a grid of trainings + evaluations, resumably (see :mod:`stripes.sweep`)."""

from __future__ import annotations

import argparse


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by ``sweep`` and ``reproduce``."""
    p.add_argument("--profile", choices=["smoke", "quick", "paper"], default=None,
                   help="run profile (default: the sweep config's, usually quick)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel subprocesses (default 1)")
    p.add_argument("--seeds", type=int, default=None,
                   help="use the first N seeds of the config (more than it lists: the next integers)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable), e.g. train.device=cuda")
    p.add_argument("--data-root", default=None, help="data folder (default $STRIPES_DATA, then the cache)")
    p.add_argument("--cache-dir", default=None, help="prepared-array cache (default $STRIPES_CACHE)")


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
    from stripes.sweep import DONE, expand, load_sweep, read_status, run_sweep

    if args.jobs < 1:
        raise ConfigError("--jobs must be >= 1")
    cfg = load_sweep(args.config)
    specs = expand(cfg, args.profile, args.seeds, parse_overrides(args.overrides))
    profile = specs[0].profile if specs else (args.profile or "quick")
    out = Path(args.out or f"results/sweeps/{profile}")
    if args.dry_run:
        for s in specs:
            run = out / s.name
            state = "done" if (run / DONE).exists() else read_status(run).get("state", "new")
            print(f"{state:<10} {s.label:<16} {s.name}")
        print(f"{len(specs)} runs in {out}")
        return 0
    summary = run_sweep(specs, out, jobs=args.jobs, data_root=args.data_root, cache_dir=args.cache_dir)
    print(f"done {len(summary['done'])}, failed {len(summary['failed'])}, "
          f"already done {len(summary['skipped'])}; status in {out / 'sweep_status.json'}")
    for name in summary["failed"]:
        print(f"  failed: {name}: {read_status(out / name).get('error')}")
    return 1 if summary["failed"] else 0
