"""Chords from a melody alone: a per-beat log-linear classifier over 24 triads, pooled per half bar and
smoothed with a tempered chord-bigram Viterbi.

* Beats: every bar of ``beats[i]`` beats is cut into equal beats; each beat into 4 slots (16ths in 4/4).
  Features of a beat, all in the *key frame* (relative-major tonic at pitch class 0): ``log1p`` of the
  melody duration per (slot, pitch class) for the beat and the two beats on either side; the half-bar,
  bar, previous and next half-bar and whole-song (per beat) pitch-class histograms; the beat's position
  in the bar and a "no melody" flag (306 numbers).
* Key: the duration-weighted melody pitch-class histogram against a key profile learned on POP909's
  training songs (12 rotations; minor keys fold into their relative major, the frame the model needs).
* Classes: 12 roots x {major, minor} in the key frame; ``W`` (306, 24) is a multinomial logistic
  regression fitted by :mod:`stripes.apps.harmonize.chordfit` on the training songs.
* Decoding: the beat log-posteriors are averaged per half bar (bars of an even number >= 4 of beats;
  other bars stay whole), then Viterbi over half bars with ``gamma`` x (log prior, change-by-position,
  key-relative bigram) counted on the training songs. ``gamma`` is chosen on the validation songs.

Parameters live in ``model/chord_hmm.json``. Accuracy (POP909 test songs, root + major/minor per beat) is
in docs/model-card.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stripes.apps.harmonize.chords import NOTE_PC, Chord, Span, make_chord

PARAMS_PATH = Path(__file__).parent / "model" / "chord_hmm.json"
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
N_STATES = 24
SLOTS = 4
CONTEXT = (-2, -1, 0, 1, 2)
N_FEATURES = len(CONTEXT) * SLOTS * 12 + 5 * 12 + 4 + 1 + 1


@dataclass
class HMMParams:
    """Classifier weights and key-frame chord-sequence tables (log-probabilities)."""

    W: np.ndarray  # (N_FEATURES, 24) logistic-regression weights
    keyprof: np.ndarray  # (12,) log profile of melody pitch classes in the key frame
    prior: np.ndarray  # (24,) log prior of half-bar chords
    change: np.ndarray  # (2, 2) [first/second half of bar] x [stay, change]
    bigram: np.ndarray  # (24, 24) from -> to, given a change (diagonal -inf)
    gamma: float = 0.1

    def to_json(self) -> str:
        big = np.where(np.isfinite(self.bigram), self.bigram, -99.0)
        return json.dumps(
            {
                "format": 2,
                "W": self.W.round(4).tolist(),
                "keyprof": self.keyprof.round(4).tolist(),
                "prior": self.prior.round(4).tolist(),
                "change": self.change.round(4).tolist(),
                "bigram": big.round(4).tolist(),
                "gamma": self.gamma,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> HMMParams:
        d = json.loads(text)
        big = np.array(d["bigram"], float)
        big[big <= -99.0] = -np.inf
        return cls(
            np.array(d["W"], float), np.array(d["keyprof"], float), np.array(d["prior"], float),
            np.array(d["change"], float), big, float(d["gamma"]),
        )


def default_params() -> HMMParams:
    """The fitted tables shipped in package data."""
    return HMMParams.from_json(PARAMS_PATH.read_text())


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
    """Pitch class of the relative-major tonic (the model's frame)."""
    return (tonic + 3) % 12 if minor else tonic % 12


def estimate_frame(hist: np.ndarray, params: HMMParams) -> int:
    """Key frame (relative-major tonic) maximizing the learned key profile's log-likelihood."""
    if hist.sum() <= 0:
        return 0
    return int(np.argmax([np.roll(hist, -k) @ params.keyprof for k in range(12)]))


def beat_grid(bar_starts: np.ndarray, beats: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_beats + 1,) beat edges in ticks and (n_beats,) position codes (0..3 in 4-beat bars; else 0 on the
    bar's first beat, 2 on even and 1 on odd beats)."""
    edges = list(map(int, bar_starts)) + [int(end)]
    ticks: list[int] = []
    pos: list[int] = []
    for i in range(len(bar_starts)):
        a, b, n = edges[i], edges[i + 1], max(int(beats[i]), 1)
        if b <= a:
            continue
        n = min(n, b - a)
        ticks += [a + (b - a) * j // n for j in range(n)]
        pos += [j if n == 4 else (0 if j == 0 else 2 - j % 2) for j in range(n)]
    return np.array(ticks + [int(edges[-1])], np.int64), np.array(pos, np.int64)


def half_bars(bar_starts: np.ndarray, beats: np.ndarray, end: int) -> list[tuple[int, int, int]]:
    """(first beat, end beat, half) index ranges of the half bars (bars of an even >= 4 number of beats
    split in two, other bars whole), half = 0 for a bar's first part and 1 for its second."""
    _, pos = beat_grid(bar_starts, beats, end)
    starts = np.flatnonzero(pos == 0).tolist() + [len(pos)]
    out = []
    for a, b in zip(starts[:-1], starts[1:]):
        n = b - a
        if n >= 4 and n % 2 == 0:
            out += [(a, a + n // 2, 0), (a + n // 2, b, 1)]
        elif n > 0:
            out.append((a, b, 0))
    return out


def slot_histograms(notes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n_beats, SLOTS, 12) melody duration per beat slot and pitch class, in slot units x 4/SLOTS
    (16ths for a 16-tick beat)."""
    nb = len(edges) - 1
    out = np.zeros((nb, SLOTS, 12))
    if nb <= 0 or len(notes) == 0:
        return out
    se = np.concatenate([edges[:-1, None] + (edges[1:, None] - edges[:-1, None]) * np.arange(SLOTS) // SLOTS,
                         edges[1:, None]], axis=1).astype(float)  # (nb, SLOTS + 1)
    lo, hi = se[:, :-1].ravel(), se[:, 1:].ravel()
    width = np.maximum(hi - lo, 1e-9)
    flat = out.reshape(nb * SLOTS, 12)
    for on, off, p in notes:
        i0 = max(int(np.searchsorted(hi, on, side="right")), 0)
        i1 = int(np.searchsorted(lo, off, side="left"))
        if i1 <= i0:
            continue
        ov = np.minimum(hi[i0:i1], off) - np.maximum(lo[i0:i1], on)
        flat[i0:i1, int(p) % 12] += np.clip(ov, 0, None) / width[i0:i1] * (4.0 / SLOTS)
    return out


def features(
    hists: np.ndarray, pos: np.ndarray, halves: list[tuple[int, int, int]], frame: int
) -> np.ndarray:
    """(n_beats, N_FEATURES) classifier inputs from slot histograms (absolute pitch classes)."""
    f = np.roll(hists, -frame, axis=2)
    nb = len(f)
    pad = np.zeros((2, SLOTS, 12))
    fp = np.log1p(np.concatenate([pad, f, pad]))
    parts = [fp[2 + k : 2 + k + nb].reshape(nb, -1) for k in CONTEXT]
    tot = f.sum(1)
    half = np.zeros_like(tot)
    bar = np.zeros_like(tot)
    bar_start = 0
    for a, b, h in halves:
        half[a:b] = tot[a:b].sum(0)
        if h == 0:
            bar_start = a
        bar[bar_start:b] = tot[bar_start:b].sum(0)
    hid = np.zeros(nb, np.int64)
    for k, (a, b, _) in enumerate(halves):
        hid[a:b] = k
    hs = np.log1p(np.array([tot[a:b].sum(0) for a, b, _ in halves] + [np.zeros(12)]))
    prev = hs[hid - 1] * (hid > 0)[:, None]
    nxt = hs[np.minimum(hid + 1, len(hs) - 1)]
    song = np.repeat(np.log1p(tot.sum(0, keepdims=True) / max(nb, 1)), nb, axis=0)
    onehot = np.eye(4)[np.clip(pos, 0, 3)]
    empty = (tot.sum(1, keepdims=True) == 0).astype(float)
    return np.concatenate(
        parts + [np.log1p(half), np.log1p(bar), prev, nxt, song, onehot, empty, np.ones((nb, 1))], 1
    )


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def viterbi(scores: np.ndarray, halves: np.ndarray, params: HMMParams) -> np.ndarray:
    """Best path (n,) for (n, 24) log-scores; transitions gamma x (change-by-half, bigram)."""
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)
    g = params.gamma
    trans = []
    for h in range(2):
        stay, chg = params.change[h]
        t = g * (chg + np.maximum(params.bigram, -1e9))
        np.fill_diagonal(t, g * stay)
        trans.append(t)
    delta = g * params.prior + scores[0]
    back = np.zeros((n, N_STATES), np.int64)
    for t in range(1, n):
        cand = delta[:, None] + trans[int(halves[t])]
        back[t] = np.argmax(cand, axis=0)
        delta = cand[back[t], np.arange(N_STATES)] + scores[t]
    path = np.zeros(n, np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def estimate_states(
    notes: np.ndarray, bar_starts: np.ndarray, beats: np.ndarray, end: int,
    params: HMMParams | None = None, frame: int | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, int]], np.ndarray, int]:
    """(states per half bar in absolute pitch (root = state // 2, minor = state % 2), half bars as beat
    ranges, beat edges in ticks, key frame)."""
    params = params or default_params()
    edges, pos = beat_grid(bar_starts, beats, end)
    halves = half_bars(bar_starts, beats, end)
    hists = slot_histograms(np.asarray(notes, np.int64).reshape(-1, 3), edges)
    if frame is None:
        frame = estimate_frame(hists.sum((0, 1)), params)
    if not halves:
        return np.zeros(0, np.int64), halves, edges, frame
    lp = log_softmax(features(hists, pos, halves, frame) @ params.W)
    seg = np.stack([lp[a:b].mean(0) for a, b, _ in halves])
    path = viterbi(seg, np.array([h for _, _, h in halves]), params)
    roots = (path // 2 + frame) % 12
    return roots * 2 + path % 2, halves, edges, frame


def estimate_chords(
    notes: np.ndarray,
    bar_starts: np.ndarray,
    beats: np.ndarray,
    end: int,
    params: HMMParams | None = None,
    key: Key | None = None,
) -> list[Span]:
    """Chord spans for a melody given as (n, 3) grid notes (onset, end, pitch) and its bar grid; ``key``
    (e.g. from ``--key``) fixes the key frame instead of estimating it from the melody."""
    frame = None if key is None else key.frame
    states, halves, edges, _ = estimate_states(notes, bar_starts, beats, end, params, frame)
    spans: list[Span] = []
    for (a, b, _), s in zip(halves, states):
        ta, tb = int(edges[a]), int(edges[b])
        chord: Chord = make_chord(int(s) // 2, "m" if s % 2 else "")
        if spans and spans[-1].chord == chord and spans[-1].end == ta:
            spans[-1] = Span(spans[-1].start, tb, chord)
        else:
            spans.append(Span(ta, tb, chord))
    return spans


MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
MAJOR_SHARPS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)  # key signature of each major tonic (flats < 0)
_KEY = re.compile(
    r"^\s*([A-Ga-g])\s*(#|b|♯|♭|-?sharp|-?flat|is|es|s)?\s*"
    r"(major|minor|maj|min|m|dur|moll|ionian|aeolian)?\s*$",
    re.I,
)


@dataclass(frozen=True)
class Key:
    """A major or minor key: ``tonic`` pitch class 0..11 and ``minor``."""

    tonic: int
    minor: bool

    @property
    def name(self) -> str:
        """``"A minor"``, ``"Eb major"``."""
        names = MINOR_NAMES if self.minor else MAJOR_NAMES
        return f"{names[self.tonic]} {'minor' if self.minor else 'major'}"

    @property
    def frame(self) -> int:
        """Pitch class of the relative-major tonic (the chord estimator's key frame)."""
        return key_frame(self.tonic, self.minor)

    @property
    def sharps(self) -> int:
        """Sharps (> 0) or flats (< 0) of its key signature."""
        return MAJOR_SHARPS[self.frame]


def parse_key(text: str) -> Key:
    """``"A minor"``, ``"Am"``, ``"Eb major"``, ``"F#"`` (no mode = major), ``"Bbm"``, ``"C dur"``,
    ``"fis moll"`` -> :class:`Key` (the letter's case does not matter); ValueError when it does not parse."""
    m = _KEY.match(text or "")
    if m is None:
        raise ValueError(f"cannot read key {text!r} (write e.g. 'A minor', 'Eb major', 'F#m')")
    letter, acc, mode = m.group(1), (m.group(2) or "").lower(), m.group(3) or ""
    sharp, flat = ("#", "♯", "sharp", "-sharp", "is"), ("b", "♭", "flat", "-flat", "es", "s")
    shift = 1 if acc in sharp else -1 if acc in flat else 0
    minor = mode == "m" or mode.lower() in ("minor", "min", "moll", "aeolian")
    if mode == "M":
        minor = False
    return Key((NOTE_PC[letter.upper()] + shift) % 12, minor)



def _is_minor_triad(chord: Chord, root: int) -> bool:
    return (root + 3) % 12 in chord.pcs and (root + 4) % 12 not in chord.pcs


def melody_key(
    notes: np.ndarray,
    bar_starts: np.ndarray,
    beats: np.ndarray,
    end: int,
    chords: Sequence[Chord] = (),
    params: HMMParams | None = None,
) -> Key:
    """The key of a melody: the key frame the chord estimator uses (learned profile), then major or its
    relative minor by Krumhansl-Kessler correlation of the melody's pitch-class durations, plus 0.2 for the
    candidate whose tonic triad is the last chord (0.1 for the first chord) of ``chords``."""
    params = params or default_params()
    notes = np.asarray(notes, np.int64).reshape(-1, 3)
    edges, _ = beat_grid(bar_starts, beats, end)
    hist = slot_histograms(notes, edges).sum((0, 1))
    frame = estimate_frame(hist, params)
    candidates = (Key(frame, False), Key((frame + 9) % 12, True))
    if hist.sum() <= 0:
        return candidates[0]
    rooted = [c for c in chords if c.root is not None]
    scores = []
    for k in candidates:
        prof = np.roll(KK_MINOR if k.minor else KK_MAJOR, k.tonic)
        r = np.corrcoef(hist, prof)[0, 1]
        r = float(r) if np.isfinite(r) else 0.0
        for weight, chord in ((0.2, rooted[-1] if rooted else None), (0.1, rooted[0] if rooted else None)):
            if chord is not None and chord.root == k.tonic and _is_minor_triad(chord, k.tonic) == k.minor:
                r += weight
        scores.append(r)
    return candidates[int(np.argmax(scores))]
