"""Rule baselines for accompaniment texture: block chords of the annotated triad on every beat.

:func:`rule_accompaniment` turns a (T, 12) chord chroma (the BIN context) into (frame, onset) rolls: on
every beat (every 16 ticks of the song grid) the chord sounding at that tick is struck as a block chord
and held until the next beat; the root in the bass register (the pitch of the root's class in F#2..F3,
MIDI 42..53, i.e. nearest to C3) and the triad (root, third, fifth) in the mid register (each pitch class
in F#3..F4, MIDI 54..65, nearest to C4). Every note is a chord tone of the chroma. See docs/metrics.md.
"""

from __future__ import annotations

import numpy as np

from stripes.errors import DataError

TICKS_PER_BEAT = 16
BASS_LOW = 42  # F#2: the bass pitch class is placed in 42..53 (nearest to C3 = 48)
MID_LOW = 54  # F#3: the triad's pitch classes are placed in 54..65 (nearest to C4 = 60)
THIRDS = (4, 3, 5, 2)  # major, minor, then sus4, sus2 (the first one in the chroma is the third)
FIFTHS = (7, 6, 8)  # perfect, diminished, augmented


def chord_root(chroma: np.ndarray) -> int:
    """Root pitch class of one 12-d chroma (-1 when empty): the chord tone r that scores most with
    4 (r+7 in the chord) + 2 (r+4 or r+3) + 1 (r+6 or r+8); ties go to the lowest pitch class. Chromas
    that differ only by the root (Am7 = C6) cannot be told apart: pass annotated roots where known."""
    c = np.asarray(chroma).reshape(12) > 0
    if not c.any():
        return -1
    best, best_score = -1, -1
    for r in np.nonzero(c)[0]:
        has = c[(r + np.arange(12)) % 12]  # has[i]: r + i is in the chord
        score = 4 * int(has[7]) + 2 * int(has[4] or has[3]) + int(has[6] or has[8])
        if score > best_score:
            best, best_score = int(r), score
    return best


def triad(chroma: np.ndarray, root: int | None = None) -> list[int]:
    """The triad's pitch classes [root, third, fifth] taken from the chroma (those missing are left out:
    a power chord gives [root, fifth]). ``root`` outside the chroma (or None) is replaced by
    :func:`chord_root`. Empty chroma -> []."""
    c = np.asarray(chroma).reshape(12) > 0
    if not c.any():
        return []
    r = int(root) % 12 if root is not None and root >= 0 and c[int(root) % 12] else chord_root(c)
    tones = [r]
    for options in (THIRDS, FIFTHS):
        pick = next(((r + i) % 12 for i in options if c[(r + i) % 12] and (r + i) % 12 not in tones), None)
        if pick is not None:
            tones.append(pick)
    return tones


def voicing(tones: list[int]) -> list[int]:
    """MIDI pitches of a triad's pitch classes: the root in the bass (42..53), every tone in 54..65."""
    if not tones:
        return []
    bass = BASS_LOW + (tones[0] - BASS_LOW) % 12
    return sorted({bass} | {MID_LOW + (pc - MID_LOW) % 12 for pc in tones})


def rule_accompaniment(
    chroma: np.ndarray, root: np.ndarray | None = None, *, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Block chords on every beat -> (frame, onset), both (T, 128) bool.

    ``chroma`` (T, 12): the annotated chord per tick (> 0 = chord tone); ``root`` (T,) its root pitch class
    per tick (-1 = none; None: inferred with :func:`chord_root`); ``start``: the window's first tick in
    the song, so that the beats are the ticks t with (start + t) % 16 == 0. The chord at each beat tick is
    held for 16 ticks (to the next beat or the window's end); ticks before the first beat and beats
    without a chord are silent."""
    c = np.asarray(chroma)
    if c.ndim != 2 or c.shape[1] != 12:
        raise DataError(f"chroma must be (T, 12), got {c.shape}")
    T = c.shape[0]
    if root is not None and np.shape(root) != (T,):
        raise DataError(f"root must be ({T},), got {np.shape(root)}")
    frame = np.zeros((T, 128), bool)
    onset = np.zeros((T, 128), bool)
    for t in range((-start) % TICKS_PER_BEAT, T, TICKS_PER_BEAT):
        pitches = voicing(triad(c[t], None if root is None else int(root[t])))
        frame[t : t + TICKS_PER_BEAT, pitches] = True
        onset[t, pitches] = True
    return frame, onset
