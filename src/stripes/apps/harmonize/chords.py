"""Chord symbols, the chord text format and chord timelines (the harmonizer's structural context).

Text format (``--chords "C | G | Am F | Fmaj7/A"`` or a .txt file): one bar per ``|``; the chords of a bar
share it evenly (``C C C G`` = three beats of C, one of G in 4/4); ``%`` repeats the previous bar; ``N``
is no chord; lines starting with ``#`` are comments; line breaks separate bars like ``|``. Bar 1 is the
first bar of the melody file (a pickup bar counts as a bar).

Symbols: root ``A``..``G`` with ``#`` or ``b``, a quality from :data:`QUALITIES` (maj, m, 7, maj7, m7,
dim, dim7, m7b5, aug, sus2, sus4, 6, m6, 9, add9 and more, with the usual aliases), optional ``/bass``.
The hand-written table parser is ~40 lines and tested against a table (tests/apps/test_chords.py);
music21's ChordSymbol would pull in a 114 MB dependency for the same job.

Times here are ticks of the training grid (16 per quarter note).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from stripes.apps.harmonize.errors import HarmonizeError

NOTE_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
PC_NAME = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_PRIMARY: list[tuple[str, tuple[int, ...], tuple[str, ...]]] = [
    # (canonical suffix, intervals above the root, aliases)
    ("", (0, 4, 7), ("maj", "M", "major")),
    ("m", (0, 3, 7), ("min", "-", "mi", "minor")),
    ("7", (0, 4, 7, 10), ("dom7", "dom")),
    ("maj7", (0, 4, 7, 11), ("M7", "ma7", "Maj7", "Δ", "Δ7", "^7", "^")),
    ("m7", (0, 3, 7, 10), ("min7", "-7", "mi7")),
    ("dim", (0, 3, 6), ("o", "°", "mb5")),
    ("dim7", (0, 3, 6, 9), ("o7", "°7")),
    ("m7b5", (0, 3, 6, 10), ("ø", "ø7", "min7b5", "-7b5", "hdim7", "hdim")),
    ("aug", (0, 4, 8), ("+", "#5", "+5")),
    ("sus2", (0, 2, 7), ("2",)),
    ("sus4", (0, 5, 7), ("sus", "4")),
    ("6", (0, 4, 7, 9), ("maj6", "M6")),
    ("m6", (0, 3, 7, 9), ("min6", "-6")),
    ("9", (0, 2, 4, 7, 10), ("dom9",)),
    ("add9", (0, 2, 4, 7), ("add2", "2add")),
    ("maj9", (0, 2, 4, 7, 11), ("M9", "Δ9")),
    ("m9", (0, 2, 3, 7, 10), ("min9", "-9")),
    ("madd9", (0, 2, 3, 7), ("minadd9", "m(add9)")),
    ("mmaj7", (0, 3, 7, 11), ("mM7", "m(maj7)", "minmaj7", "-maj7")),
    ("7sus4", (0, 5, 7, 10), ("7sus", "sus7", "sus4(b7)")),
    ("aug7", (0, 4, 8, 10), ("+7", "7#5", "7+")),
    ("7b9", (0, 1, 4, 7, 10), ()),
    ("7#9", (0, 3, 4, 7, 10), ()),
    ("11", (0, 2, 4, 5, 7, 10), ("dom11",)),
    ("13", (0, 2, 4, 7, 9, 10), ("dom13",)),
    ("6/9", (0, 2, 4, 7, 9), ("69",)),
    ("5", (0, 7), ("power",)),
]
QUALITIES: dict[str, tuple[int, ...]] = {}
CANONICAL: dict[str, str] = {}
for _canon, _iv, _aliases in _PRIMARY:
    for _name in (_canon, *_aliases):
        QUALITIES[_name] = _iv
        CANONICAL[_name] = _canon
_NO_CHORD = {"N", "NC", "N.C.", "N.C"}
_SYMBOL = re.compile(r"^([A-G])([#b♯♭]?)(.*?)(?:/([A-G])([#b♯♭]?))?$")


@dataclass(frozen=True)
class Chord:
    """A chord: ``root`` 0..11 (None = no chord), sorted pitch classes ``pcs`` (bass included), ``bass``
    pitch class (None = root position or no chord) and its canonical ``symbol`` (e.g. ``Fmaj7/A``)."""

    symbol: str
    root: int | None
    pcs: tuple[int, ...]
    bass: int | None = None

    @property
    def chroma(self) -> np.ndarray:
        """(12,) float32 binary chroma (the BIN context of the training data)."""
        out = np.zeros(12, np.float32)
        out[list(self.pcs)] = 1.0
        return out


NO_CHORD = Chord("N", None, ())


def _pc(letter: str, accidental: str) -> int:
    return (NOTE_PC[letter] + {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}[accidental]) % 12


def make_chord(root: int, suffix: str, bass: int | None = None) -> Chord:
    """Chord from a root pitch class, a canonical quality suffix and an optional bass pitch class."""
    pcs = {(root + i) % 12 for i in QUALITIES[suffix]}
    symbol = PC_NAME[root] + CANONICAL[suffix]
    if bass is not None and bass != root:
        pcs.add(bass)
        symbol += "/" + PC_NAME[bass]
    else:
        bass = None
    return Chord(symbol, root, tuple(sorted(pcs)), bass)


def parse_chord(symbol: str) -> Chord:
    """Parse one chord symbol (``Am``, ``F#m7b5``, ``Bbmaj7/D``, ``N``); ValueError when it does not parse."""
    s = symbol.strip()
    if s.upper() in _NO_CHORD:
        return NO_CHORD
    m = _SYMBOL.match(s)
    if m is None:
        raise ValueError(f"cannot parse chord symbol {symbol!r}")
    root = _pc(m.group(1), m.group(2))
    quality = m.group(3).strip("()") if m.group(3).startswith("(") else m.group(3)
    if quality not in QUALITIES:
        raise ValueError(f"unknown chord quality {m.group(3)!r} in {symbol!r}")
    bass = _pc(m.group(4), m.group(5)) if m.group(4) else None
    return make_chord(root, quality, bass)


def name_pcs(pcs: set[int] | frozenset[int], bass: int | None = None) -> Chord:
    """Best chord symbol for a set of sounding pitch classes (exact template first, then most overlap,
    preferring the bass as root); the returned chord keeps the exact pitch classes given."""
    pcs = {int(p) % 12 for p in pcs}
    if not pcs:
        return NO_CHORD
    best: tuple[float, int, str] | None = None
    for suffix, iv, _ in _PRIMARY:
        for root in range(12):
            tpl = {(root + i) % 12 for i in iv}
            score = len(tpl & pcs) - 0.6 * len(tpl - pcs) - 0.8 * len(pcs - tpl)
            score += 0.3 * (root == bass) - 0.01 * len(iv)
            if best is None or score > best[0]:
                best = (score, root, suffix)
    assert best is not None
    named = make_chord(best[1], best[2], bass if bass is not None and bass != best[1] else None)
    return Chord(named.symbol, named.root, tuple(sorted(pcs)), named.bass)


def parse_chord_text(text: str, source: str = "--chords") -> list[list[Chord]]:
    """Chord text -> chords per bar. Errors name the symbol and its bar (1-based)."""
    cleaned = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = line.strip().strip("|").strip()
        if line:
            cleaned.append(line)
    bars: list[list[Chord]] = []
    if not cleaned:
        raise HarmonizeError(f"{source}: no chords given")
    for n, cell in enumerate("|".join(cleaned).split("|"), 1):
        tokens = cell.split()
        if not tokens:
            raise HarmonizeError(f"{source}: bar {n} is empty (write N for no chord, % to repeat a bar)")
        if tokens == ["%"]:
            if not bars:
                raise HarmonizeError(f"{source}: bar 1 is '%' but there is no previous bar to repeat")
            bars.append(list(bars[-1]))
            continue
        row = []
        for tok in tokens:
            try:
                row.append(parse_chord(tok))
            except ValueError:
                raise HarmonizeError(f"{source}: bar {n}: cannot parse chord symbol {tok!r}") from None
        bars.append(row)
    return bars


def format_chord_text(bars: list[list[Chord]], header: str = "", per_line: int = 4) -> str:
    """Chords per bar -> the text format (``per_line`` bars per line), readable by `parse_chord_text`."""
    lines = [f"# {h}" for h in header.splitlines() if h] if header else []
    cells = [" ".join(c.symbol for c in bar) or "N" for bar in bars]
    width = max((len(c) for c in cells), default=1)
    for i in range(0, len(cells), per_line):
        lines.append("| " + " | ".join(c.ljust(width) for c in cells[i : i + per_line]) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Span:
    """A chord over ticks [start, end) of the training grid."""

    start: int
    end: int
    chord: Chord


def spans_from_bars(bars: list[list[Chord]], bar_starts: np.ndarray, end: int) -> list[Span]:
    """Chords per bar -> spans; bar i covers [bar_starts[i], bar_starts[i+1]) (the last bar ends at
    ``end``) and its chords split it evenly (rounded to ticks). Bars beyond the grid are ignored."""
    edges = list(map(int, bar_starts)) + [int(end)]
    spans: list[Span] = []
    for i, bar in enumerate(bars[: len(bar_starts)]):
        a, b = edges[i], max(edges[i + 1], edges[i])
        cuts = np.round(np.linspace(a, b, len(bar) + 1)).astype(int)
        spans.extend(Span(int(s), int(e), c) for s, e, c in zip(cuts[:-1], cuts[1:], bar) if e > s)
    return spans


def chroma_roll(spans: list[Span], n_ticks: int) -> np.ndarray:
    """Spans -> (n_ticks, 12) float32 BIN context (zeros where no chord)."""
    out = np.zeros((n_ticks, 12), np.float32)
    for s in spans:
        if s.chord.pcs and s.start < n_ticks:
            out[s.start : min(s.end, n_ticks)] = s.chord.chroma
    return out


def bars_from_spans(
    spans: list[Span], bar_starts: np.ndarray, end: int, beats: np.ndarray
) -> list[list[Chord]]:
    """Spans -> chords per bar for the text format: the chord covering most of each beat, then the
    shortest even split of the bar that reproduces the beat sequence (``C C G G`` -> ``C G``)."""
    edges = list(map(int, bar_starts)) + [int(end)]
    starts = np.array([s.start for s in spans], dtype=np.int64)
    out: list[list[Chord]] = []
    for i in range(len(bar_starts)):
        a, b = edges[i], edges[i + 1]
        n = max(int(beats[i]), 1)
        per_beat = []
        for j in range(n):
            lo, hi = a + (b - a) * j // n, a + (b - a) * (j + 1) // n
            cover: dict[Chord, int] = {}
            k = max(int(np.searchsorted(starts, lo, side="right")) - 1, 0)
            while k < len(spans) and spans[k].start < hi:
                ov = min(spans[k].end, hi) - max(spans[k].start, lo)
                if ov > 0:
                    cover[spans[k].chord] = cover.get(spans[k].chord, 0) + ov
                k += 1
            per_beat.append(max(cover, key=lambda c: cover[c]) if cover else NO_CHORD)
        for d in range(1, n + 1):
            if n % d == 0 and all(per_beat[j] == per_beat[(j // (n // d)) * (n // d)] for j in range(n)):
                out.append(per_beat[:: n // d])
                break
    return out


def spans_from_chroma(chroma: np.ndarray, bass: np.ndarray) -> list[Span]:
    """(T, 12) chroma and (T,) lowest pitch (-1 = none) per tick -> spans of constant pitch-class set."""
    spans: list[Span] = []
    T = len(chroma)
    if T == 0:
        return spans
    keys = np.packbits(chroma > 0, axis=1, bitorder="little").astype(np.int64)
    code = keys[:, 0] + 256 * keys[:, 1] + 4096 * 16 * (np.asarray(bass) % 12 + 1)
    cut = np.flatnonzero(np.diff(code)) + 1
    for a, b in zip(np.r_[0, cut], np.r_[cut, T]):
        pcs = set(np.flatnonzero(chroma[a] > 0).tolist())
        bp = int(bass[a]) % 12 if bass[a] >= 0 else None
        spans.append(Span(int(a), int(b), name_pcs(pcs, bp) if pcs else NO_CHORD))
    return spans
