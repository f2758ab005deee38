"""Reading a melody from a MIDI file: track choice, skyline, bar grid, quantization to the training grid.

The input is kept as a symusic ``Score`` in its own ticks (``tpq`` per quarter) so that the output MIDI can
hold the melody note for note with the same tempo and time-signature events. The model sees the melody on
the training grid (16 ticks per quarter note, 64 per 4/4 bar).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.safety import check_input_file
from stripes.apps.harmonize.tracks import CHORD_NAMES, rank_tracks

GRID = 16  # ticks per quarter note of the training grid
SKYLINE_CHORDAL = 0.2  # a chosen track with more simultaneous onsets than this is reduced to its top voice
RANK_FORMULA = "score = 2 mono + 1.5 (1 - chordal) + 1.5 top + register + 0.5 density + name + program"


@dataclass
class Song:
    """A melody to harmonize.

    ``score``: the input as read (input ticks); ``melody``: the melody notes as an (n, 4) int64 array of
    (time, duration, pitch, velocity) in input ticks; ``grid_notes``: (n, 3) (onset, end, pitch) on the
    training grid; ``bar_starts`` (n_bars,) ticks of the grid where bars begin and ``beats`` (n_bars,) beats
    per bar; ``n_ticks``: length on the grid (to the end of the last bar); ``chord_notes``: (m, 3) grid
    (onset, end, pitch) of a chord track found in the same file, or None; ``leadsheet_chords``: spans
    from a lead sheet, or None.
    """

    path: Path
    score: Any
    melody: np.ndarray
    melody_track: str
    grid_notes: np.ndarray
    bar_starts: np.ndarray
    beats: np.ndarray
    n_ticks: int
    moved_onsets: int
    chord_notes: np.ndarray | None = None
    leadsheet_chords: list[Any] | None = None
    melody_program: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def tpq(self) -> int:
        return int(self.score.ticks_per_quarter)

    def melody_roll(self) -> np.ndarray:
        """(n_ticks, 128) float32 frame roll of the melody on the training grid."""
        roll = np.zeros((self.n_ticks, 128), np.float32)
        for on, end, p in self.grid_notes:
            roll[on:end, p] = 1.0
        return roll


def track_label(i: int, track: Any) -> str:
    """'track 2 "Piano"' (1-based numbers, as in --melody-track)."""
    return f'track {i + 1} "{track.name.strip()}"' if track.name.strip() else f"track {i + 1} (unnamed)"


def notes_array(track: Any) -> np.ndarray:
    """(n, 4) int64 (time, duration, pitch, velocity) of a symusic track, sorted by time then pitch."""
    if len(track.notes) == 0:
        return np.zeros((0, 4), np.int64)
    n = track.notes.numpy()
    arr = np.stack([n["time"], n["duration"], n["pitch"], n["velocity"]], axis=1).astype(np.int64)
    return arr[np.lexsort((arr[:, 2], arr[:, 0]))]


def skyline(notes: np.ndarray) -> np.ndarray:
    """Top voice of (n, 4) notes: the highest note per onset, each cut at the next kept onset."""
    if len(notes) == 0:
        return notes
    order = np.lexsort((-notes[:, 2], notes[:, 0]))
    s = notes[order]
    keep = np.r_[True, s[1:, 0] != s[:-1, 0]]
    top = s[keep].copy()
    # a note still sounding above a new onset hides that onset: drop notes under a higher held note
    out: list[np.ndarray] = []
    for note in top:
        if out and out[-1][0] + out[-1][1] > note[0]:
            if out[-1][2] > note[2] and out[-1][0] + out[-1][1] >= note[0] + note[1]:
                continue
            out[-1] = out[-1].copy()
            out[-1][1] = note[0] - out[-1][0]
        out.append(note)
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def choose_melody(score: Any, path: Path, choice: str | None) -> tuple[int, bool, str, list[str]]:
    """(track index, apply skyline?, reason, ranking lines) of the melody track; ``choice`` is
    --melody-track. Without it, the best-scoring track of :func:`tracks.rank_tracks` (a name like
    "melody" counts most); the ranking is printed on stderr when there are several pitched tracks."""
    tracks = list(score.tracks)
    listing = ", ".join(track_label(i, t) for i, t in enumerate(tracks)) or "none"
    ranking = rank_tracks(score, notes_array)
    lines = [f"melody candidates, best first ({RANK_FORMULA}):"] + [
        f"  {r.line()}" for r in ranking
    ] if len(ranking) > 1 else []
    if choice is not None:
        if choice.strip().isdigit():
            i = int(choice) - 1
            if not 0 <= i < len(tracks):
                raise HarmonizeError(f"{path}: --melody-track {choice}: no such track (tracks: {listing})")
        else:
            found = [j for j, t in enumerate(tracks) if t.name.strip().lower() == choice.strip().lower()]
            if not found:
                raise HarmonizeError(f"{path}: --melody-track {choice!r}: no such track (tracks: {listing})")
            i = found[0]
        if tracks[i].is_drum or len(tracks[i].notes) == 0:
            raise HarmonizeError(
                f"{path}: --melody-track {choice}: {track_label(i, tracks[i])} has no pitched notes"
            )
        return i, False, "chosen with --melody-track", lines
    if not any(len(t.notes) for t in tracks):
        raise HarmonizeError(f"{path}: the file has no notes")
    if not ranking:
        raise HarmonizeError(f"{path}: the file has only drum notes (no pitched track to harmonize)")
    best = ranking[0]
    if len(ranking) == 1:
        why = "the only pitched track"
    elif best.name > 0:
        why = f"named like a melody; score {best.score:.2f}"
    else:
        why = f"best melody score {best.score:.2f}, next {ranking[1].score:.2f}"
    polyphonic = best.chordal > SKYLINE_CHORDAL
    if polyphonic:
        why = f"top voice (skyline); {why}"
    return best.index, polyphonic, why, lines


def bar_grid(score: Any, end_in: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Bar starts (input ticks), beats per bar and the end of the last bar, covering [0, end_in).

    No time signature = 4/4. A time-signature change inside a bar ends that bar early (a short bar)."""
    tpq = int(score.ticks_per_quarter)
    sigs = sorted(
        ((int(ts.time), int(ts.numerator), int(ts.denominator)) for ts in score.time_signatures),
        key=lambda s: s[0],
    )
    sigs = [s for s in sigs if s[1] > 0 and s[2] > 0]
    if not sigs or sigs[0][0] > 0:
        sigs.insert(0, (0, 4, 4))
    starts: list[int] = []
    beats: list[int] = []
    t, k = 0, 0
    while t < end_in or not starts:
        while k + 1 < len(sigs) and sigs[k + 1][0] <= t:
            k += 1
        _, num, den = sigs[k]
        length = max(num * 4 * tpq // den, 1)
        nxt = sigs[k + 1][0] if k + 1 < len(sigs) else None
        end = t + length if nxt is None or nxt >= t + length else nxt
        starts.append(t)
        beats.append(num if end - t == length else max(1, round(num * (end - t) / length)))
        t = end
        if len(starts) > 100_000:
            raise HarmonizeError("too many bars (over 100000): is the file corrupt?")
    return np.array(starts, np.int64), np.array(beats, np.int64), int(t)


def to_grid(ticks: np.ndarray, tpq: int) -> np.ndarray:
    """Input ticks -> training-grid ticks (rounded half to even)."""
    return np.round(np.asarray(ticks, np.float64) * GRID / tpq).astype(np.int64)


def song_from_score(
    score: Any, path: Path, melody_track: str | None = None, forced_track: int | None = None
) -> Song:
    """Build a :class:`Song` from a parsed symusic Score (ticks)."""
    tpq = int(score.ticks_per_quarter)
    if tpq <= 0:
        raise HarmonizeError(f"{path}: bad ticks per quarter note ({tpq})")
    if forced_track is None:
        idx, use_skyline, why, ranking = choose_melody(score, path, melody_track)
    else:
        idx, use_skyline, why, ranking = forced_track, False, "the lead sheet's melody part", []
    track = score.tracks[idx]
    notes = notes_array(track)
    if use_skyline:
        notes = skyline(notes)
    notes = notes[(notes[:, 2] >= 0) & (notes[:, 2] < 128)]
    if len(notes) == 0:
        raise HarmonizeError(f"{path}: the melody track has no notes")
    on = to_grid(notes[:, 0], tpq)
    end = np.maximum(to_grid(notes[:, 0] + np.maximum(notes[:, 1], 0), tpq), on + 1)
    moved = int(np.count_nonzero((notes[:, 0] * GRID) % tpq))
    chord_notes = None
    for j, t in enumerate(score.tracks):
        if j != idx and not t.is_drum and len(t.notes) and CHORD_NAMES.match(t.name or ""):
            c = notes_array(t)
            chord_notes = np.stack([to_grid(c[:, 0], tpq), to_grid(c[:, 0] + c[:, 1], tpq), c[:, 2]], axis=1)
            break
    end_in = int(max(notes[:, 0].max() + 1, (notes[:, 0] + notes[:, 1]).max()))
    starts_in, beats, last_end = bar_grid(score, end_in)
    bar_starts = to_grid(starts_in, tpq)
    n_ticks = int(max(to_grid(np.array([last_end]), tpq)[0], end.max()))
    keep = np.r_[True, np.diff(bar_starts) > 0]  # bars shorter than a grid tick vanish
    label = track_label(idx, track)
    msg = f"{path.name}: melody = {label} ({why}), {len(notes)} notes"
    if moved:
        msg += f"; {moved} of {len(notes)} onsets moved to the 16-per-quarter grid"
    return Song(
        path=path,
        score=score,
        melody=notes,
        melody_track=label,
        grid_notes=np.stack([on, end, notes[:, 2]], axis=1),
        bar_starts=bar_starts[keep],
        beats=beats[keep],
        n_ticks=n_ticks,
        moved_onsets=moved,
        chord_notes=chord_notes,
        melody_program=int(track.program),
        messages=[f"{path.name}: {line}" for line in ranking] + [msg],
    )


def load_score(path: Path) -> Any:
    """Parse a MIDI file with symusic (ticks); every failure is a one-line HarmonizeError."""
    import symusic

    check_input_file(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"MThd":
        raise HarmonizeError(f"{path}: not a MIDI file (no MThd header)")
    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises RuntimeError/ValueError/IndexError on corrupt data
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise HarmonizeError(f"{path}: corrupt or truncated MIDI file ({text})") from None
    return score


def read_midi_song(path: Path, melody_track: str | None = None) -> Song:
    """Read a melody MIDI file into a :class:`Song`."""
    return song_from_score(load_score(path), path, melody_track)
