"""Chord-progression metrics of Yeh et al. (2021), "Automatic melody harmonization with triad chords: a
comparative study" (J. New Music Research 50(1)), and chord-recognition accuracy via mir_eval.

Three metrics look at the chords alone and three at the melody against the chords:

========  ==========================================  ============================================
metric    what                                        direction
========  ==========================================  ============================================
CHE       chord histogram entropy (nats)              closer to the human chords; higher = more varied
CC        chord coverage (distinct chord labels)      closer to the human chords; higher = more varied
CTD       tonal distance between adjacent chords      closer to the human chords; lower = smoother
CTnCTR    chord tone to non-chord tone ratio, [0, 1]  higher is better
PCS       pitch consonance score, [-1, 1]             higher is better
MCTD      melody-chord tonal distance, >= 0           lower is better
========  ==========================================  ============================================

The first three are blind to the melody (a transposed progression scores the same); only the last three
tell whether the chords fit the tune. Yeh et al. compute every metric per piece and average over pieces,
the human (annotated) chords being the reference.

Inputs. Chord-only metrics take a sequence of chords at a fixed rate (one entry per time step; Yeh et al.
use one chord per half bar): labels for CHE and CC, pitch-class sets for CTD. Melody metrics take the melody
as ``(n, 3)`` notes ``(onset, end, pitch)`` in ticks and the chords as ``(start, end, pcs)`` spans in the same
ticks; both are sampled per 16th note (``step`` ticks, 4 at 16 ticks per quarter): a frame takes the
pitch, and the chord, sounding longest in it (silence does not compete). Frames without a melody note or
without a chord (empty ``pcs`` = N) are left out. A note counts once per 16th it sounds, so the melody
metrics are weighted by note duration.

Choices where the paper leaves a detail open (after the reference code of Sun et al. 2021, Yeh's lab,
``automatic_melody_harmonization/metrics.py``, with its slips not copied):

* tonal centroid: Harte, Sandler & Gasser (2006), 6-d (circle of fifths r=1, minor thirds r=1, major thirds
  r=0.5), the mean over the chord's pitch classes; distances are Euclidean (the reference code's MCTD takes
  ``sqrt(sum(a - b)) ** 2``, not a distance);
* CTnCTR: counted per 16th frame; a non-chord frame is *proper* when the next melody note of a different
  pitch (rests skipped) is a chord tone of the chord sounding then and at most 2 semitones away (MIDI pitch,
  so B4 -> C5 counts; the reference code compares unwrapped pitch classes within one chord);
* PCS: the interval of the melody note *above* each chord tone, ``(m - c) mod 12`` (the chord voiced below
  the melody): 0, 3, 4, 7, 8, 9 -> +1 (unison/octave, thirds, fifth, sixths), 5 -> 0 (perfect fourth), else
  -1; averaged over chord tones and frames. This is transposition invariant (the reference code's
  ``|m - c|`` on pitch-class numbers is not). A root in the melody makes a fourth above the fifth, so a
  melody of roots scores 2/3 and a melody of thirds and fifths scores 1.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

TRIADS = ("maj", "min", "dim", "aug", "sus4", "sus2")  # checked in this order against a chord's bitmap
TRIAD_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
                   "sus4": (0, 5, 7), "sus2": (0, 2, 7)}
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
CONSONANCE = np.array([1, -1, -1, 1, 1, 0, -1, 1, 1, 1, -1, -1], float)  # by (melody - chord tone) mod 12
_L = np.arange(12)
PHI = np.stack([np.sin(_L * 7 * np.pi / 6), np.cos(_L * 7 * np.pi / 6),
                np.sin(_L * 3 * np.pi / 2), np.cos(_L * 3 * np.pi / 2),
                0.5 * np.sin(_L * 2 * np.pi / 3), 0.5 * np.cos(_L * 2 * np.pi / 3)])  # (6, 12) Harte et al.
METRICS = ("CHE", "CC", "CTD", "CTnCTR", "PCS", "MCTD")
HIGHER_IS_BETTER = {"CTnCTR": True, "PCS": True, "MCTD": False}  # CHE, CC, CTD: closer to human is better

Span = tuple[int, int, Sequence[int]]


# --- tonal centroid ---------------------------------------------------------------------------------------

def tonal_centroid(pcs: Iterable[int]) -> np.ndarray:
    """(6,) tonal centroid of a set of pitch classes (Harte et al. 2006): the mean of their points on the
    circle of fifths (radius 1), of minor thirds (1) and of major thirds (0.5). Empty set -> zeros."""
    p = sorted({int(x) % 12 for x in pcs})
    if not p:
        return np.zeros(6)
    return PHI[:, p].mean(1)


def tonal_distance(a: Iterable[int], b: Iterable[int]) -> float:
    """Euclidean distance between the tonal centroids of two pitch-class sets: 0 for the same set; C vs
    Am (two common tones) about 0.80, C vs C# (none) about 1.71; at most 2 * sqrt(2.25) = 3."""
    return float(np.linalg.norm(tonal_centroid(a) - tonal_centroid(b)))


# --- chord labels (mir_eval) ------------------------------------------------------------------------------

def _mir_chord() -> Any:
    from stripes._extras import require

    return require("mir_eval.chord", "toolkit")


def triad(label: str) -> tuple[str, tuple[int, ...]]:
    """Harte-syntax label (``A:min7/b3``, ``C:sus4(b7)``, ``N``) -> (triad label, its pitch classes), e.g.
    ``("A:min", (0, 4, 9))``; ``("N", ())`` for no chord. Parsed by ``mir_eval.chord.encode``; the triad is
    the first of maj, min, dim, aug, sus4, sus2 whose intervals the chord contains (sevenths, sixths and
    extensions dropped, inversions dropped); ValueError for a chord holding none of them (e.g. ``C:5``)."""
    root, bitmap, _ = _mir_chord().encode(label, reduce_extended_chords=True)
    if root < 0:
        return "N", ()
    have = set(np.flatnonzero(bitmap).tolist())
    for q in TRIADS:
        if set(TRIAD_INTERVALS[q]) <= have:
            return f"{PITCH_NAMES[root]}:{q}", tuple(sorted((root + i) % 12 for i in TRIAD_INTERVALS[q]))
    raise ValueError(f"chord {label!r} holds none of the triads {TRIADS}")


def transpose(label: str, semitones: int) -> str:
    """A triad label of :func:`triad` moved by ``semitones`` (``N`` stays ``N``)."""
    if label == "N":
        return label
    root, quality = label.split(":")
    return f"{PITCH_NAMES[(PITCH_NAMES.index(root) + semitones) % 12]}:{quality}"


def chord_accuracy(ref: Sequence[str], est: Sequence[str], weights: Sequence[float] | None = None
                   ) -> dict[str, float | int]:
    """Recognition accuracy of ``est`` against ``ref`` labels (Harte syntax), one pair per time step with
    ``weights`` (durations; default 1): mir_eval's ``root`` and ``majmin`` comparisons through
    ``weighted_accuracy``. mir_eval leaves out the steps its rule cannot score (``majmin``: references that
    are neither major, minor nor N); ``*_n`` counts the steps scored. Higher is better (1 = all right)."""
    mc = _mir_chord()
    w = np.ones(len(ref)) if weights is None else np.asarray(weights, float)
    out: dict[str, float | int] = {}
    for name in ("root", "majmin"):
        cmp = getattr(mc, name)(list(ref), list(est)) if len(ref) else np.zeros(0)
        ok = cmp >= 0
        out[name] = float(mc.weighted_accuracy(cmp, w)) if ok.any() and w[ok].sum() > 0 else math.nan
        out[f"{name}_n"] = int(ok.sum())
    return out


# --- chords alone -----------------------------------------------------------------------------------------

def chord_histogram_entropy(labels: Sequence[Hashable]) -> float:
    """CHE: Shannon entropy (natural log) of the histogram of chord labels over the time steps,
    ``-sum p_i log p_i``. 0 for one chord throughout; log(k) for k chords used equally long. Not better
    either way: closer to the human chords of the same melodies is better (higher = more varied)."""
    if len(labels) == 0:
        return math.nan
    _, counts = np.unique(np.array([str(x) for x in labels]), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() + 0.0)


def chord_coverage(labels: Sequence[Hashable]) -> int:
    """CC: the number of distinct chord labels. Closer to the human chords is better (higher = more
    varied, up to the vocabulary size)."""
    return len({str(x) for x in labels})


def chord_tonal_distance(chords: Sequence[Iterable[int]]) -> float:
    """CTD: mean tonal distance (:func:`tonal_distance`) between each chord and the next one in a fixed-rate
    sequence of pitch-class sets (a repeated chord adds a 0). Lower = smoother progression; closer to the
    human chords is better. NaN for fewer than two chords."""
    cents = np.array([tonal_centroid(c) for c in chords]).reshape(-1, 6)
    if len(cents) < 2:
        return math.nan
    return float(np.linalg.norm(np.diff(cents, axis=0), axis=1).mean())


# --- melody against chords --------------------------------------------------------------------------------

def _majority(per_tick: np.ndarray, step: int) -> np.ndarray:
    """(n_frames,) per frame of ``step`` ticks the most frequent value >= 0 (-1 when none; ties: earliest)."""
    f = np.full((-(-len(per_tick) // step)) * step, -1, np.int64)
    f[: len(per_tick)] = per_tick
    f = f.reshape(-1, step)
    same = (f[:, :, None] == f[:, None, :]).sum(-1) * (f >= 0)
    pick = np.argmax(same, axis=1)
    return np.where(same.max(1) > 0, f[np.arange(len(f)), pick], -1)


def melody_frames(notes: np.ndarray, chords: Sequence[Span], step: int = 4
                  ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """Sample melody and chords per 16th note: (melody MIDI pitch per frame or -1, chord index per frame or
    -1, pitch classes of each chord). Frame k covers ticks [k * step, (k + 1) * step)."""
    notes = np.asarray(notes, np.int64).reshape(-1, 3)
    pcs = [tuple(sorted({int(p) % 12 for p in c[2]})) for c in chords]
    end = max([int(notes[:, 1].max()) if len(notes) else 0] + [int(c[1]) for c in chords])
    mel = np.full(end, -1, np.int64)
    for on, off, p in notes:  # later notes overwrite the tail of earlier ones (a monophonic line)
        mel[max(on, 0) : off] = p
    cid = np.full(end, -1, np.int64)
    for i, (a, b, _) in enumerate(chords):
        if pcs[i]:
            cid[max(int(a), 0) : int(b)] = i
    return _majority(mel, step), _majority(cid, step), pcs


def _masks(pcs: list[tuple[int, ...]]) -> np.ndarray:
    """(n_chords + 1, 12) bool chord-tone masks; the last row (index -1) is empty."""
    masks = np.zeros((len(pcs) + 1, 12), bool)
    for i, p in enumerate(pcs):
        masks[i, list(p)] = True
    return masks


def _scored(notes: np.ndarray, chords: Sequence[Span], step: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames with both a melody note and a chord: (MIDI pitch, (n, 12) bool chord-tone mask)."""
    mel, cid, pcs = melody_frames(notes, chords, step)
    ok = (mel >= 0) & (cid >= 0)
    return mel[ok], _masks(pcs)[cid[ok]]


def ctnctr(notes: np.ndarray, chords: Sequence[Span], step: int = 4) -> float:
    """CTnCTR: ``(n_c + n_p) / (n_c + n_n)`` over the melody's 16th frames under a chord, n_c chord-tone
    frames, n_n non-chord-tone frames and n_p the *proper* non-chord frames among them (the next melody note
    of another pitch is at most 2 semitones away and a tone of the chord sounding then). In [0, 1]; higher is
    better (1: every melody tone is a chord tone or steps to one). NaN when no frame is scored."""
    m, c, pcs = melody_frames(notes, chords, step)
    masks = _masks(pcs)
    ok = (m >= 0) & (c >= 0)
    if not ok.any():
        return math.nan
    is_ct = masks[c, m % 12] & ok
    # the next sounding frame of another pitch (rests skipped): the first frame of the next run of a pitch
    sounding = np.flatnonzero(m >= 0)
    p = m[sounding]
    change = np.flatnonzero(p[1:] != p[:-1]) + 1
    run = np.r_[0, np.cumsum(p[1:] != p[:-1])]
    nxt = np.r_[change, len(p)][run]
    nf = sounding[np.minimum(nxt, len(p) - 1)]
    resolves = (nxt < len(p)) & (np.abs(m[nf] - p) <= 2) & masks[c[nf], m[nf] % 12]
    proper = np.zeros(len(m), bool)
    proper[sounding] = resolves
    n_c = int(is_ct.sum())
    n_n = int((ok & ~is_ct).sum())
    n_p = int((ok & ~is_ct & proper).sum())
    return (n_c + n_p) / (n_c + n_n)


def pitch_consonance_score(notes: np.ndarray, chords: Sequence[Span], step: int = 4) -> float:
    """PCS: per 16th frame, each chord tone scores the interval of the melody note above it,
    ``(m - c) mod 12``: unison/octave, minor/major third, fifth, minor/major sixth +1, perfect fourth 0,
    others -1; the mean over chord tones, then over frames. In [-1, 1]; higher is better. NaN when no frame
    is scored."""
    m, tone_masks = _scored(notes, chords, step)
    if len(m) == 0:
        return math.nan
    scores = CONSONANCE[(m[:, None] % 12 - _L[None, :]) % 12]  # (n, 12) against every pitch class
    return float(((scores * tone_masks).sum(1) / tone_masks.sum(1)).mean())


def melody_chord_tonal_distance(notes: np.ndarray, chords: Sequence[Span], step: int = 4) -> float:
    """MCTD: mean over the melody's 16th frames (so weighted by note duration) of the tonal distance between
    the melody note's pitch class and the chord. >= 0; lower is better. NaN when no frame is scored."""
    m, tone_masks = _scored(notes, chords, step)
    if len(m) == 0:
        return math.nan
    chord_tc = (tone_masks @ PHI.T) / tone_masks.sum(1, keepdims=True)
    return float(np.linalg.norm(PHI[:, m % 12].T - chord_tc, axis=1).mean())


def chord_quality(labels: Sequence[Hashable], chord_pcs: Sequence[Iterable[int]], notes: np.ndarray,
                  spans: Sequence[Span], step: int = 4) -> dict[str, float]:
    """All six metrics of one piece: CHE, CC and CTD of the fixed-rate chord sequence (``labels`` and their
    ``chord_pcs``), CTnCTR, PCS and MCTD of the melody ``notes`` against the chord ``spans``."""
    return {
        "CHE": chord_histogram_entropy(labels),
        "CC": float(chord_coverage(labels)),
        "CTD": chord_tonal_distance(chord_pcs),
        "CTnCTR": ctnctr(notes, spans, step),
        "PCS": pitch_consonance_score(notes, spans, step),
        "MCTD": melody_chord_tonal_distance(notes, spans, step),
    }


__all__ = [
    "HIGHER_IS_BETTER", "METRICS", "TRIADS", "chord_accuracy", "chord_coverage", "chord_histogram_entropy",
    "chord_quality", "chord_tonal_distance", "ctnctr", "melody_chord_tonal_distance", "melody_frames",
    "pitch_consonance_score", "tonal_centroid", "tonal_distance", "transpose", "triad",
]
