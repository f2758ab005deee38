"""Chords from a melody alone: a key-aware hidden Markov model over 24 triads, decoded with Viterbi.

* Segments: half bars (bars with an even number of beats >= 4), else whole bars.
* Key: Krumhansl-Kessler correlation of the duration-weighted melody pitch-class histogram with the 24
  rotated major/minor profiles; minor keys are folded to their relative major (the "key frame").
* States: 12 roots x {major, minor}, in the key frame. ``prior`` (24,), ``trans`` (24, 24) and ``emit``
  (2, 12) (melody pitch class relative to the chord root, per quality) are log-probabilities counted on
  POP909's training songs (:mod:`stripes.apps.harmonize.chordfit`, stored in ``model/chord_hmm.json``).
  A segment's emission is ``alpha`` x the duration-weighted (in 16ths) sum of ``emit``; empty segments
  carry no evidence, so the chord holds through rests.

Accuracy on the POP909 test songs (root + major/minor per beat) is in docs/model-card.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stripes.apps.harmonize.chords import Chord, Span, make_chord

PARAMS_PATH = Path(__file__).parent / "model" / "chord_hmm.json"
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
N_STATES = 24


@dataclass
class HMMParams:
    """Log-probability tables of the chord HMM (key frame = relative major tonic at 0)."""

    prior: np.ndarray  # (24,)
    trans: np.ndarray  # (24, 24) from -> to
    emit: np.ndarray  # (2, 12) quality x (pitch class - root) % 12
    alpha: float = 0.25

    def to_json(self) -> str:
        return json.dumps(
            {
                "prior": self.prior.round(4).tolist(),
                "trans": self.trans.round(4).tolist(),
                "emit": self.emit.round(4).tolist(),
                "alpha": self.alpha,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> HMMParams:
        d = json.loads(text)
        return cls(np.array(d["prior"]), np.array(d["trans"]), np.array(d["emit"]), float(d["alpha"]))


def default_params() -> HMMParams:
    """The fitted tables if shipped, else music-theory defaults (diatonic prior, sticky transitions)."""
    if PARAMS_PATH.is_file():
        return HMMParams.from_json(PARAMS_PATH.read_text())
    prior = np.full(N_STATES, 0.2)
    for root, q, w in ((0, 0, 6), (5, 0, 4), (7, 0, 5), (9, 1, 4), (2, 1, 2), (4, 1, 2)):
        prior[2 * root + q] = w
    prior = np.log(prior / prior.sum())
    trans = np.tile(prior, (N_STATES, 1)) + np.log(0.4)
    np.fill_diagonal(trans, np.log(0.6))
    emit = np.full((2, 12), 0.02)
    emit[0, [0, 4, 7]] = 0.2
    emit[1, [0, 3, 7]] = 0.2
    emit[:, [2, 5, 9, 10, 11]] += 0.03
    return HMMParams(prior, trans, np.log(emit / emit.sum(1, keepdims=True)))


def pitch_class_histogram(notes: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """(12,) durations (in ticks) per pitch class of (n, 3) grid notes (onset, end, pitch) within [lo, hi)."""
    h = np.zeros(12)
    if len(notes) == 0:
        return h
    a = np.maximum(notes[:, 0], lo)
    b = notes[:, 1] if hi is None else np.minimum(notes[:, 1], hi)
    d = np.clip(b - a, 0, None).astype(float)
    np.add.at(h, notes[:, 2] % 12, d)
    return h


def estimate_key(hist: np.ndarray) -> tuple[int, bool]:
    """(tonic pitch class, is_minor) by Krumhansl-Kessler correlation of a pitch-class histogram."""
    if hist.sum() <= 0:
        return 0, False
    best, arg = -np.inf, (0, False)
    for minor, prof in ((False, KK_MAJOR), (True, KK_MINOR)):
        for t in range(12):
            r = np.corrcoef(hist, np.roll(prof, t))[0, 1]
            if np.isfinite(r) and r > best:
                best, arg = r, (t, minor)
    return arg


def key_frame(tonic: int, minor: bool) -> int:
    """Pitch class of the relative-major tonic (the HMM's frame)."""
    return (tonic + 3) % 12 if minor else tonic % 12


def segments(bar_starts: np.ndarray, beats: np.ndarray, end: int) -> np.ndarray:
    """(n, 2) tick ranges: half bars for bars of an even number >= 4 of beats, else whole bars."""
    edges = list(map(int, bar_starts)) + [int(end)]
    out = []
    for i in range(len(bar_starts)):
        a, b = edges[i], edges[i + 1]
        if b <= a:
            continue
        if beats[i] >= 4 and beats[i] % 2 == 0:
            out += [(a, (a + b) // 2), ((a + b) // 2, b)]
        else:
            out.append((a, b))
    return np.array(out, np.int64).reshape(-1, 2)


def emission_matrix(hists: np.ndarray, params: HMMParams) -> np.ndarray:
    """(n, 12) pitch-class durations in 16ths (key frame) -> (n, 24) segment log-scores."""
    n = len(hists)
    out = np.zeros((n, N_STATES))
    for root in range(12):
        rel = np.roll(hists, -root, axis=1)  # rel[:, i] = weight of pitch class root + i
        for q in range(2):
            out[:, 2 * root + q] = params.alpha * rel @ params.emit[q]
    return out


def viterbi(scores: np.ndarray, params: HMMParams) -> np.ndarray:
    """Best state path (n,) for (n, 24) emission log-scores."""
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    delta = params.prior + scores[0]
    back = np.zeros((n, N_STATES), np.int64)
    for t in range(1, n):
        cand = delta[:, None] + params.trans
        back[t] = np.argmax(cand, axis=0)
        delta = cand[back[t], np.arange(N_STATES)] + scores[t]
    path = np.zeros(n, np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def estimate_states(
    notes: np.ndarray, segs: np.ndarray, params: HMMParams | None = None, key: tuple[int, bool] | None = None
) -> tuple[np.ndarray, int]:
    """States (n_segments,) in absolute pitch (root = state // 2, minor = state % 2) and the key frame."""
    params = params or default_params()
    frame = key_frame(*(key or estimate_key(pitch_class_histogram(notes))))
    hists = (
        np.stack([pitch_class_histogram(notes, a, b) for a, b in segs]) / 4.0
        if len(segs)
        else np.zeros((0, 12))
    )
    rel = np.roll(hists, -frame, axis=1)
    path = viterbi(emission_matrix(rel, params), params)
    roots = (path // 2 + frame) % 12
    return roots * 2 + path % 2, frame


def estimate_chords(
    notes: np.ndarray, bar_starts: np.ndarray, beats: np.ndarray, end: int, params: HMMParams | None = None
) -> list[Span]:
    """Chord spans for a melody given as (n, 3) grid notes (onset, end, pitch) and its bar grid."""
    segs = segments(bar_starts, beats, end)
    states, _ = estimate_states(notes, segs, params)
    spans: list[Span] = []
    for (a, b), s in zip(segs, states):
        chord: Chord = make_chord(int(s) // 2, "m" if s % 2 else "")
        if spans and spans[-1].chord == chord and spans[-1].end == a:
            spans[-1] = Span(spans[-1].start, int(b), chord)
        else:
            spans.append(Span(int(a), int(b), chord))
    return spans
