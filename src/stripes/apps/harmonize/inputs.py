"""What one ``stripes harmonize`` call reads and decides before a model plays: its options and result, the
song, its chords and its key (shared by the parallel pipeline and the generative mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stripes.apps.harmonize import chords as ch
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.estimate import Key, estimate_chords, melody_key, parse_key
from stripes.apps.harmonize.safety import check_input_file
from stripes.apps.harmonize.song import Song, load_score, read_midi_song, to_grid

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
