"""Random two-track MIDI files for the melody-choice tests: a melody and a busier block-chord track, both
unnamed, program 0, in random order.

Each file: 8-24 bars of 4/4 (3/4 one time in five) at 480 ticks per quarter; a random key (major or
minor) and a diatonic progression of one or two chords per bar; the chords as 3-4 note block voicings
(root position or inversions, an added bass root one time in three) whose lowest note lies in MIDI
43..62 (G2..D4), struck in a random comping pattern (whole, halves, quarters, "1 and 3-and", eighths);
the melody a random walk on the scale around a centre in 57..79 (A3..G5) with eighth to half-note rhythms
and rests, a legato overlap of 5-15 % on one file in five, and a few two-note double stops on one file in
ten. The chord track always has more notes than the melody (the comping pattern is made busier until it
does), the case where "the busiest track" picks the chords.

``python tests/apps/gen_tracks.py [N] [SEED]`` prints the share of N files (default 200) whose melody
``stripes harmonize`` picks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
PATTERNS = (  # onsets, durations in eighths of a 4/4 bar (scaled to 3/4 by dropping what falls outside)
    ((0,), (8,)),
    ((0, 4), (4, 4)),
    ((0, 2, 4, 6), (2, 2, 2, 2)),
    ((0, 3, 4, 7), (3, 1, 3, 1)),
    ((0, 1, 2, 3, 4, 5, 6, 7), (1,) * 8),
)


def _chord_track(rng: np.random.Generator, n_bars: int, beats: int, tpq: int, tonic: int, scale, busy: int):
    eighth = tpq // 2
    bar = beats * tpq
    low = int(rng.integers(43, 63))
    add_bass = rng.random() < 1 / 3
    four = rng.random() < 0.4
    notes = []
    for b in range(n_bars):
        halves = 2 if rng.random() < 0.4 else 1
        for h in range(halves):
            degree = int(rng.integers(0, 7))
            tones = [scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4, 6)[: 3 + four]]
            pitches = sorted(tonic + t for t in tones)
            inv = int(rng.integers(0, 3))
            for _ in range(inv):
                pitches = sorted(pitches[1:] + [pitches[0] + 12])
            octave = 12 * round((low - pitches[0]) / 12)
            pitches = [p + octave for p in pitches]
            if add_bass:  # the root just below the voicing
                root_pc = (tonic + scale[degree]) % 12
                pitches = [pitches[0] - ((pitches[0] - root_pc - 1) % 12 + 1)] + pitches
            on_p, du_p = PATTERNS[min(busy + int(rng.integers(0, 2)), len(PATTERNS) - 1)]
            start, length = b * bar + h * bar // halves, bar // halves
            for o, d in zip(on_p, du_p):
                t = o * eighth * length // (4 * tpq)
                if t >= length:
                    continue
                dur = min(d * eighth * length // (4 * tpq), length - t)
                for p in pitches:
                    vel = int(rng.integers(50, 80))
                    notes.append((start + t, max(dur - 10, 1), int(np.clip(p, 24, 100)), vel))
    return notes


def _melody(rng: np.random.Generator, n_bars: int, beats: int, tpq: int, tonic: int, scale):
    end = n_bars * beats * tpq
    centre = int(rng.integers(57, 80))
    legato = rng.random() < 0.2
    doubles = rng.random() < 0.1
    steps = [s + 12 * o for o in (-2, -1, 0, 1, 2) for s in scale]
    pcs = np.array([60 + tonic + s for s in steps])
    idx = int(np.argmin(np.abs(pcs - centre)))
    durs = np.array([tpq // 2, tpq // 2, tpq, tpq, tpq * 3 // 2, tpq * 2, tpq // 4])
    t, notes = 0, []
    while t < end:
        d = int(rng.choice(durs))
        if rng.random() < 0.15:
            t += d
            continue
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(pcs) - 1))
        if abs(pcs[idx] - centre) > 9:
            idx = int(np.clip(idx + (-1 if pcs[idx] > centre else 1), 0, len(pcs) - 1))
        dur = int(d * (1 + rng.uniform(0.05, 0.15))) if legato else max(d - int(rng.integers(0, tpq // 8)), 1)
        vel = int(rng.integers(70, 110))
        notes.append((t, dur, int(pcs[idx]), vel))
        if doubles and rng.random() < 0.1:
            notes.append((t, dur, int(pcs[max(idx - 2, 0)]), vel))
        t += d
    return notes


def two_track_file(path: Path, seed: int, tpq: int = 480) -> int:
    """Write one random melody + block-chord file; returns the melody's track index (0-based)."""
    import symusic

    rng = np.random.default_rng(seed)
    beats = 3 if rng.random() < 0.2 else 4
    n_bars = int(rng.integers(8, 25))
    tonic = int(rng.integers(0, 12))
    scale = MINOR if rng.random() < 0.4 else MAJOR
    melody = _melody(rng, n_bars, beats, tpq, tonic, scale)
    busy = int(rng.integers(0, 3))
    chords = _chord_track(rng, n_bars, beats, tpq, tonic, scale, busy)
    while len(chords) <= len(melody):
        busy += 1
        chords = _chord_track(rng, n_bars, beats, tpq, tonic, scale, busy)
    s = symusic.Score(tpq)
    s.tempos.append(symusic.Tempo(0, float(rng.integers(70, 150))))
    s.time_signatures.append(symusic.TimeSignature(0, beats, 4))
    melody_first = bool(rng.random() < 0.5)
    for notes in (melody, chords) if melody_first else (chords, melody):
        tr = symusic.Track("", 0, False)
        for t, d, p, v in notes:
            tr.notes.append(symusic.Note(int(t), int(d), int(p), int(v)))
        s.tracks.append(tr)
    s.dump_midi(str(path))
    return 0 if melody_first else 1


def accuracy(folder: Path, n: int, seed: int = 0) -> tuple[float, list[int]]:
    """Share of ``n`` generated files whose melody track is chosen, and the seeds of the misses."""
    from stripes.apps.harmonize.song import choose_melody, load_score

    misses = []
    for k in range(n):
        path = folder / f"two_track_{k}.mid"
        truth = two_track_file(path, seed * 100_003 + k)
        score = load_score(path)
        assert len(score.tracks) == 2 and len(score.tracks[1 - truth].notes) > len(score.tracks[truth].notes)
        idx, _, _, _ = choose_melody(score, path, None)
        if idx != truth:
            misses.append(seed * 100_003 + k)
    return 1 - len(misses) / n, misses


if __name__ == "__main__":
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with tempfile.TemporaryDirectory() as d:
        acc, misses = accuracy(Path(d), n, seed)
    print(f"melody track chosen in {acc:.1%} of {n} generated melody + block-chord files (misses: {misses})")
