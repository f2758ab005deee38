"""Question 2, what the learned contexts learned: how far a trained context learner moved the hand-made
positions, and whether it kept their geometry.

A learner (:mod:`stripes.models.context_learner`) starts as the identity. After training, for the distinct
positions of the data (BIN: the chord chromas of the test windows, weighted by how many ticks carry each):

- ``relative_move``: mean ‖f(p) − p‖ / mean ‖p‖ over ticks (0 = still the identity);
- ``distance_rank_corr``: Spearman's ρ between the pairwise distances of the hand-made positions and those
  of the learned ones (1 = the learner kept which chords are near which; it may still have rescaled them).

``python -m stripes.experiments.learned_context RUNS... --out FILE`` writes one row per run that has a
learner and a checkpoint (the committed records carry no checkpoints, so it reads the sweep's own folders).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stripes.errors import DataError
from stripes.fileio import atomic_write_text


def distinct_positions(pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of positions (N, C) and their share of the N rows: ((U, C), (U,))."""
    if pos.ndim != 2 or pos.shape[0] == 0:
        raise DataError(f"positions must be a non-empty (N, C) array, got shape {tuple(pos.shape)}")
    uniq, counts = torch.unique(pos, dim=0, return_counts=True)
    return uniq, counts.to(pos.dtype) / counts.sum()


def learner_geometry(learner: torch.nn.Module, uniq: torch.Tensor, weights: torch.Tensor) -> dict[str, float]:
    """``relative_move`` and ``distance_rank_corr`` (see the module) of ``learner`` on the distinct
    positions ``uniq`` (U, C) with tick shares ``weights`` (U,)."""
    from scipy.stats import spearmanr

    with torch.no_grad():
        out = learner(uniq[None])[0]
    move = float(((out - uniq).norm(dim=-1) * weights).sum() / (uniq.norm(dim=-1) * weights).sum())
    iu = torch.triu_indices(len(uniq), len(uniq), 1)
    if iu.shape[1] < 2:
        return {"relative_move": move, "distance_rank_corr": float("nan"), "n_positions": len(uniq)}
    before = torch.cdist(uniq, uniq)[iu[0], iu[1]].numpy()
    after = torch.cdist(out, out)[iu[0], iu[1]].numpy()
    rho = float(spearmanr(before, after).statistic)
    return {"relative_move": move, "distance_rank_corr": rho, "n_positions": len(uniq)}


def positions_of_test_windows(context: Sequence[str] | str, bars: int = 16, data_root: Any = None,
                              cache_dir: Any = None, stride: int = 1) -> torch.Tensor:
    """Every tick's positions (N, C) of the test windows (every ``stride``-th window)."""
    from stripes.data import HarmonizationDataset

    ds = HarmonizationDataset("test", context, bars=bars, data_root=data_root, cache_dir=cache_dir)
    return torch.cat([torch.as_tensor(ds[i]["pos"]) for i in range(0, len(ds), stride)])


def geometry_rows(runs: Sequence[str | os.PathLike], data_root: Any = None, cache_dir: Any = None,
                  stride: int = 1) -> list[dict[str, Any]]:
    """One row per run folder with a context learner and a checkpoint: run, learner, seed, the geometry."""
    from stripes.train.checkpoint import load_run

    rows: list[dict[str, Any]] = []
    cache: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}
    for run in runs:
        run = Path(run)
        if not (run / "checkpoints").is_dir():
            continue
        cfg, model, _ = load_run(run)
        learner = getattr(model, "context_learner", None)
        if learner is None:
            continue
        key = tuple(cfg.contexts)
        if key not in cache:
            pos = positions_of_test_windows(list(key), 16, data_root, cache_dir, stride)
            cache[key] = distinct_positions(pos)
        variant = cfg.model.pe_options.get("variant")
        rows.append({"run": run.name, "learner": cfg.model.context_learner,
                     "pe": cfg.pe + (f"({variant})" if variant else ""),
                     "seed": cfg.seed, **learner_geometry(learner, *cache[key])})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stripes.experiments.learned_context RUNS... --out FILE``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m stripes.experiments.learned_context",
                                description="how far trained context learners moved the hand-made positions")
    p.add_argument("runs", nargs="+", help="run folders, or folders of run folders (with checkpoints)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--stride", type=int, default=1, help="every n-th test window (default 1: all)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    folders: list[Path] = []
    for r in map(Path, a.runs):
        if not r.is_dir():
            raise DataError(f"{r}: no such folder")
        folders += [r] if (r / "config.json").is_file() else sorted(d for d in r.iterdir() if d.is_dir())
    rows = geometry_rows(folders, a.data_root, a.cache_dir, max(1, a.stride))
    if not rows:
        raise DataError(f"no run with a context learner and a checkpoint in {', '.join(a.runs)}")
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["pe"], r["learner"]), []).append(r)
    summary = [{"pe": pe, "learner": lr, "n": len(v),
                **{k: [float(np.mean([x[k] for x in v])), float(np.std([x[k] for x in v], ddof=1))
                       if len(v) > 1 else 0.0] for k in ("relative_move", "distance_rank_corr")}}
               for (pe, lr), v in sorted(by.items())]
    atomic_write_text(a.out, json.dumps({"runs": rows, "summary": summary}, indent=1) + "\n")
    for s in summary:
        print(f"{s['pe']:<10} {s['learner']:<16} n={s['n']} move {s['relative_move'][0]:.3f} ± "
              f"{s['relative_move'][1]:.3f}  distance rank corr {s['distance_rank_corr'][0]:.3f} ± "
              f"{s['distance_rank_corr'][1]:.3f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
