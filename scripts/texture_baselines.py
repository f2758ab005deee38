"""Texture against the human piano (Yang & Lerch 2020) on the POP909 test windows: the human piano (its OA
against a song-disjoint half is the ceiling), the rule baseline (block triads on every beat) and the shipped
harmonizer's parallel output binarized as ``stripes harmonize`` does. Prints Markdown tables.

    python scripts/texture_baselines.py [--windows N] [--seeds 0 1 2] [--checkpoint RUN_DIR] [--json out.json]

With several seeds (song splits), the first seed's tables are printed, then the mean OA of every system per
seed.

Reads POP909 from ``--data-root`` / ``$STRIPES_DATA`` and the prepared cache from ``--cache-dir`` /
``$STRIPES_CACHE`` (see docs/metrics.md, "Texture against the human piano").
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--windows", type=int, default=None, help="use the first N test windows (default: all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the song split / subsampling")
    ap.add_argument("--max-pairs", type=int, default=20000, help="distances per set kept (subsampled)")
    ap.add_argument("--checkpoint", default=None, help="harmonizer model (default: the shipped one)")
    ap.add_argument("--no-harmonizer", action="store_true", help="leave the harmonizer out (no torch model)")
    ap.add_argument("--json", default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)

    from stripes.data.dataset import HarmonizationDataset
    from stripes.metrics import onsets, rule_accompaniment
    from stripes.metrics.texture import format_texture_table, texture_table

    t0 = time.perf_counter()
    ds = HarmonizationDataset("test", "bin", 16, data_root=args.data_root, cache_dir=args.cache_dir)
    n = len(ds) if args.windows is None else min(args.windows, len(ds))
    roots_of_id = ds.data.chord_table[:, 0].astype(np.int64) - 1  # chord id -> root pitch class (-1 none)
    loaded = None
    if not args.no_harmonizer:
        from stripes.apps.harmonize.model import choose_notes, load_model, predict_probs

        loaded = load_model(args.checkpoint)
    human, rule, harm, chroma, songs = [], [], [], [], []
    for i in range(n):
        item = ds[i]
        labels = ds.labels(i)
        c = labels["bin"].astype(np.float32)
        frame = item["y"].numpy() > 0
        human.append((frame, ds.onset(i)[:, 256:] > 0))
        rule.append(rule_accompaniment(c, roots_of_id[labels["chord"]], start=int(item["start"])))
        if loaded is not None:
            probs = predict_probs(loaded, item["x"].numpy()[:, :128], c)  # melody only, as harmonize
            chosen = choose_notes(probs, loaded.threshold, loaded.merge)
            harm.append((chosen, onsets(chosen)))  # notes = runs of the roll, as harmonize renders them
        chroma.append(c)
        songs.append(item["song_id"])
    systems = {"rule baseline (block triads on beats)": rule}
    if loaded is not None:
        systems[f"harmonizer (shipped, threshold {loaded.threshold:g})"] = harm
    tables = [
        texture_table(systems, human, chroma, groups=songs, seed=seed, max_pairs=args.max_pairs)
        for seed in args.seeds
    ]
    table = tables[0]
    print(
        f"POP909 test, 16-bar windows: {n} of {len(ds)} windows, {len(set(songs))} songs; reference half "
        f"{table['n_reference']} windows, compared half {table['n_compared']}; seed {args.seeds[0]}; "
        f"{time.perf_counter() - t0:.0f} s\n"
    )
    print(format_texture_table(table))
    if len(tables) > 1:
        print("\n| system | " + " | ".join(f"mean OA, seed {s}" for s in args.seeds) + " | mean ± sd |")
        print("|---|" + "---|" * (len(tables) + 1))
        for name in table["rows"]:
            v = np.array([t["rows"][name]["mean_oa"] for t in tables])
            cells = " | ".join(f"{x:.3f}" for x in v)
            print(f"| {name} | {cells} | {v.mean():.3f} ± {v.std(ddof=1):.3f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(tables if len(tables) > 1 else table, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
