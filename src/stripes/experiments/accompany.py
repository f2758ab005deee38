"""Evaluating an accompaniment model (``task = "accompany"``) by what it plays, against the human piano.

``stripes evaluate RUN`` on such a run:

1. chooses the sampler's settings on **validation** windows (of the training length): every
   (temperature, top_p) of :data:`SETTINGS_GRID` samples the same windows with the same seed; the one
   whose texture is closest to the human piano (highest mean overlapping area, Yang & Lerch 2020,
   :mod:`stripes.metrics.texture`) wins;
2. samples every test window (16 or 64 bars) once with those settings (seed ``eval_seed + batch``), and
   scores the samples: P1's metrics (CS, SSMD, GS, NDD) and note-onset F1 against the human piano
   (:func:`stripes.metrics.compute_metrics` on the sampled frame roll), the texture table (mean OA and KL
   per feature, notes and onset times per bar, note length, polyphony) against the human piano of the same
   windows, the chord-tone share of the onsets (annotated BIN chords), and the teacher-forced test NLL;
3. writes ``RUN/metrics_accompany_{bars}.json`` (atomic) and returns it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stripes.fileio import atomic_write_text

SETTINGS_GRID = ((1.0, 1.0), (1.0, 0.95), (1.0, 0.9), (0.9, 0.95), (0.9, 1.0))
VAL_WINDOWS = 48
TEXTURE_SEED = 0


def _windows(dataset: Any, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    from stripes.train.data import collate

    b = collate([dataset[i] for i in indices])
    return b["x"], b["pos"]


def human_windows(dataset: Any, indices: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The human piano of each window: (frame, onset) (T, 128) bool."""
    from stripes.train.generative import onset_rolls

    onsets = onset_rolls(dataset, indices).numpy().astype(bool)
    return [(np.asarray(dataset[i]["y"]).astype(bool), onsets[j]) for j, i in enumerate(indices)]


def bin_chroma(config: Any, split: str, bars: int, indices: list[int], data_root: Any, cache_dir: Any
               ) -> list[np.ndarray]:
    """The annotated chord's chroma (T, 12) of each window, whatever context the model reads."""
    import dataclasses

    from stripes.train.data import make_dataset

    ds = make_dataset(dataclasses.replace(config, context="bin"), split, bars, data_root, cache_dir)
    return [np.asarray(ds[i]["pos"]) for i in indices]


def sample_windows(
    model: Any, dataset: Any, indices: list[int], settings: Any, seed: int, batch_size: int,
    device: torch.device,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    """Sampled (frame, onset) of each window, batch by batch (seed + batch number), and the seconds taken."""
    from stripes.models.sampling import sample

    out, t0 = [], time.perf_counter()
    for n, s in enumerate(range(0, len(indices), batch_size)):
        x, pos = _windows(dataset, indices[s : s + batch_size])
        r = sample(model, x.to(device), pos.to(device), seed=seed + n, settings=settings)
        out += list(zip(r["frame"].cpu().numpy(), r["onset"].cpu().numpy()))
    return out, time.perf_counter() - t0


@torch.no_grad()
def test_nll(model: Any, dataset: Any, indices: list[int], batch_size: int, device: torch.device) -> float:
    """Teacher-forced NLL per tick (nats), mean over windows."""
    from stripes.train.generative import validate_accompanist

    return validate_accompanist(model, dataset, indices, batch_size, device)["val_nll"]


def select_settings(
    model: Any, dataset: Any, indices: list[int], chroma: list[np.ndarray], groups: list[int], seed: int,
    batch_size: int, device: torch.device,
) -> tuple[Any, list[dict[str, float]]]:
    """The grid setting whose samples have the highest mean OA against the human piano (validation)."""
    from stripes.metrics.texture import texture_table
    from stripes.models.sampling import SamplerSettings

    human = human_windows(dataset, indices)
    systems, grid = {}, []
    for temperature, top_p in SETTINGS_GRID:
        name = f"T={temperature:g} p={top_p:g}"
        st = SamplerSettings(temperature, top_p)
        systems[name] = sample_windows(model, dataset, indices, st, seed, batch_size, device)[0]
    table = texture_table(systems, human, chroma, groups=groups, seed=TEXTURE_SEED)
    for (temperature, top_p), name in zip(SETTINGS_GRID, systems):
        row = table["rows"][name]
        grid.append({"temperature": temperature, "top_p": top_p, "val_mean_oa": row["mean_oa"],
                     "val_chord_tone_share": row["chord_tone_share"]})
    best = max(grid, key=lambda r: r["val_mean_oa"])
    return SamplerSettings(best["temperature"], best["top_p"]), grid


def evaluate_accompanist(
    run_dir: str | Path,
    bars: int = 16,
    *,
    which: str = "best",
    data_root: Any = None,
    cache_dir: Any = None,
    max_windows: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    val_windows: int = VAL_WINDOWS,
) -> dict[str, Any]:
    """Evaluate a task=accompany run on the test windows of ``bars`` bars; writes metrics_accompany_*.json.

    ``max_windows`` limits the test windows (spread over the split; None = all), ``val_windows`` the
    validation windows the sampler settings are chosen on."""
    from stripes.metrics import compute_metrics
    from stripes.metrics.texture import texture_table
    from stripes.train.checkpoint import load_run
    from stripes.train.data import make_dataset, spread_subset

    run = Path(run_dir)
    config, model, _ = load_run(run, which=which)
    device = torch.device("cpu")
    model = model.to(device).eval()
    vbars = int(config.data.bars)  # the training window length
    val = make_dataset(config, "val", vbars, data_root, cache_dir)
    val_idx = spread_subset(len(val), val_windows)
    val_groups = [int(val[i]["song_id"]) for i in val_idx]
    settings, grid = select_settings(
        model, val, val_idx, bin_chroma(config, "val", vbars, val_idx, data_root, cache_dir), val_groups,
        seed, batch_size, device,
    )
    test = make_dataset(config, "test", bars, data_root, cache_dir)
    idx = spread_subset(len(test), max_windows)
    samples, seconds = sample_windows(model, test, idx, settings, seed, batch_size, device)
    human = human_windows(test, idx)
    chroma = bin_chroma(config, "test", bars, idx, data_root, cache_dir)
    groups = [int(test[i]["song_id"]) for i in idx]
    p1 = [compute_metrics(frame, ref) for (frame, _), (ref, _) in zip(samples, human)]
    table = texture_table({"sampled": samples}, human, chroma, groups=groups, seed=TEXTURE_SEED)
    result = {
        "run": run.name,
        "bars": bars,
        "checkpoint": which,
        "n_windows": len(idx),
        "settings": {"temperature": settings.temperature, "top_p": settings.top_p,
                     "chosen_on": f"validation, {len(val_idx)} windows of {vbars} bars, highest mean OA"},
        "settings_grid": grid,
        "seed": seed,
        "test_nll": test_nll(model, test, idx, batch_size, device),
        "metrics": {k: float(np.mean([m[k] for m in p1])) for k in p1[0]},
        "texture": table,
        "sampling_seconds": seconds,
        "ticks_per_second": len(idx) * test.window_len / max(seconds, 1e-9),
    }
    text = json.dumps(result, indent=1, default=float) + "\n"
    atomic_write_text(run / f"metrics_accompany_{bars}.json", text)
    return result


def format_accompany(res: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    rows = res["texture"]["rows"]
    s, h = rows["sampled"], rows["human"]
    m, st = res["metrics"], res["settings"]
    return (
        f"{res['run']} ({res['bars']} bars, {res['n_windows']} windows; T={st['temperature']:g}, "
        f"top_p={st['top_p']:g} chosen on validation)\n"
        f"  test NLL {res['test_nll']:.4f} nats/tick; CS {m['cs']:.2f} SSMD {m['ssmd']:.2f} "
        f"GS {m['gs']:.2f} NDD {m['ndd']:.2f} onset F1 {m['onset_f1']:.3f}\n"
        f"  texture: mean OA {s['mean_oa']:.3f} (human {h['mean_oa']:.3f}); "
        f"notes/bar {s['notes_per_bar']:.1f} "
        f"({h['notes_per_bar']:.1f}); onset times/bar {s['onset_times_per_bar']:.1f} "
        f"({h['onset_times_per_bar']:.1f}); note length {s['mean_note_length']:.2f} q "
        f"({h['mean_note_length']:.2f}); chord tones {100 * s['chord_tone_share']:.1f} % "
        f"({100 * h['chord_tone_share']:.1f} %)"
    )
