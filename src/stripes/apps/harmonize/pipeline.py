"""One melody in, an accompaniment out: read, chords, the model, MIDI / PNG / chords.txt / WAV.

The model is parallel (one forward pass, thresholded: :func:`harmonize_song`) or generative (sampled tick
by tick, candidates, bars regenerated: :mod:`stripes.apps.harmonize.generative`); ``Options.mode`` picks,
see :func:`stripes.apps.harmonize.generative.load_for_mode`. :func:`harmonize_files` loads the model once
and runs every input; a failing input is reported (one line) and the others are still written.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stripes.apps.harmonize import chords as ch
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.model import LoadedModel, choose_notes, predict_probs
from stripes.apps.harmonize.song import Song, read_midi_song
from stripes.errors import StripesError
from stripes.fileio import atomic_write_text

if TYPE_CHECKING:
    from stripes.apps.harmonize.generative import LoadedAccompanist

from stripes.apps.harmonize.inputs import (  # noqa: F401 (re-exported: the pipeline's public names)
    KEY_PREFIX,
    MIDI_SUFFIXES,
    Options,
    Result,
    chords_and_key,
    chroma_from_notes,
    key_from_option,
    read_song,
    resolve_chords,
)


def harmonize_song(
    song: Song, loaded: LoadedModel, opts: Options, stem: str, log: Callable[[str], None]
) -> Result:
    """Harmonize one read song and write its outputs; returns the :class:`Result`. A generative model
    (:class:`~stripes.apps.harmonize.generative.LoadedAccompanist`) goes to
    :func:`~stripes.apps.harmonize.generative.generate_song`."""
    from stripes.apps.harmonize.generative import GEN_HINT, LoadedAccompanist, generate_song
    from stripes.apps.harmonize.render import build_score, write_midi, write_png

    if isinstance(loaded, LoadedAccompanist):
        return generate_song(song, loaded, opts, stem, log)
    if opts.regenerate:
        raise HarmonizeError(f"--regenerate needs a generative model; {GEN_HINT}")
    t0 = time.perf_counter()
    res = Result(song.path)
    for m in song.messages:
        log(m)
    spans, chroma, source, key, key_origin = chords_and_key(song, opts, log)
    probs = predict_probs(loaded, song.melody_roll(), chroma)
    threshold = loaded.threshold if opts.threshold is None else float(opts.threshold)
    chosen = choose_notes(probs, threshold, loaded.merge, opts.seed)
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    score = build_score(
        song, chosen, spans if opts.chord_track else None, chords=spans, key=key, seed=opts.seed
    )
    paths = {
        "mid": out / f"{stem}.harmonized.mid",
        "png": out / f"{stem}.png",
        "txt": out / f"{stem}.chords.txt",
        "wav": out / f"{stem}.wav",
        "xml": out / f"{stem}.musicxml",
    }
    write_midi(paths["mid"], score)
    bars = ch.bars_from_spans(spans, song.bar_starts, song.n_ticks, song.beats)
    header = (
        f"{KEY_PREFIX}{key.name} ({key_origin})\n"
        f"chords for {song.path.name} ({source}); one bar per |, chords in a bar share it evenly\n"
        f"edit and rerun: stripes harmonize {song.path.name} --chords {paths['txt'].name}"
    )
    atomic_write_text(paths["txt"], ch.format_chord_text(bars, header))
    res.outputs += [paths["mid"], paths["txt"]]
    if opts.png:
        write_png(paths["png"], song, probs, chosen, spans, title=f"{song.path.name}: {source}")
        res.outputs.append(paths["png"])
    if opts.musicxml:
        from stripes.apps.harmonize.musicxml import write_musicxml

        res.info["musicxml"] = write_musicxml(paths["xml"], song, chosen, spans, key)
        res.outputs.append(paths["xml"])
    if opts.wav:
        from stripes.apps.harmonize.audio import render_wav

        res.info["synth"] = render_wav(paths["wav"], score, opts.synth)
        res.outputs.append(paths["wav"])
    res.seconds = time.perf_counter() - t0
    n_notes = int(len(score.tracks[1].notes))
    res.info.update(
        {
            "chords": source,
            "key": key.name,
            "key_from": key_origin,
            "threshold": threshold,
            "accompaniment_notes": n_notes,
            "bars": len(song.bar_starts),
        }
    )
    log(
        f"{song.path.name}: chords {source}; {n_notes} accompaniment notes at threshold {threshold:g}"
        + (f"; audio: {res.info['synth']}" if "synth" in res.info else "")
        + f"; {res.seconds:.2f} s -> {paths['mid']}"
    )
    return res


def _stems(paths: list[Path], regenerate: bool = False) -> list[str]:
    from stripes.apps.harmonize.generative import regenerated_stem

    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = regenerated_stem(p) if regenerate else p.stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def harmonize_files(
    inputs: list[str | Path],
    opts: Options,
    log: Callable[[str], None] | None = None,
    debug: bool = False,
    loaded: LoadedModel | LoadedAccompanist | None = None,
) -> list[Result]:
    """Harmonize every input with one model load; errors are collected per input (``Result.error``).

    The model: ``loaded`` when given, else :func:`~stripes.apps.harmonize.generative.load_for_mode` of
    ``opts.checkpoint`` and ``opts.mode``. ``--regenerate`` and ``--candidates`` > 1 need a generative one
    (checked once, before any input is read)."""
    from stripes.apps.harmonize.generative import GEN_HINT, LoadedAccompanist, describe, load_for_mode

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    loaded = loaded or load_for_mode(opts.checkpoint, opts.mode)
    generative = isinstance(loaded, LoadedAccompanist)
    if not generative and (opts.regenerate or int(opts.candidates) > 1):
        flag = "--regenerate" if opts.regenerate else "--candidates"
        why = "--mode parallel was asked" if opts.mode == "parallel" else "the model is a parallel one"
        raise HarmonizeError(f"{flag} needs the generative mode ({why}); {GEN_HINT}")
    log(describe(loaded))
    if generative and opts.threshold is not None:
        log("note: --threshold is for --mode parallel; ignored by the generative model")
    if not generative and (opts.temperature is not None or opts.top_p is not None):
        log("note: --temperature / --top-p are for the generative model; ignored in --mode parallel")
    paths = [Path(p) for p in inputs]
    results = []
    for path, stem in zip(paths, _stems(paths, bool(opts.regenerate))):
        try:
            if opts.regenerate:
                if path.suffix.lower() not in MIDI_SUFFIXES:
                    raise HarmonizeError(
                        f"{path}: --regenerate reads a MIDI file written by stripes harmonize"
                    )
                song = read_midi_song(path, opts.melody_track or "melody")
            else:
                song = read_song(path, opts.melody_track)
            results.append(harmonize_song(song, loaded, opts, stem, log))
        except StripesError as exc:
            if debug:
                raise
            msg = str(exc) if str(path) in str(exc) or path.name in str(exc) else f"{path}: {exc}"
            log(f"stripes: error: {msg}")
            results.append(Result(path, error=msg))
        except Exception as exc:  # never a traceback for one bad input in a batch (--debug shows it)
            if debug:
                raise
            msg = f"{path}: cannot harmonize ({type(exc).__name__}: {str(exc)[:160]}); rerun with --debug"
            log(f"stripes: error: {msg}")
            results.append(Result(path, error=msg))
    return results
