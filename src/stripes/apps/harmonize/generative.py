"""Generative accompaniment: the autoregressive :class:`~stripes.models.accompanist.Accompanist`, sampled.

The accompaniment is drawn tick by tick on the training grid (16 ticks per quarter) with the model's
sampler (:func:`stripes.models.sampling.sample`): the same inputs as the parallel model (x = melody roll +
an empty bridge roll, pos = BIN chroma of the chord at each tick), plus the piano it has played so far.
Notes come out with onsets, so a repeated note is two notes. A seed makes a draw reproducible; several
seeds give several candidates; ``--regenerate BARS`` samples some bars of a harmonized file again and keeps
the accompaniment outside them note for note (:func:`regenerate_song`).

Which model runs (``--mode``): :func:`load_for_mode`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from stripes.apps.harmonize import chords as ch
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.model import (
    TRAIN_HINT,
    LoadedModel,
    load_checked,
    load_model,
    loaded_from,
    shipped_accompanist,
)
from stripes.apps.harmonize.regenerate import (  # noqa: F401 (re-exported)
    ACC_TRACK,
    accompaniment_track_notes,
    bars_mask,
    chords_from_markers,
    grid_of,
    merge_regenerated,
    parse_bars,
    regenerated_stem,
    rolls_of,
)
from stripes.apps.harmonize.song import Song
from stripes.fileio import atomic_write_text

if TYPE_CHECKING:
    from stripes.apps.harmonize.inputs import Options, Result

MODES = ("auto", "generative", "parallel")
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 0.95
MAX_CANDIDATES = 64
GEN_HINT = (
    "pass --checkpoint RUN_DIR of a generative run (`stripes train --profile accompanist --out "
    "runs/accompanist`)"
)
PNG_LABEL = "accompaniment pitch\n(sampled notes)"


@dataclass
class LoadedAccompanist:
    """A generative model ready to sample: the network (eval mode), its sampler settings, their origin."""

    model: torch.nn.Module
    temperature: float
    top_p: float
    source: str
    settings_from: str


def accompanist_from(config: Any, model: torch.nn.Module, ck: dict, path: Path) -> LoadedAccompanist:
    """The generative model of a loaded run; sampler settings from the inference file's ``extra``
    (``temperature``, ``top_p``) when stored, else :data:`DEFAULT_TEMPERATURE` / :data:`DEFAULT_TOP_P`."""
    task = getattr(config, "task", "harmonize")
    if task == "melody":
        raise HarmonizeError(f"{path}: a task=melody model writes a melody from a piano part (question 4), "
                             f"not an accompaniment; --mode generative needs a generative model: {GEN_HINT}")
    if task != "accompany":
        raise HarmonizeError(
            f"{path}: a parallel (task=harmonize) model; --mode generative needs a generative model: "
            f"{GEN_HINT}, or use --mode parallel"
        )
    extra = ck.get("extra") or {}
    stored = "temperature" in extra or "top_p" in extra
    return LoadedAccompanist(
        model.eval(),
        float(extra.get("temperature", DEFAULT_TEMPERATURE)),
        float(extra.get("top_p", DEFAULT_TOP_P)),
        str(path),
        "stored with the model" if stored else "default",
    )


def load_for_mode(checkpoint: str | Path | None, mode: str = "auto") -> LoadedModel | LoadedAccompanist:
    """The model of ``--mode``: ``parallel`` the thresholded model (:func:`load_model`); ``generative`` a
    generative (task=accompany) model: ``--checkpoint`` or the shipped ``accompanist.pt``; ``auto``
    generative when a generative model is available (a ``--checkpoint`` of a task=accompany run, or,
    without ``--checkpoint``, the shipped ``accompanist.pt``), else parallel."""
    if mode not in MODES:
        raise HarmonizeError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "parallel":
        return load_model(checkpoint)
    if checkpoint is None:
        shipped = shipped_accompanist()
        if shipped.is_file():
            return accompanist_from(*load_checked(None, shipped))
        if mode == "generative":
            raise HarmonizeError(
                f"no shipped generative model ({shipped} is missing); {GEN_HINT}, or use --mode parallel"
            )
        return load_model(None)
    config, model, ck, path = load_checked(checkpoint)
    if getattr(config, "task", "harmonize") == "accompany" or mode == "generative":
        return accompanist_from(config, model, ck, path)
    return loaded_from(config, model, ck, path)


def describe(loaded: LoadedModel | LoadedAccompanist) -> str:
    """One line about the model for stderr."""
    if isinstance(loaded, LoadedAccompanist):
        return (
            f"model: {loaded.source} (generative: temperature {loaded.temperature:g}, top_p "
            f"{loaded.top_p:g}, {loaded.settings_from})"
        )
    return f"model: {loaded.source} (threshold {loaded.threshold:g}, {loaded.threshold_from})"


# ---------------------------------------------------------------------------------------------------------
# bars


def sample_rolls(
    loaded: LoadedAccompanist,
    melody_roll: np.ndarray,
    chroma: np.ndarray,
    seed: int,
    temperature: float,
    top_p: float,
    onset: np.ndarray | None = None,
    frame: np.ndarray | None = None,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(T, 128) onset and frame rolls (bool) sampled for one melody, and their NLL (nats). ``onset``,
    ``frame``, ``keep`` (T,): given rolls kept at the ``keep`` ticks (regeneration)."""
    from stripes.errors import ConfigError
    from stripes.models.sampling import SamplerSettings, sample

    try:
        settings = SamplerSettings(float(temperature), float(top_p))
    except ConfigError as exc:
        raise HarmonizeError(str(exc)) from None
    T = melody_roll.shape[0]
    x = torch.zeros(1, T, 256)
    x[0, :, :128] = torch.from_numpy(np.asarray(melody_roll, np.float32))
    pos = torch.from_numpy(np.asarray(chroma, np.float32))[None]
    kw: dict[str, Any] = {}
    if keep is not None:
        kw = {
            "onset": torch.from_numpy(np.asarray(onset, bool))[None],
            "frame": torch.from_numpy(np.asarray(frame, bool))[None],
            "keep": torch.from_numpy(np.asarray(keep, bool))[None],
        }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one tick at a time is too small to split: more threads only wait (10x slower)
    try:
        out = sample(loaded.model, x, pos, seed=int(seed), settings=settings, **kw)
    finally:
        torch.set_num_threads(threads)
    return out["onset"][0].numpy(), out["frame"][0].numpy(), float(out["nll"][0])


# ---------------------------------------------------------------------------------------------------------
# regeneration: reading a harmonized file back


def generate_song(
    song: Song,
    loaded: LoadedAccompanist,
    opts: Options,
    stem: str,
    log: Callable[[str], None],
) -> Result:
    """Harmonize (or, with ``opts.regenerate``, regenerate bars of) one song with the generative model;
    writes one MIDI per candidate (+ PNG / MusicXML / WAV), the chords file and the JSON sidecar."""
    from stripes.apps.harmonize.inputs import KEY_PREFIX, Result, chords_and_key
    from stripes.apps.harmonize.render import build_score, notes_from_rolls, write_midi, write_png

    t0 = time.perf_counter()
    res = Result(song.path)
    for m in song.messages:
        log(m)
    regen_text = opts.regenerate
    orig = regen = None
    spans_given = None
    if regen_text:
        bars = parse_bars(regen_text, len(song.bar_starts))
        regen = bars_mask(song, bars)
        orig = accompaniment_track_notes(song)
        spans_given = chords_from_markers(song) if opts.chords is None else None
    spans, chroma, source, key, key_origin = chords_and_key(song, opts, log, spans_given, song.path.name)
    temperature = loaded.temperature if opts.temperature is None else float(opts.temperature)
    top_p = loaded.top_p if opts.top_p is None else float(opts.top_p)
    settings_from = loaded.settings_from
    if opts.temperature is not None or opts.top_p is not None:
        settings_from = "given (--temperature / --top-p)" if loaded.settings_from == "default" else (
            f"given (--temperature / --top-p); the rest {loaded.settings_from}"
        )
    n = max(1, int(opts.candidates))
    base_seed = 0 if opts.seed is None else int(opts.seed)
    seeds = [base_seed + k for k in range(n)]
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "regenerated" if regen_text else "harmonized"
    melody_roll = song.melody_roll()
    given: dict[str, Any] = {}
    if regen is not None and orig is not None:
        g_on, g_fr = rolls_of(orig, song.tpq, song.n_ticks)
        given = {"onset": g_on, "frame": g_fr, "keep": ~regen}
    cands = []
    for k, seed in enumerate(seeds, start=1):
        t1 = time.perf_counter()
        onset, frame, nll = sample_rolls(loaded, melody_roll, chroma, seed, temperature, top_p, **given)
        sample_s = time.perf_counter() - t1
        prefix = stem if k == 1 else f"{stem}.candidate{k}"
        mid = out / f"{prefix}.{suffix}.mid"
        pic = f"{prefix}.regenerated.png" if regen_text else f"{prefix}.png"
        if regen is not None and orig is not None:
            grid_notes, kept = merge_regenerated(orig, onset, frame, regen, song.tpq)
            changed = len(notes_from_rolls(frame & regen[:, None], onset & regen[:, None]))
        else:
            grid_notes, kept = notes_from_rolls(frame, onset), None
            changed = len(grid_notes)
        score = build_score(
            song, frame, spans if opts.chord_track else None, chords=spans, key=key, seed=seed,
            notes=grid_notes, kept=kept,
        )
        write_midi(mid, score)
        res.outputs.append(mid)
        if opts.png:
            shown = frame.astype(np.float32)
            title = f"{song.path.name}: {source}; seed {seed}" + (f"; bars {regen_text} regenerated"
                                                                   if regen_text else "")
            write_png(out / pic, song, shown, frame, spans, title=title, label=PNG_LABEL)
            res.outputs.append(out / pic)
        if opts.musicxml:
            from stripes.apps.harmonize.musicxml import write_musicxml

            xml = out / pic.replace(".png", ".musicxml")
            all_grid = grid_notes
            if kept is not None and len(kept):
                a, b = grid_of(kept, song.tpq)
                all_grid = np.concatenate([grid_notes, np.stack([kept[:, 2], a, b], 1)])
            info = write_musicxml(xml, song, frame, spans, key, notes=all_grid)
            res.info.setdefault("musicxml", info)
            res.outputs.append(xml)
        if opts.wav:
            from stripes.apps.harmonize.audio import render_wav

            wav = out / pic.replace(".png", ".wav")
            res.info["synth"] = render_wav(wav, score, opts.synth)
            res.outputs.append(wav)
        n_notes = int(len(score.tracks[1].notes))
        ticks = max(int(song.n_ticks), 1)
        cands.append({"seed": seed, "midi": mid.name, "accompaniment_notes": n_notes,
                      "nll_per_tick": round(nll / ticks, 4), "sample_seconds": round(sample_s, 3)})
        what = f"{changed} notes in bars {regen_text}" if regen_text else f"{n_notes} accompaniment notes"
        log(f"{song.path.name}: seed {seed}: {what}, NLL {nll / ticks:.3f} nats/tick, sampled in "
            f"{sample_s:.2f} s -> {mid}")
    if not regen_text:
        txt = out / f"{stem}.chords.txt"
        bars_txt = ch.bars_from_spans(spans, song.bar_starts, song.n_ticks, song.beats)
        header = (
            f"{KEY_PREFIX}{key.name} ({key_origin})\n"
            f"chords for {song.path.name} ({source}); one bar per |, chords in a bar share it evenly\n"
            f"edit and rerun: stripes harmonize {song.path.name} --chords {txt.name}"
        )
        atomic_write_text(txt, ch.format_chord_text(bars_txt, header))
        res.outputs.insert(1, txt)
    sidecar = out / (f"{stem}.regenerate.json" if regen_text else f"{stem}.harmonize.json")
    record: dict[str, Any] = {
        "input": song.path.name,
        "mode": "generative",
        "model": loaded.source,
        "seeds": seeds,
        "temperature": temperature,
        "top_p": top_p,
        "sampler_settings_from": settings_from,
        "key": key.name,
        "key_from": key_origin,
        "chords": source,
        "candidates": cands,
    }
    if regen_text:
        record["regenerated_bars"] = regen_text
        record["regenerated_from"] = str(song.path)
    atomic_write_text(sidecar, json.dumps(record, indent=2) + "\n")
    res.outputs.append(sidecar)
    res.seconds = time.perf_counter() - t0
    res.info.update({
        "chords": source, "key": key.name, "key_from": key_origin, "mode": "generative", "seeds": seeds,
        "temperature": temperature, "top_p": top_p, "accompaniment_notes": cands[0]["accompaniment_notes"],
        "bars": len(song.bar_starts), "candidates": cands,
    })
    log(f"{song.path.name}: chords {source}; {n} candidate(s) at temperature {temperature:g}, top_p "
        f"{top_p:g}" + (f"; audio: {res.info['synth']}" if "synth" in res.info else "")
        + f"; {res.seconds:.2f} s -> {sidecar}")
    return res


__all__ = [
    "DEFAULT_TEMPERATURE", "DEFAULT_TOP_P", "GEN_HINT", "MODES", "TRAIN_HINT", "LoadedAccompanist",
    "accompanist_from", "bars_mask", "chords_from_markers", "describe", "generate_song",
    "load_for_mode", "merge_regenerated", "parse_bars", "regenerated_stem", "sample_rolls",
]
