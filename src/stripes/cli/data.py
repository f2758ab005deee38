"""``stripes data fetch`` and ``stripes data prepare``."""

from __future__ import annotations

import argparse
import json


def _fetch(args: argparse.Namespace) -> int:
    from stripes.data import resolve_data_root
    from stripes.data.fetch import fetch

    dest = resolve_data_root(args.dest)
    manifest = fetch(dest, base_url=args.base_url, raw_base_url=args.raw_base_url, progress=not args.quiet)
    for name, entry in manifest.items():
        state = "downloaded" if entry.get("downloaded") else "already present"
        print(f"{name}: {state} ({entry.get('n_songs') or entry.get('n_files')} "
              f"{'songs' if entry.get('n_songs') else 'files'})")
    print(f"data root: {dest}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from stripes._extras import require
    from stripes.data.prepare import prepare

    require("symusic")  # before any data check: a missing toolkit is named first

    folder = prepare(args.data_root, args.cache_dir, bars=args.bars, test_bars=tuple(args.test_bars),
                     skip_bad=args.skip_bad, songs=args.songs, workers=args.workers, progress=not args.quiet,
                     force=args.force)
    manifest = json.loads((folder / "manifest.json").read_text())
    print(f"prepared {manifest['n_songs']} songs {manifest['songs_per_split']} in {folder}")
    print(f"windows: {json.dumps(manifest['windows'])}")
    if manifest["skipped"]:
        print(f"skipped {len(manifest['skipped'])} song(s): "
              + "; ".join(f"{s['song_id']}: {s['reason']}" for s in manifest["skipped"]))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="download and prepare POP909",
                                   description="Download and prepare the POP909 data.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    f = sub.add_parser("fetch", help="download POP909, the structure annotations and the split")
    f.add_argument("--dest", help="data root (default: $STRIPES_DATA or ~/.cache/stripes/data)")
    f.add_argument("--base-url", help="base URL for archives (default: $STRIPES_GITHUB_URL or github.com)")
    f.add_argument("--raw-base-url",
                   help="base URL for files (default: $STRIPES_GITHUB_RAW_URL or raw.githubusercontent.com)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=_fetch)

    p = sub.add_parser("prepare", help="build the aligned pianorolls, labels and windows (cached)")
    p.add_argument("--data-root", help="raw data (default: $STRIPES_DATA or ~/.cache/stripes/data)")
    p.add_argument("--cache-dir", help="cache (default: $STRIPES_CACHE or ~/.cache/stripes/prepared)")
    p.add_argument("--bars", type=int, default=16, help="train/val/test window length in bars (8, 16, ...)")
    p.add_argument("--test-bars", type=int, nargs="*", default=[64], help="extra test window lengths in bars")
    p.add_argument("--skip-bad", action="store_true", help="skip bad songs (recorded in the manifest)")
    p.add_argument("--songs", type=int, nargs="+", help="only these song ids (must be in split.npz)")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)
