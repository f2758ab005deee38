"""Question 4, why the ranking may not transfer: how much the BIN context tells about a task's target
*beyond what the task's input already says*.

P1 relates performance to the MI between content and context. A model sees the context beside its input,
so what the context can add is the conditional MI I(target; context | input). Per tick, on the training
windows of the prepared data:

- **harmonization** (P1's task): target = the pitch class of each sounding piano note; input = the set of
  pitch classes sounding in the melody and bridge at that tick (a 12-bit mask);
- **melody from the piano** (question 4): target = the pitch class of the sounding melody note (the highest,
  when two sound); input = the set of pitch classes the piano sounds at that tick.

The context is BIN's chord chroma (12-bit mask). Both MI and conditional MI are plug-in estimates with a
shuffle correction (:func:`stripes.analysis.mi.conditional_mi`: y permuted within each input value). The
tick-level input is a lower bound on what the model sees (it reads whole windows), so the conditional MI is
an upper bound on what the context adds.

``python -m stripes.experiments.context_redundancy --out FILE [--stride N]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from stripes.analysis.mi import conditional_mi, mi_plugin, mi_shuffle
from stripes.fileio import atomic_write_text
from stripes.metrics._common import chroma

BITS = 1 << np.arange(12)


def chroma_mask(roll: np.ndarray) -> np.ndarray:
    """(T, 128·k) binary roll(s) -> (T,) 12-bit mask of the pitch classes sounding at each tick."""
    roll = (np.asarray(roll) > 0).astype(np.int64)
    # fold each 128-pitch track on its own: 128 is not a multiple of 12
    pcs = sum(chroma(roll[:, start:start + 128]) for start in range(0, roll.shape[1], 128))
    return ((pcs > 0) * BITS).sum(axis=1)


def around(roll: np.ndarray, span: int) -> np.ndarray:
    """(T, P) binary roll -> the same with each tick holding what sounds within ``span`` ticks of it."""
    roll = np.asarray(roll) > 0
    if span <= 0:
        return roll
    c = np.concatenate([np.zeros((1, roll.shape[1]), dtype=np.int64), np.cumsum(roll, axis=0)])
    t = np.arange(roll.shape[0])
    lo, hi = np.clip(t - span, 0, roll.shape[0]), np.clip(t + span + 1, 0, roll.shape[0])
    return (c[hi] - c[lo]) > 0


def task_samples(x: np.ndarray, y: np.ndarray, pos: np.ndarray,
                 span: int = 0) -> dict[str, tuple[np.ndarray, ...]]:
    """(target, context, input) samples of both tasks from one window: x (T, 256) melody+bridge, y (T, 128)
    piano, pos (T, 12) BIN chroma; the input is the pitch classes sounding within ``span`` ticks."""
    ctx = ((np.asarray(pos) > 0.5) * BITS).sum(axis=1)
    mel_bridge = chroma_mask(around(x, span))
    piano = chroma_mask(around(y, span))
    t, p = np.nonzero(np.asarray(y) > 0)
    harm = (p % 12, ctx[t], mel_bridge[t])
    mel = np.asarray(x)[:, :128] > 0
    ticks = np.flatnonzero(mel.any(axis=1))
    top = 127 - np.argmax(mel[ticks, ::-1], axis=1)
    melody = (top % 12, ctx[ticks], piano[ticks])
    return {"harmonization": harm, "melody": melody}


def redundancy_rows(data_root: Any = None, cache_dir: Any = None, stride: int = 4,
                    n_shuffles: int = 3, seed: int = 0, span: int = 0) -> list[dict[str, Any]]:
    """One row per task: MI(target; BIN), MI(target; BIN | input), MI(target; input), over every
    ``stride``-th training window (16 bars)."""
    from stripes.data import HarmonizationDataset

    ds = HarmonizationDataset("train", "bin", bars=16, data_root=data_root, cache_dir=cache_dir)
    parts: dict[str, list[tuple[np.ndarray, ...]]] = {"harmonization": [], "melody": []}
    for i in range(0, len(ds), max(1, stride)):
        item = ds[i]
        for task, s in task_samples(*(np.asarray(item[k]) for k in ("x", "y", "pos")), span=span).items():
            parts[task].append(s)
    rows = []
    for task, chunks in parts.items():
        tgt, ctx, inp = (np.concatenate([c[j] for c in chunks]) for j in range(3))
        cmi = conditional_mi(tgt, ctx, inp, n_shuffles=n_shuffles, seed=seed)
        rows.append({"task": task, "span": span, "n": int(tgt.size),
                     "windows": len(range(0, len(ds), max(1, stride))),
                     "mi_context": mi_plugin(tgt, ctx),
                     "mi_context_shuffle": mi_shuffle(tgt, ctx, n_shuffles, seed),
                     "mi_input": mi_plugin(tgt, inp),
                     "mi_input_shuffle": mi_shuffle(tgt, inp, n_shuffles, seed),
                     "cmi_context_given_input": cmi["plugin"],
                     "cmi_context_given_input_shuffle": cmi["shuffle"]})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stripes.experiments.context_redundancy --out FILE``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m stripes.experiments.context_redundancy",
                                description="what BIN tells about each task's target beyond its input (nats)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--stride", type=int, default=4, help="every n-th training window (default 4)")
    p.add_argument("--shuffles", type=int, default=3, help="permutations of the shuffle correction")
    p.add_argument("--spans", default="0", help="input spans in ticks, comma-separated (default 0: the tick "
                   "itself; 16 = a quarter note either side)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    rows = [r for span in (int(v) for v in a.spans.split(",") if v.strip())
            for r in redundancy_rows(a.data_root, a.cache_dir, a.stride, a.shuffles, span=span)]
    atomic_write_text(a.out, json.dumps(rows, indent=1) + "\n")
    print(f"{'task':<14} {'span':>4} {'n':>9} {'I(t;BIN)':>9} {'I(t;in)':>8} {'I(t;BIN|in)':>12} "
          "(shuffle-corrected)")
    for r in rows:
        print(f"{r['task']:<14} {r['span']:>4} {r['n']:>9} {r['mi_context_shuffle']:>9.4f} "
              f"{r['mi_input_shuffle']:>8.4f} "
              f"{r['cmi_context_given_input_shuffle']:>12.4f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
