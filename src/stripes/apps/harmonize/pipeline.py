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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stripes.apps.harmonize import chords as ch
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.estimate import Key, estimate_chords, melody_key, parse_key
from stripes.apps.harmonize.model import LoadedModel, choose_notes, predict_probs
from stripes.apps.harmonize.safety import check_input_file
from stripes.apps.harmonize.song import Song, load_score, read_midi_song, to_grid
from stripes.errors import StripesError
from stripes.fileio import atomic_write_text

if TYPE_CHECKING:
    from stripes.apps.harmonize.generative import LoadedAccompanist

MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
KEY_PREFIX = "key: "  # the chords file's first comment line: "# key: A minor (estimated from the melody)"


@dataclass
class Options:
    """Settings of one ``stripes harmonize`` call (see the CLI for their meaning)."""

    out_dir: Path
    chords: str | None = None
    checkpoint: str | None = None
    wav: bool = False
    melody_track: str | None = None
    threshold: float | None = None
    seed: int | None = None
    chord_track: bool = False
    synth: str = "auto"
    png: bool = True
    key: str | None = None
    musicxml: bool = False
    mode: str = "auto"
    candidates: int = 1
    regenerate: str | None = None
    temperature: float | None = None
    top_p: float | None = None


@dataclass
class Result:
    """What one input produced (``error`` set when it failed)."""

    input: Path
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def read_song(path: Path, melody_track: str | None = None) -> Song:
    """A MIDI file or a MusicXML lead sheet -> Song."""
    if path.suffix.lower() in (".musicxml", ".mxl", ".xml"):
        from stripes.apps.harmonize.leadsheet import read_leadsheet

        return read_leadsheet(path)
    return read_midi_song(path, melody_track)


def chroma_from_notes(notes: np.ndarray, n_ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, 3) grid notes (onset, end, pitch) -> (T, 12) chroma and (T,) lowest pitch (-1 = none). A chord
    holds through silences until the next chord note starts."""
    chroma = np.zeros((n_ticks, 12), np.float32)
    bass = np.full(n_ticks, 999, np.int64)
    for on, end, p in notes:
        on, end = max(int(on), 0), min(int(end), n_ticks)
        if end > on:
            chroma[on:end, int(p) % 12] = 1.0
            bass[on:end] = np.minimum(bass[on:end], int(p))
    bass[bass == 999] = -1
    empty = ~chroma.any(1)
    last = np.maximum.accumulate(np.where(~empty, np.arange(n_ticks), -1))
    fill = empty & (last >= 0)
    chroma[fill] = chroma[last[fill]]
    bass[fill] = bass[last[fill]]
    return chroma, bass


def key_from_option(text: str | None) -> Key | None:
    """``--key`` -> Key (None when not given); a bad string is a one-line HarmonizeError."""
    if text is None:
        return None
    try:
        return parse_key(text)
    except ValueError as exc:
        raise HarmonizeError(f"--key: {exc}") from None


def resolve_chords(
    song: Song, chords_arg: str | None, warn: Callable[[str], None], key: Key | None = None
) -> tuple[list[ch.Span], np.ndarray, str]:
    """(spans, (T, 12) chroma, source description) from --chords, the lead sheet, a chord track of the
    file, or estimated from the melody (in ``key`` when given, e.g. by ``--key``)."""
    T = song.n_ticks
    name = song.path.name
    if chords_arg is not None:
        cpath = Path(chords_arg)
        is_file = cpath.suffix.lower() in MIDI_SUFFIXES + (".txt",) or (
            "|" not in chords_arg and cpath.is_file()
        )
        if is_file and not cpath.is_file():
            raise HarmonizeError(f"{name}: --chords {chords_arg}: file not found")
        if is_file and cpath.suffix.lower() in MIDI_SUFFIXES:
            score = load_score(cpath)
            notes = [(t, n) for t in score.tracks if not t.is_drum for n in t.notes]
            if not notes:
                raise HarmonizeError(f"{cpath}: the chord file has no pitched notes")
            tpq = int(score.ticks_per_quarter)
            arr = np.array([[n.time, n.time + n.duration, n.pitch] for _, n in notes], np.int64)
            grid = np.stack([to_grid(arr[:, 0], tpq), to_grid(arr[:, 1], tpq), arr[:, 2]], axis=1)
            chroma, bass = chroma_from_notes(grid, T)
            return ch.spans_from_chroma(chroma, bass), chroma, f"pitch classes sounding in {cpath.name}"
        if is_file:
            check_input_file(cpath, "--chords")
            try:
                text = cpath.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise HarmonizeError(f"{cpath}: cannot read chords ({exc})") from None
            source = str(cpath)
        else:
            text, source = chords_arg, "--chords"
        bars = ch.parse_chord_text(text, source)
        n_bars = len(song.bar_starts)
        if len(bars) > n_bars:
            warn(
                f"{name}: warning: {len(bars)} chord bars given but the melody has {n_bars} bars; "
                f"the last {len(bars) - n_bars} are ignored"
            )
        elif len(bars) < n_bars:
            warn(f"{name}: note: {len(bars)} chord bars for {n_bars} melody bars; the rest has no chord")
        spans = ch.spans_from_bars(bars, song.bar_starts, T)
        return spans, ch.chroma_roll(spans, T), f"given ({Path(source).name if is_file else source})"
    if song.leadsheet_chords:
        marks = sorted(song.leadsheet_chords, key=lambda m: m[0])
        spans = [
            ch.Span(int(a), int(b), c) for (a, c), (b, _) in zip(marks, marks[1:] + [(T, None)]) if b > a
        ]
        return spans, ch.chroma_roll(spans, T), "chord symbols of the lead sheet"
    if song.chord_notes is not None and len(song.chord_notes):
        chroma, bass = chroma_from_notes(song.chord_notes, T)
        return ch.spans_from_chroma(chroma, bass), chroma, "the chord track of the file"
    spans = estimate_chords(song.grid_notes, song.bar_starts, song.beats, T, key=key)
    how = f"estimated from the melody in {key.name}" if key is not None else "estimated from the melody"
    return spans, ch.chroma_roll(spans, T), how


def chords_and_key(
    song: Song,
    opts: Options,
    log: Callable[[str], None],
    spans_given: list[ch.Span] | None = None,
    given_name: str = "",
) -> tuple[list[ch.Span], np.ndarray, str, Key, str]:
    """(spans, (T, 12) chroma, chords source, key, key origin) of a song; ``spans_given`` (the chord
    markers of a file being regenerated) come before the rules of :func:`resolve_chords`."""
    given_key = key_from_option(opts.key)
    if spans_given:
        spans, chroma = spans_given, ch.chroma_roll(spans_given, song.n_ticks)
        source = f"the chord markers of {given_name}"
    else:
        spans, chroma, source = resolve_chords(song, opts.chords, log, given_key)
    if given_key is not None:
        key, key_origin = given_key, "given with --key"
    else:
        key = melody_key(song.grid_notes, song.bar_starts, song.beats, song.n_ticks, [s.chord for s in spans])
        key_origin = "estimated from the melody"
    log(f"{song.path.name}: key {key.name} ({key_origin})")
    return spans, chroma, source, key, key_origin


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
