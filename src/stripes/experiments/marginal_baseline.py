"""Question 4: how much of a task a model has learned, measured from below. The floor is a model with no
input and no context: one constant probability per pitch, its frequency in the training targets. Its BCE on
the validation and test windows is what a trained model's BCE is compared with: "x % below the marginal".

Targets, as the models are trained on them: **harmonization** the PIANO roll (T, 128); **melody from the
piano** the MELODY roll (T, 128). The BCE is the mean over every (window, tick, pitch) cell, as the
evaluation's threshold-free BCE (:mod:`stripes.experiments.evaluate`: all windows have one length).

``python -m stripes.experiments.marginal_baseline --out FILE``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from stripes.fileio import atomic_write_text

EPS = 1e-7  # a pitch never seen in training gets this probability, not 0 (its BCE would be infinite)
TARGETS = {"harmonization": lambda item: item["y"], "melody": lambda item: np.asarray(item["x"])[:, :128]}


def pitch_frequencies(rolls: Iterable[np.ndarray]) -> np.ndarray:
    """Share of ticks on which each pitch sounds, over (T, P) binary rolls -> (P,) in [EPS, 1 - EPS]."""
    total, count = None, 0
    for r in rolls:
        r = np.asarray(r, dtype=np.float64) > 0
        total = r.sum(axis=0) if total is None else total + r.sum(axis=0)
        count += r.shape[0]
    if total is None or count == 0:
        raise ValueError("no rolls to count pitches in")
    return np.clip(total / count, EPS, 1.0 - EPS)


def marginal_bce(p: np.ndarray, rolls: Iterable[np.ndarray]) -> float:
    """Mean BCE (nats per cell) of the constant prediction ``p`` (P,) on (T, P) binary rolls, through the
    evaluation's own per-cell BCE (:func:`stripes.metrics.bce.bce_with_logits`, in float64)."""
    from stripes.metrics.bce import bce_with_logits

    logit = np.log(p) - np.log1p(-p)
    total, cells = 0.0, 0
    for r in rolls:
        r = (np.asarray(r) > 0).astype(np.float64)
        total += float(bce_with_logits(np.broadcast_to(logit, r.shape).copy(), r).sum())
        cells += r.size
    if cells == 0:
        raise ValueError("no rolls to score")
    return total / cells


def baseline_rows(data_root: Any = None, cache_dir: Any = None, bars: int = 16) -> list[dict[str, Any]]:
    """One row per task: the marginal's BCE on the validation and test windows (``bars`` bars), frequencies
    from the training windows."""
    from stripes.data import HarmonizationDataset

    def items(split: str) -> list[dict[str, Any]]:
        ds = HarmonizationDataset(split, "time", bars=bars, data_root=data_root, cache_dir=cache_dir)
        return [ds[i] for i in range(len(ds))]

    splits = {s: items(s) for s in ("train", "val", "test")}
    rows = []
    for task, target in TARGETS.items():
        p = pitch_frequencies(target(it) for it in splits["train"])
        rows.append({"task": task, "bars": bars, "train_windows": len(splits["train"]),
                     "valid_bce": marginal_bce(p, (target(it) for it in splits["val"])),
                     "test_bce": marginal_bce(p, (target(it) for it in splits["test"])),
                     "valid_windows": len(splits["val"]), "test_windows": len(splits["test"])})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stripes.experiments.marginal_baseline --out FILE``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m stripes.experiments.marginal_baseline",
                                description="BCE of a constant per-pitch marginal on each task's target")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--bars", type=int, default=16, help="window length in bars (default 16)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    rows = baseline_rows(a.data_root, a.cache_dir, a.bars)
    atomic_write_text(a.out, json.dumps(rows, indent=1) + "\n")
    for r in rows:
        print(f"{r['task']:<14} BCE x100 of the marginal: valid {100 * r['valid_bce']:.3f}, "
              f"test {100 * r['test_bce']:.3f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
