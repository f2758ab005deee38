"""Regenerating bars of a harmonized file: which ticks to sample again, the kept accompaniment as rolls, and
the merge of kept and new notes (used by :mod:`stripes.apps.harmonize.generative`)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from stripes.apps.harmonize import chords as ch
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.song import Song, notes_array, to_grid

ACC_TRACK = "accompaniment"


def parse_bars(text: str, n_bars: int | None = None) -> list[int]:
    """``--regenerate`` bars, 1-based (``"5-8"``, ``"3"``, ``"2-4,7"``) -> sorted 0-based indices; checked
    against ``n_bars`` when given."""
    out: set[int] = set()
    parts = [p.strip() for p in str(text).split(",")]
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise HarmonizeError(
                f"--regenerate {text}: cannot read bars {part!r} (write e.g. 5-8, 3 or 2-4,7; bar 1 is the "
                "first bar of the file)"
            )
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if a < 1 or b < a:
            raise HarmonizeError(f"--regenerate {text}: bars count from 1 and a range goes up ({part!r})")
        out.update(range(a - 1, b))
    bars = sorted(out)
    if n_bars is not None and bars and bars[-1] >= n_bars:
        raise HarmonizeError(f"--regenerate {text}: the file has {n_bars} bars")
    return bars


def bars_mask(song: Song, bars: list[int]) -> np.ndarray:
    """(T,) bool: the grid ticks of the given 0-based bars."""
    edges = np.r_[np.asarray(song.bar_starts, np.int64), song.n_ticks]
    mask = np.zeros(song.n_ticks, bool)
    for b in bars:
        mask[int(edges[b]) : int(edges[b + 1])] = True
    return mask


# ---------------------------------------------------------------------------------------------------------
# sampling


def accompaniment_track_notes(song: Song) -> np.ndarray:
    """(n, 4) (time, duration, pitch, velocity) in input ticks of the file's track ``accompaniment``."""
    for t in song.score.tracks:
        if t.name.strip().lower() == ACC_TRACK and not t.is_drum:
            notes = notes_array(t)
            return notes[(notes[:, 2] >= 0) & (notes[:, 2] < 128)]
    names = ", ".join(repr(t.name) for t in song.score.tracks) or "none"
    raise HarmonizeError(
        f"{song.path}: --regenerate needs a file written by stripes harmonize (tracks 'melody' and "
        f"'accompaniment'); its tracks: {names}"
    )


def grid_of(notes: np.ndarray, tpq: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset and end on the training grid of (n, 4) input-tick notes (a note lasts at least a tick)."""
    on = to_grid(notes[:, 0], tpq)
    end = np.maximum(to_grid(notes[:, 0] + np.maximum(notes[:, 1], 0), tpq), on + 1)
    return on, end


def rolls_of(notes: np.ndarray, tpq: int, n_ticks: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 128) onset and frame rolls of (n, 4) input-tick notes on the grid."""
    onset = np.zeros((n_ticks, 128), bool)
    frame = np.zeros((n_ticks, 128), bool)
    on, end = grid_of(notes, tpq)
    for a, b, p in zip(on, end, notes[:, 2]):
        if a < n_ticks:
            onset[a, p] = True
            frame[a : min(b, n_ticks), p] = True
    return onset, frame


def chords_from_markers(song: Song) -> list[ch.Span] | None:
    """Chord spans from the file's marker meta events that read as chord symbols (``N.C.`` = no chord),
    as stripes harmonize writes them; None when there are none. Those markers are removed from
    ``song.score`` (the output writes the chords used again); other markers (sections) stay."""
    marks = list(getattr(song.score, "markers", []))
    found: list[tuple[int, ch.Chord]] = []
    others = []
    for m in marks:
        text = str(m.text).strip()
        try:
            chord = ch.parse_chord(text)
        except ValueError:
            others.append(m)
            continue
        found.append((int(to_grid(np.array([int(m.time)]), song.tpq)[0]), chord))
    if not found:
        return None
    song.score.markers.clear()
    for m in others:
        song.score.markers.append(m)
    found.sort(key=lambda f: f[0])
    T = song.n_ticks
    spans = []
    for (a, c), (b, _) in zip(found, found[1:] + [(T, None)]):
        a, b = max(a, 0), min(b, T)
        if b > a:
            spans.append(ch.Span(a, b, c))
    return spans


def merge_regenerated(
    orig: np.ndarray, onset: np.ndarray, frame: np.ndarray, regen: np.ndarray, tpq: int
) -> tuple[np.ndarray, np.ndarray]:
    """The accompaniment after regeneration: (new grid notes (m, 3) pitch, onset, offset; kept notes
    (k, 4) in input ticks with their velocities).

    Every original note that does not sound in the regenerated ticks is kept exactly (time, duration,
    velocity). A note crossing into the bars keeps its start and velocity; its length is what the sampler
    held (the model sees it sounding and decides). A kept note that ends at the bars' first tick but that
    the sampler holds on keeps its end; the held part is a new note from there. A note crossing out of the
    bars keeps its tail, which becomes a note from the first kept tick unless a sampled note of that pitch
    runs into it."""
    from stripes.apps.harmonize.render import _grid_to_input, notes_from_rolls

    T = len(regen)
    on, end = grid_of(orig, tpq)
    inside = np.array([a < T and bool(regen[a : min(b, T)].any()) for a, b in zip(on, end)], bool)
    exact = Counter((int(p), int(a), int(min(b, T))) for p, a, b in zip(orig[~inside, 2], on[~inside],
                                                                        end[~inside]))
    out_by_start = {(int(p), int(a)): int(b) for p, a, b in zip(orig[~inside, 2], on[~inside], end[~inside])}
    cross_by_start = {(int(orig[i, 2]), int(on[i])): i for i in np.flatnonzero(inside) if not regen[on[i]]}
    kept = [orig[~inside]]
    new = []
    for p, a, b in notes_from_rolls(frame, onset):
        key = (int(p), int(a), int(b))
        if exact[key] > 0:  # an original note kept note for note (written from the input, not the grid)
            exact[key] -= 1
            continue
        if not regen[a] and (p, a) in out_by_start:  # held on past a kept note's end: a new note from there
            e = out_by_start[(p, a)]
            if b > e:
                new.append((p, e, b))
            continue
        if not regen[a] and (p, a) in cross_by_start:  # a note crossing into the bars: start kept
            i = cross_by_start.pop((p, a))
            stop = int(_grid_to_input(np.array([b]), tpq)[0])
            kept.append(np.array([[orig[i, 0], max(stop - orig[i, 0], 1), p, orig[i, 3]]], np.int64))
            continue
        new.append((p, a, b))
    grid = np.array(new, np.int64).reshape(-1, 3)
    return grid, np.concatenate(kept).reshape(-1, 4)


# ---------------------------------------------------------------------------------------------------------
# the generative pipeline


def regenerated_stem(path: Path) -> str:
    """The stem of a regenerated file: the input's, a trailing ``.harmonized`` or ``.regenerated`` removed."""
    stem = path.stem
    for tail in (".harmonized", ".regenerated"):
        if stem.endswith(tail) and len(stem) > len(tail):
            return stem[: -len(tail)]
    return stem
