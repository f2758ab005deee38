"""Annotations -> per-tick structural labels (no file access here).

Everything is at 16 ticks per quarter note (a 4/4 bar = 64 ticks). A chord is encoded as an integer
*code* ``(root + 1) * 4096 + chroma_mask`` (bit ``i`` of the mask = pitch class ``i``; code 0 = no
chord), so that a chord-table lookup is a vectorised ``searchsorted``.

Degraded BIN contexts (question 1 of docs/results.md, "is it the information?") are named variants of BIN,
12 columns wide like it: ``bin_corrupt<r>`` (each chord span's chroma replaced, with probability r, by the
chroma of another chord of the data; :func:`corrupt_span_masks`) and ``bin_shift<k>`` (the chords moved k
beats later; :func:`shift_ticks`). Their per-song computation is in :mod:`stripes.data.variants`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

TICKS_PER_BEAT = 16
TICKS_PER_16TH = 4
TICKS_PER_BAR = 64
NO_CHORD_CODE = 0
LETTERS = "abcdefghijklmnopqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SECTION_INDEX = {c: i for i, c in enumerate(LETTERS)}  # a..z -> 0..25, A..Z -> 26..51
SECTION_PAD = SECTION_INDEX["x"]  # P3 pads section labels with 'x' (23)
TEMPO_MIN, TEMPO_MAX, TEMPO_BIN = 30, 150, 30
CONTEXT_NAMES = ("time", "rep", "key", "bin", "melody", "chord", "phrase")
CONTEXT_ALIASES = {"m": "melody", "c": "chord", "p": "phrase"}
CONTEXT_WIDTH = {"bin": 12}
VARIANT_SALT = 0x51C0  # mixed into the corruption RNG seed (changing it changes every corrupted context)
_VARIANT_RE = re.compile(r"bin_(corrupt|shift)(-?[0-9.]+)")


def chord_code(root: int | None, pitch_classes: Sequence[int]) -> int:
    """Integer code of a chord (root 0..11 or None for no chord)."""
    if root is None:
        return NO_CHORD_CODE
    mask = 0
    for p in pitch_classes:
        mask |= 1 << int(p)
    return (int(root) + 1) * 4096 + mask


def codes_from_table(table: np.ndarray) -> np.ndarray:
    """(N, 13) rows [root+1, chroma12] -> (N,) codes."""
    table = np.asarray(table, dtype=np.int64)
    weights = 1 << np.arange(12, dtype=np.int64)
    return table[:, 0] * 4096 + (table[:, 1:] > 0).astype(np.int64) @ weights


def table_from_codes(codes: np.ndarray) -> np.ndarray:
    """(N,) codes -> (N, 13) rows [root+1, chroma12] (inverse of `codes_from_table`)."""
    codes = np.asarray(codes, dtype=np.int64)
    chroma = (codes[:, None] >> np.arange(12)) & 1
    return np.concatenate([(codes >> 12)[:, None], chroma], axis=1)


def transpose_codes(codes: np.ndarray, semitones: int) -> np.ndarray:
    """Transpose chord codes by `semitones` (root and chroma rotate; no chord stays no chord)."""
    codes = np.asarray(codes, dtype=np.int64)
    s = semitones % 12
    root1 = codes >> 12
    mask = codes & 0xFFF
    rot = ((mask << s) | (mask >> (12 - s))) & 0xFFF
    new_root1 = np.where(root1 > 0, (root1 - 1 + s) % 12 + 1, 0)
    return np.where(codes == NO_CHORD_CODE, NO_CHORD_CODE, new_root1 * 4096 + rot)


def key_normalize(codes: np.ndarray, tonic: int) -> np.ndarray:
    """Move each chord to its counterpart in C:maj / C:min (transpose by -tonic), per P1 §IV-D KEY."""
    return transpose_codes(codes, -tonic)


class ChordTable:
    """The chord-id table: rows of ``chord_db.npz`` first (id = row), then unseen chords appended in
    increasing code order (deterministic whatever the song order)."""

    def __init__(self, table: np.ndarray) -> None:
        self.codes = codes_from_table(table)
        if len(np.unique(self.codes)) != len(self.codes):
            raise ValueError("chord table has duplicate rows")
        self.n_base = len(self.codes)
        self._reindex()

    def _reindex(self) -> None:
        self._order = np.argsort(self.codes, kind="stable")
        self._sorted = self.codes[self._order]

    def extend(self, codes: np.ndarray) -> int:
        """Append codes absent from the table; returns how many were added."""
        new = np.setdiff1d(np.unique(codes), self.codes)
        if new.size:
            self.codes = np.concatenate([self.codes, np.sort(new)])
            self._reindex()
        return int(new.size)

    def ids(self, codes: np.ndarray) -> np.ndarray:
        """Codes -> ids (every code must be in the table; call `extend` first)."""
        codes = np.asarray(codes, dtype=np.int64)
        pos = np.searchsorted(self._sorted, codes)
        pos = np.clip(pos, 0, len(self._sorted) - 1)
        if not np.array_equal(self._sorted[pos], codes):
            raise KeyError("chord code not in table")
        return self._order[pos]

    @property
    def rows(self) -> np.ndarray:
        """(N, 13) int64 rows [root+1, chroma12]."""
        return table_from_codes(self.codes)

    @property
    def chroma(self) -> np.ndarray:
        """(N, 12) uint8 binary chroma per id (the BIN context)."""
        return self.rows[:, 1:].astype(np.uint8)

    @property
    def no_chord_id(self) -> int:
        return int(self.ids(np.array([NO_CHORD_CODE]))[0])


def chord_ticks(codes_per_span: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Chord codes per span and span lengths in beats -> codes per tick (16 per beat)."""
    return np.repeat(np.asarray(codes_per_span, dtype=np.int64), np.asarray(beats) * TICKS_PER_BEAT)


def melody_ticks(melody: np.ndarray) -> np.ndarray:
    """(n, 2) rows (pitch, dur in 16ths) -> pitch per tick (0 = rest), 4 ticks per 16th (P2 level M)."""
    melody = np.asarray(melody, dtype=np.int64)
    return np.repeat(melody[:, 0], melody[:, 1] * TICKS_PER_16TH)


def section_ticks(sections: Sequence[tuple[str, int]]) -> np.ndarray:
    """(letter, n_bars) pairs -> section index per tick (a..z -> 0..25, A..Z -> 26..51), 4/4 bars."""
    idx = np.array([SECTION_INDEX[c] for c, _ in sections], dtype=np.int64)
    bars = np.array([n for _, n in sections], dtype=np.int64)
    return np.repeat(idx, bars * TICKS_PER_BAR)


def fit_length(labels: np.ndarray, n: int, pad: int) -> np.ndarray:
    """Pad (with `pad`) or truncate a label stream at its end to length `n`."""
    labels = np.asarray(labels)
    if len(labels) >= n:
        return labels[:n]
    return np.concatenate([labels, np.full(n - len(labels), pad, dtype=labels.dtype)])


def align_labels(labels: np.ndarray, n_ticks: int, start_pos: int, pad: int) -> np.ndarray:
    """Align an annotation stream to a roll of `n_ticks` ticks (P3 preprocessing).

    ``start_pos > 0``: the annotations start `start_pos` ticks after the first note, so the stream is
    fitted to ``n_ticks - start_pos`` and left-padded with `pad`. ``start_pos <= 0``: the roll was already
    left-padded by ``-start_pos`` zero columns, so the stream is only fitted to `n_ticks`."""
    if start_pos > 0:
        body = fit_length(labels, max(n_ticks - start_pos, 0), pad)
        out = np.concatenate([np.full(start_pos, pad, dtype=body.dtype), body])
        return out[:n_ticks]
    return fit_length(labels, n_ticks, pad)


def bar_index(n_ticks: int) -> np.ndarray:
    """Bar index per tick (64 ticks per bar, counted from the first tick of the aligned roll)."""
    return np.arange(n_ticks, dtype=np.int64) // TICKS_PER_BAR


def tempo_bucket(bpm: int) -> int:
    """First tempo clipped to [30, 149] and bucketed in 30-BPM bins -> 0..3."""
    return (min(max(int(bpm), TEMPO_MIN), TEMPO_MAX - 1) - TEMPO_MIN) // TEMPO_BIN


def rep_labels(chord_ids: np.ndarray) -> np.ndarray:
    """REP: dense rank of the chord ids within one window (P1 §IV-D, rank reading of §13-Q6)."""
    _, inv = np.unique(np.asarray(chord_ids), return_inverse=True)
    return inv.reshape(np.shape(chord_ids))


def resolve_contexts(context: str | Sequence[str]) -> list[str]:
    """Normalise a context name or list of names (aliases m, c, p) to canonical names; BIN variants
    (``bin_corrupt0.25``, ``bin_shift2``) are accepted in their one canonical spelling."""
    names = [context] if isinstance(context, str) else list(context)
    out = []
    for raw in names:
        name = CONTEXT_ALIASES.get(raw.lower(), raw.lower())
        if name not in CONTEXT_NAMES and parse_variant(name) is None:
            raise ValueError(f"unknown context {raw!r}; choose among {', '.join(CONTEXT_NAMES)} (or m, c, p; "
                             "or a BIN variant bin_corrupt<rate in [0, 1]>, bin_shift<beats>)")
        out.append(name)
    if not out:
        raise ValueError("no context given")
    return out


def context_width(name: str) -> int:
    """Columns of one context: 12 for BIN and its variants, else 1."""
    return 12 if parse_variant(name) is not None else CONTEXT_WIDTH.get(name, 1)


def context_dim(names: Sequence[str]) -> int:
    """Total width C of the stacked contexts (BIN and its variants 12, others 1)."""
    return sum(context_width(n) for n in names)


# ---- degraded BIN contexts (question 1: context quality against performance) -------------------------


def variant_name(kind: str, value: float) -> str:
    """Canonical name of a BIN variant: ("corrupt", 0.25) -> ``bin_corrupt0.25``, ("shift", 2) ->
    ``bin_shift2``."""
    if kind == "corrupt":
        rate = float(value)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"corruption rate must be in [0, 1], got {value}")
        return f"bin_corrupt{rate:g}"
    if kind == "shift":
        if int(value) != value:
            raise ValueError(f"shift must be a whole number of beats, got {value}")
        return f"bin_shift{int(value)}"
    raise ValueError(f"unknown BIN variant kind {kind!r} (corrupt or shift)")


def parse_variant(name: str) -> tuple[str, float] | None:
    """("corrupt", rate) or ("shift", beats) for a BIN variant name, None for any other name. A variant
    name in another spelling than :func:`variant_name`'s (``bin_corrupt0.50``, ``bin_corrupt1.5``) raises
    ValueError, so that one context has one name (and runs of it one identity)."""
    m = _VARIANT_RE.fullmatch(name)
    if m is None:
        return None
    kind, raw = m.group(1), m.group(2)
    try:
        value = float(raw) if kind == "corrupt" else int(raw)
        canonical = variant_name(kind, value)
    except ValueError as exc:
        raise ValueError(f"bad BIN variant {name!r}: {exc}") from None
    if canonical != name:
        raise ValueError(f"BIN variant {name!r} must be spelled {canonical!r}")
    return kind, float(value)


def span_starts(labels: np.ndarray) -> np.ndarray:
    """First index of each maximal run of equal labels (a chord *span*) -> (n_spans,) int64."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]).astype(np.int64)


def chroma_masks(chroma: np.ndarray) -> np.ndarray:
    """(N, 12) binary chroma -> (N,) int64 masks (bit i = pitch class i)."""
    return ((np.asarray(chroma) != 0).astype(np.int64) << np.arange(12, dtype=np.int64)).sum(axis=-1)


def mask_chroma(masks: np.ndarray) -> np.ndarray:
    """(...,) int masks -> (..., 12) uint8 binary chroma (inverse of :func:`chroma_masks`)."""
    return ((np.asarray(masks, dtype=np.int64)[..., None] >> np.arange(12)) & 1).astype(np.uint8)


def corrupt_span_masks(masks: np.ndarray, rate: float, vocab: np.ndarray, weights: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """Corrupt a song's chord spans: each span (chroma mask per span, (n,)) is, with probability ``rate``,
    given the mask of a chord drawn from ``vocab`` ((K,) masks, drawn in proportion to ``weights``) other
    than its own chroma. Two uniforms are drawn per span whatever the rate (selection, then choice), so one
    ``rng`` state gives nested corruptions: the spans changed at rate r are changed at every rate above r,
    to the same chord. A span whose chroma is the only one in ``vocab`` is kept. Rate 0 returns ``masks``."""
    masks = np.asarray(masks, dtype=np.int64)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"corruption rate must be in [0, 1], got {rate}")
    vocab = np.asarray(vocab, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    if vocab.shape != w.shape or vocab.ndim != 1 or vocab.size == 0 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("vocab and weights must be non-empty (K,) arrays with non-negative weights")
    u_select, u_choice = rng.random(masks.size), rng.random(masks.size)
    out = masks.copy()
    chosen = u_select < rate
    for m in np.unique(masks[chosen]):
        rows = np.flatnonzero(chosen & (masks == m))
        wm = np.where(vocab == m, 0.0, w)
        if wm.sum() <= 0:
            continue  # no other chroma to draw
        cdf = np.cumsum(wm) / wm.sum()
        pick = np.minimum(np.searchsorted(cdf, u_choice[rows], side="right"), vocab.size - 1)
        pick = np.where(wm[pick] > 0, pick, np.flatnonzero(wm > 0)[-1])  # guard the float edge of the cdf
        out[rows] = vocab[pick]
    return out


def corruption_rng(seed: int, song_id: int) -> np.random.Generator:
    """The generator of one song's corruption: a function of (seed, song) only, so every window, split and
    rate of a song sees the same draws."""
    return np.random.default_rng([VARIANT_SALT, int(seed), int(song_id)])


def shift_ticks(ticks: np.ndarray, beats: int) -> np.ndarray:
    """Source tick of each tick when the chords are moved ``beats`` beats later (earlier when negative):
    ``ticks - 16 * beats``; a source outside the song is no chord (the caller masks it)."""
    return np.asarray(ticks, dtype=np.int64) - int(beats) * TICKS_PER_BEAT
