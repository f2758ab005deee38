"""Which track of a MIDI file is the melody: every pitched track gets a score from a few musical cues.

A track is sampled on a grid of 32nd notes (onsets and ends rounded to it, so a legato overlap shorter than
a 64th does not count as two notes sounding) and described by:

* ``mono``: the share of its sounding time with exactly one note sounding (a melody: ~1, block chords: ~0);
* ``chordal``: the share of its notes that start together with another of its notes (a melody is not
  made of simultaneous notes; block chords: ~1);
* ``top``: where it sounds together with other pitched tracks, the share of that time its highest note is
  at or above theirs (melodies sit above the accompaniment);
* ``median``: its median pitch; ``register`` = clip((median - 60) / 12, -2, 1) (bass lines score low);
* ``density``: distinct onsets per quarter note over the time it spans (a melody moves; a pedal does not);
* ``name``: +3 for melody, vocal, voice, vox, lead, sing, tune, soprano, theme, lyric; -3 for chord(s),
  harmony; -2 for piano, accomp, comp, bass, drum, perc, pad, rhythm, backing, string(s) (names are read
  case-insensitively as words or prefixes);
* ``program`` (General MIDI): -1.5 bass (33-40 in 1-based GM numbers), -1 percussive and sound effects
  (113-128), -0.5 pads and string ensembles (49-52, 89-96), +0.5 the solo families (voice 53-55, brass,
  reed, pipe and synth lead 57-88).

``score = 2 mono + 1.5 (1 - chordal) + 1.5 top + register + 0.5 min(density, 2) + name + program``.
Drum tracks (channel 10) are never candidates. The weights were set by hand on generated melody + block
chord files and checked on POP909 (tests/apps/test_tracks.py measures both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

MELODY_NAMES = re.compile(r"melod|vocal|voice|vox|lead|sing|tune|soprano|theme|lyric|主旋律|人声", re.I)
CHORD_NAMES = re.compile(r"^\s*(chords?|harmony|akkorde?)\s*$", re.I)
CHORDISH_NAMES = re.compile(r"chord|harmon|akkord", re.I)
ACCOMP_NAMES = re.compile(
    r"piano|accomp|\bcomp|bass|drum|perc|\bpad|rhythm|backing|string|伴奏|钢琴|贝斯|鼓", re.I
)
W_MONO, W_SOLO, W_TOP, W_DENSITY = 2.0, 1.5, 1.5, 0.5
CELLS_PER_QUARTER = 8
MAX_CELLS = 400_000


@dataclass
class TrackScore:
    """The cues of one candidate track and its total ``score`` (higher = more like a melody)."""

    index: int
    label: str
    n_notes: int
    mono: float
    chordal: float
    top: float
    median: float
    register: float
    density: float
    name: float
    program: float
    score: float

    def line(self) -> str:
        """One line for stderr: number, name, score and components."""
        return (
            f"{self.label:<28} score {self.score:5.2f}: mono {self.mono:.2f}, chordal {self.chordal:.2f}, "
            f"top {self.top:.2f}, median pitch {self.median:.0f} ({self.register:+.2f}), "
            f"onsets/quarter {self.density:.2f}, name {self.name:+g}, program {self.program:+g}"
        )


def name_bonus(name: str) -> float:
    """+3 melody-like, -3 chord-like, -2 accompaniment-like, 0 otherwise (see the module docstring)."""
    name = name or ""
    if MELODY_NAMES.search(name):
        return 3.0
    if CHORDISH_NAMES.search(name):
        return -3.0
    if ACCOMP_NAMES.search(name):
        return -2.0
    return 0.0


def program_bonus(program: int) -> float:
    """General MIDI program (0-based) -> bonus: bass -1.5, percussive/effects -1, pads/ensembles -0.5,
    solo families +0.5."""
    p = int(program)
    if 32 <= p <= 39:
        return -1.5
    if p >= 112:
        return -1.0
    if 48 <= p <= 51 or 88 <= p <= 95:
        return -0.5
    if 52 <= p <= 54 or 56 <= p <= 87:
        return 0.5
    return 0.0


def _cells(notes: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    on = np.round(notes[:, 0] / cell).astype(np.int64)
    off = np.maximum(np.round((notes[:, 0] + np.maximum(notes[:, 1], 0)) / cell).astype(np.int64), on + 1)
    return on, off


def rank_tracks(score: Any, notes_of: Any) -> list[TrackScore]:
    """Score every pitched non-drum track of a symusic Score; best first. ``notes_of(track)`` gives the
    (n, 4) int64 (time, duration, pitch, velocity) array of a track."""
    tpq = max(int(score.ticks_per_quarter), 1)
    tracks = list(score.tracks)
    cand = [i for i, t in enumerate(tracks) if not t.is_drum and len(t.notes) > 0]
    if not cand:
        return []
    arrays = {i: notes_of(tracks[i]) for i in cand}
    end = max(int((a[:, 0] + np.maximum(a[:, 1], 0)).max()) for a in arrays.values())
    cell = max(tpq / CELLS_PER_QUARTER, (end + 1) / MAX_CELLS, 1e-9)
    n_cells = int(np.ceil((end + 1) / cell)) + 2
    count: dict[int, np.ndarray] = {}
    top: dict[int, np.ndarray] = {}
    cells: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    top1 = np.full(n_cells, -1, np.int16)  # highest pitch sounding in any track, its track, the runner-up
    who = np.full(n_cells, -1, np.int32)
    top2 = np.full(n_cells, -1, np.int16)
    for i in cand:
        on, off = _cells(arrays[i], cell)
        cells[i] = (on, off)
        diff = np.zeros(n_cells + 1, np.int32)
        np.add.at(diff, on, 1)
        np.add.at(diff, off, -1)
        count[i] = np.cumsum(diff)[:n_cells]
        hi = np.full(n_cells, -1, np.int16)
        for a, b, p in zip(on, off, arrays[i][:, 2]):
            seg = hi[a:b]
            np.maximum(seg, p, out=seg)
        top[i] = hi
        better = hi > top1
        top2 = np.where(better, top1, np.maximum(top2, hi))
        who = np.where(better, i, who)
        top1 = np.where(better, hi, top1)
    out = []
    for i in cand:
        a = arrays[i]
        on, off = cells[i]
        sounding = count[i] > 0
        n_sound = int(sounding.sum())
        mono = float((count[i] == 1).sum() / max(n_sound, 1))
        _, first, multiplicity = np.unique(on, return_index=True, return_counts=True)
        chordal = float(multiplicity[multiplicity > 1].sum() / len(on))
        if len(cand) > 1:
            other_top = np.where(who == i, top2, top1)
            both = sounding & (other_top >= 0)
            top_share = float((top[i][both] >= other_top[both]).mean()) if both.any() else 0.5
        else:
            top_share = 1.0
        median = float(np.median(a[:, 2]))
        register = float(np.clip((median - 60.0) / 12.0, -2.0, 1.0))
        span_q = max((int(off.max()) - int(on.min())) * cell / tpq, 1.0)
        density = float(len(first) / span_q)
        nb, pb = name_bonus(tracks[i].name), program_bonus(tracks[i].program)
        total = (
            W_MONO * mono
            + W_SOLO * (1.0 - chordal)
            + W_TOP * top_share
            + register
            + W_DENSITY * min(density, 2.0)
            + nb
            + pb
        )
        name = tracks[i].name.strip()
        label = f'track {i + 1} "{name}"' if name else f"track {i + 1} (unnamed)"
        out.append(
            TrackScore(i, label, len(a), mono, chordal, top_share, median, register, density, nb, pb, total)
        )
    out.sort(key=lambda s: (-s.score, s.index))
    return out
