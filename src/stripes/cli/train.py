"""``stripes train``: train one Harmonizer run (see docs/training.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _overrides(args: argparse.Namespace) -> list[str]:
    sets = list(args.set or [])
    named = {
        "pe": args.pe,
        "attention": args.attention,
        "feature_map": args.feature_map,
        "seed": args.seed,
        "train.lr": args.lr,
        "train.epochs": args.epochs,
        "train.device": args.device,
    }
    for key, value in named.items():
        if value is not None:
            sets.append(f"{key}={json.dumps(value)}")
    if args.context is not None:
        ctx = [c.strip() for c in args.context.split(",") if c.strip()]
        sets.append(f"context={json.dumps(ctx[0] if len(ctx) == 1 else ctx)}")
    return sets


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``demo`` for choosing the data."""
    p.add_argument("--data-root", help="POP909 data folder (default: $STRIPES_DATA or ~/.cache/stripes/data)")
    p.add_argument(
        "--cache-dir", help="prepared-data cache (default: $STRIPES_CACHE or ~/.cache/stripes/prepared)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a harmonization model",
        description="Train one run; writes config.json, checkpoints/, log.csv into --out.",
    )
    from stripes.config import list_profiles

    p.add_argument("--profile", default="quick", choices=list_profiles(),
                   help="config profile (default quick; cpu = the laptop reproduction)")
    p.add_argument("--config", help="JSON config file instead of a profile")
    p.add_argument("--pe", help="positional encoding (e.g. ropepool, rope_c, fstripe, nope)")
    p.add_argument("--context", help="context name(s), comma-separated (time, rep, key, bin, ...)")
    p.add_argument("--attention", choices=["linear", "softmax"])
    p.add_argument("--feature-map", dest="feature_map", help="favor, elu, relu, identity")
    p.add_argument("--seed", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.lr=5e-4"
    )
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--stop-after-epoch", type=int, help="end after this epoch (as if killed; resume later)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stripes.config import RunConfig, load_run_config
    from stripes.errors import ConfigError
    from stripes.train import train

    out = Path(args.out)
    saved = out / "config.json"
    if args.resume and saved.is_file():
        try:
            config = RunConfig.from_dict(json.loads(saved.read_text()))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{saved} is not valid JSON ({exc}); cannot resume this run") from None
        if _overrides(args):
            raise ConfigError("--resume uses the run's saved config.json; do not pass config options with it")
    else:
        config = load_run_config(args.profile, path=args.config, overrides=_overrides(args))
    train(
        config,
        out,
        resume=args.resume,
        data_root=args.data_root,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        stop_after_epoch=args.stop_after_epoch,
    )
    print(f"run written to {out}")
    return 0
