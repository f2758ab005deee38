"""Evaluation of a run (docs/papers.md §9.5): one parallel forward pass per window, sigmoid, binarization.

The binarization (threshold, or threshold then merge of gaps of <= s ticks) is chosen on the validation
split at the same window length by the mean per-window criterion (onset F1 by default) over the grid
``eval.thresholds`` x ``eval.merges``; ties go to the first grid point. Test metrics are the mean of
per-window metrics, at the selected binarization and at the fixed threshold 0.5 (comparable to P1).
The threshold-free BCE is computed from the logits (mean, and mean per position along the window).
A ``task = "melody"`` run (question 4: the melody from the piano) is evaluated the same way, its grid
extended by the monophonic decoding (most probable pitch per tick, then the same thresholds and merges,
``stripes.metrics.binarize.binarize_mono``), the choice between them again made on validation.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stripes.errors import ConfigError, TrainingError
from stripes.fileio import atomic_path, atomic_write_bytes, atomic_write_text
from stripes.train.data import make_dataset, spread_subset
from stripes.train.predict import predict

TICKS_PER_QUARTER = 16


def _score(pred: np.ndarray, target: np.ndarray, criterion: str) -> float:
    from stripes.metrics import chroma_similarity, frame_prf, onset_prf

    if criterion == "onset_f1":
        return float(onset_prf(pred, target)[2])
    if criterion == "frame_f1":
        return float(frame_prf(pred, target)[2])
    return float(chroma_similarity(pred, target))


def select_binarization(
    windows: Iterator[dict[str, Any]] | list[dict[str, Any]],
    thresholds: list[float],
    merges: list[int | None],
    criterion: str = "onset_f1",
    mono: bool = False,
) -> dict[str, Any]:
    """Grid point (threshold, merge) with the best mean ``criterion`` over the windows (first on ties).

    Returns {"method", "threshold", "merge", "criterion", "score", "grid": {"thr|merge": mean score},
    "at_grid_edge"}; ``at_grid_edge`` is True when the chosen threshold is the smallest or largest of the grid
    (a wider grid might score better on validation). ``mono`` (a melody target) adds the monophonic decoding
    of every grid point (keys ``"thr|merge|mono"``, methods ``mono`` / ``mono+merge``) and a ``"mono"`` entry.
    """
    grid = [(t, m, False) for m in merges for t in thresholds]
    grid += [(t, m, True) for m in merges for t in thresholds] if mono else []
    sums = np.zeros(len(grid))
    n = 0
    for w in windows:
        for g, (t, m, mo) in enumerate(grid):
            sums[g] += _score(decode(w["probs"], t, m, mo), w["target"], criterion)
        n += 1
    if n == 0:
        raise TrainingError("no validation windows to choose the binarization on")
    means = sums / n
    best = int(np.argmax(means))  # argmax returns the first maximum
    t, m, mo = grid[best]
    out = {
        "method": ("mono" if mo else "threshold") + ("" if m is None else "+merge"),
        "threshold": float(t),
        "merge": m,
        "criterion": f"val {criterion.replace('_', ' ').replace('f1', 'F1')}",
        "score": float(means[best]),
        "grid": {f"{tt}|{mm}" + ("|mono" if mmo else ""): float(v) for (tt, mm, mmo), v in zip(grid, means)},
        "at_grid_edge": len(thresholds) > 1 and t in (min(thresholds), max(thresholds)),
    }
    if mono:
        out["mono"] = bool(mo)
    return out


def decode(probs: np.ndarray, threshold: float, merge: int | None = None, mono: bool = False) -> np.ndarray:
    """Binary roll (T, 128) of probabilities: threshold (+ merge), or monophonic with ``mono``."""
    from stripes.metrics import binarize
    from stripes.metrics.binarize import binarize_mono

    return (binarize_mono if mono else binarize)(probs, threshold, merge)


def roll_to_track(roll: np.ndarray, name: str, program: int = 0, velocity: int = 80) -> Any:
    """Binary roll (T, 128) -> symusic Track (one note per run of active ticks)."""
    import symusic

    from stripes.metrics import extract_notes

    track = symusic.Track(name, program, False)
    for pitch, on, off in extract_notes(roll):
        track.notes.append(symusic.Note(int(on), int(off - on), int(pitch), velocity))
    return track


def write_midi(path: Path, melody: np.ndarray, bridge: np.ndarray, piano: np.ndarray) -> None:
    """Melody, bridge and (predicted) piano rolls (T, 128) -> MIDI at 16 ticks per quarter (atomic)."""
    import symusic

    score = symusic.Score(TICKS_PER_QUARTER)
    for roll, name in ((melody, "MELODY"), (bridge, "BRIDGE"), (piano, "PIANO")):
        score.tracks.append(roll_to_track(roll, name))
    with atomic_path(path, suffix=".mid") as tmp:
        score.dump_midi(str(tmp))


def write_pianoroll_png(
    path: Path, target: np.ndarray, pred: np.ndarray, probs: np.ndarray | None = None, title: str = "",
    track: str = "piano",
) -> None:
    """PNG with target, prediction (and probabilities) pianorolls (T, 128), time on x (atomic); ``track``
    names the predicted track in the labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"target {track}", target), (f"predicted {track}", pred)] + (
        [("probabilities", probs)] if probs is not None else []
    )
    active = np.flatnonzero(np.asarray(target).any(0) | np.asarray(pred).any(0))
    lo, hi = (int(active.min()) - 2, int(active.max()) + 3) if active.size else (21, 109)
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.4 * len(panels)), sharex=True)
    for ax, (name, roll) in zip(np.atleast_1d(axes), panels):
        ax.imshow(
            np.asarray(roll, dtype=float).T[max(lo, 0) : hi],
            aspect="auto",
            origin="lower",
            cmap="Greys",
            interpolation="nearest",
            extent=(0, roll.shape[0], max(lo, 0), hi),
            vmin=0,
            vmax=1,
        )
        ax.set_ylabel(f"{name}\npitch")
    np.atleast_1d(axes)[-1].set_xlabel("tick (16 per quarter)")
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def evaluate_run(
    run_dir: str | Path,
    bars: int = 16,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    *,
    which: str = "best",
    progress: bool = True,
    eval_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate the ``which`` checkpoint of a run at ``bars`` bars; writes ``metrics_{bars}.json``,
    ``metrics_{bars}_windows.csv`` and a few examples (MIDI + PNG) under ``examples_{bars}/``.

    ``eval_overrides`` (``{"eval.thresholds": [...], ...}``) replaces evaluation settings of the run's config
    (only ``eval.*`` keys); the settings used are written to the metrics file."""
    from stripes.metrics import METRIC_KEYS, binarize, compute_metrics
    from stripes.train.loop import load_run

    run = Path(run_dir)
    if not (run / "checkpoints").is_dir():
        raise TrainingError(f"{run} is not a run folder (no checkpoints/)")
    config, model, _ = load_run(run, which)
    if eval_overrides:
        config = _with_eval_overrides(config, eval_overrides)
    ec = config.eval
    device = torch.device("cuda" if torch.cuda.is_available() and config.train.device != "cpu" else "cpu")
    model.to(device)

    val_ds = make_dataset(config, "val", bars, data_root, cache_dir)
    test_ds = make_dataset(config, "test", bars, data_root, cache_dir)
    val_idx = spread_subset(len(val_ds), ec.max_val_windows)
    test_idx = spread_subset(len(test_ds), ec.max_test_windows)
    if not test_idx:
        raise TrainingError(f"no test windows at {bars} bars")
    bar = _progress(len(val_idx) + len(test_idx), f"evaluate {run.name} @ {bars} bars", progress)
    melody = config.task == "melody"  # question 4: the melody (monophonic) from the piano
    selected = select_binarization(
        _tick(predict(model, val_ds, val_idx, ec.batch_size, device), bar),
        ec.thresholds,
        ec.merges,
        ec.criterion,
        mono=melody,
    )

    rows: list[dict[str, Any]] = []
    bce_pos_sum: np.ndarray | None = None
    per_bar: list[np.ndarray] = []  # eval.positions: each window's mean BCE per bar (question 3)
    examples = run / f"examples_{bars}"
    for n, w in enumerate(_tick(predict(model, test_ds, test_idx, ec.batch_size, device), bar)):
        pred = decode(w["probs"], selected["threshold"], selected["merge"], bool(selected.get("mono")))
        sel = compute_metrics(pred, w["target"])
        fixed = compute_metrics(binarize(w["probs"], 0.5), w["target"])
        bce_pos_sum = w["bce_pos"].astype(np.float64) if bce_pos_sum is None else bce_pos_sum + w["bce_pos"]
        if ec.positions:
            per_bar.append(bar_means(w["bce_pos"]))
        rows.append(
            {
                "song_id": w["song_id"],
                "start": w["start"],
                "bce": float(w["bce_pos"].mean()),
                **{f"sel_{k}": v for k, v in sel.items()},
                **{f"p5_{k}": v for k, v in fixed.items()},
            }
        )
        if n < ec.n_examples:
            stem = f"song{w['song_id']:03d}_t{w['start']}"
            if melody:  # predicted melody over the given piano (no bridge)
                write_midi(examples / f"{stem}.mid", pred, np.zeros_like(pred), w["x"])
            else:
                write_midi(examples / f"{stem}.mid", w["x"][:, :128], w["x"][:, 128:], pred)
            write_pianoroll_png(
                examples / f"{stem}.png",
                w["target"],
                pred,
                w["probs"],
                track="melody" if melody else "piano",
                title=f"{config.pe} + {config.context}: song {w['song_id']}, tick {w['start']}, "
                f"thr {selected['threshold']} merge {selected['merge']}",
            )
    if bar is not None:
        bar.close()
    assert bce_pos_sum is not None
    bce_pos = bce_pos_sum / len(rows)
    result = {
        "bars": bars,
        "checkpoint": which,
        "n_windows": len(rows),
        "selected": {k: selected[k] for k in ("method", "threshold", "merge", "criterion", "at_grid_edge",
                                              "mono") if k in selected},
        "validation": {"score": selected["score"], "n_windows": len(val_idx), "grid": selected["grid"]},
        "eval": config.to_dict()["eval"],
        "at_selected": {k: float(np.mean([r[f"sel_{k}"] for r in rows])) for k in METRIC_KEYS},
        "at_0.5": {k: float(np.mean([r[f"p5_{k}"] for r in rows])) for k in METRIC_KEYS},
        "bce": float(bce_pos.mean()),
        "bce_per_position": [float(v) for v in bce_pos],
    }
    atomic_write_text(run / f"metrics_{bars}.json", json.dumps(result, indent=1) + "\n")
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(rows[0]))
    wr.writeheader()
    wr.writerows(rows)
    atomic_write_text(run / f"metrics_{bars}_windows.csv", buf.getvalue())
    if ec.positions:
        write_positions(run / f"metrics_{bars}_positions.json", per_bar, rows, bars, config)
    return result


TICKS_PER_BAR = 64


def bar_means(bce_pos: np.ndarray, ticks_per_bar: int = TICKS_PER_BAR) -> np.ndarray:
    """(T,) per-tick BCE of one window -> (ceil(T / ticks_per_bar),) mean BCE per bar (a last partial bar
    is the mean of its ticks)."""
    b = np.asarray(bce_pos, dtype=np.float64)
    starts = np.arange(0, b.size, ticks_per_bar)
    return np.add.reduceat(b, starts) / np.diff(np.r_[starts, b.size])


def write_positions(path: Path, per_bar: list[np.ndarray], rows: list[dict[str, Any]], bars: int,
                    config: Any) -> dict[str, Any]:
    """``metrics_{bars}_positions.json`` (``eval.positions``): the test BCE per bar position, mean over
    windows (``bce_per_bar``, length ``bars``) and per window (``bce_window_bar``, windows x bars, in the
    order of ``windows`` = [song id, start tick]), with the training length in bars. The mean of
    ``bce_per_bar`` is the metrics file's ``bce`` (every window has the same length)."""
    mat = np.stack(per_bar)
    train = config.train.max_len / TICKS_PER_BAR if config.train.max_len else config.data.bars
    out = {"bars": bars, "ticks_per_bar": TICKS_PER_BAR, "train_bars": train, "n_windows": len(per_bar),
           "bce": float(mat.mean()), "bce_per_bar": [float(v) for v in mat.mean(axis=0)],
           "windows": [[int(r["song_id"]), int(r["start"])] for r in rows],
           "bce_window_bar": [[float(f"{v:.7g}") for v in row] for row in mat]}
    atomic_write_text(path, json.dumps(out) + "\n")
    return out


def _with_eval_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    from stripes.config import RunConfig, apply_overrides, validate

    bad = [k for k in overrides if not k.startswith("eval.")]
    if bad:
        raise ConfigError(f"evaluation may only override eval.* settings, not {', '.join(bad)}")
    new = RunConfig.from_dict(apply_overrides(config.to_dict(), overrides))
    validate(new)
    return new


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    # disable=None: tqdm turns itself off when stderr is not a terminal (no carriage-return lines in logs)
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)


def _tick(it: Iterator[dict[str, Any]], bar: Any) -> Iterator[dict[str, Any]]:
    for w in it:
        if bar is not None:
            bar.update()
        yield w


def format_result(res: dict[str, Any], name: str = "") -> str:
    """A few lines summarising a metrics dict (selected binarization and threshold 0.5)."""
    s = res["selected"]
    head = f"{name} " if name else ""
    lines = [f"{head}{res['bars']} bars, {res['n_windows']} test windows, BCE {res['bce']:.4f}"]
    for label, key in (
        (f"selected (thr {s['threshold']}, merge {s['merge']})", "at_selected"),
        ("threshold 0.5 (comparable to P1)", "at_0.5"),
    ):
        m = res[key]
        lines.append(
            f"  {label}: CS {m['cs']:.2f}  SSMD {m['ssmd']:.2f}  GS {m['gs']:.2f}  NDD {m['ndd']:.2f}"
            f"  onset F1 {m['onset_f1']:.3f}  frame F1 {m['frame_f1']:.3f}"
        )
    return "\n".join(lines)
