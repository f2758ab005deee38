"""``--musicxml``: the harmonization as a score (music21, the ``leadsheet`` extra).

Parts: ``Melody`` (treble clef, chord symbols above it) and ``Piano`` on a grand staff (treble and bass
staves joined by a brace; accompaniment notes from middle C (MIDI 60) up on the treble staff, below it on
the bass staff). Times come from the training grid (16 ticks per quarter note) and are quantized to
sixteenths or eighth-note triplets (whichever is nearer), durations to at least one sixteenth; notes
sounding together on a staff become chords (music21 ``chordify``: a note that outlasts another is split
and tied). Time signatures, the first tempo and the key signature (estimated or ``--key``) are written.
The file is written atomically.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from stripes.apps.harmonize.chords import PC_NAME, Chord, Span
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.song import GRID, Song
from stripes.fileio import atomic_path

INSTALL_HINT = "--musicxml needs music21: pip install 'stripes[leadsheet]' (or pip install music21)"
SPLIT_PITCH = 60  # middle C and above: treble staff
BEAT_UNITS = {Fraction(1): 4, Fraction(1, 2): 8, Fraction(2): 2, Fraction(1, 4): 16}  # beat -> denominator
# canonical chord suffix -> MusicXML kind, plus added degrees (degree, alteration) where no kind fits
KINDS = {
    "": "major", "m": "minor", "7": "dominant", "maj7": "major-seventh", "m7": "minor-seventh",
    "dim": "diminished", "dim7": "diminished-seventh", "m7b5": "half-diminished", "aug": "augmented",
    "sus2": "suspended-second", "sus4": "suspended-fourth", "6": "major-sixth", "m6": "minor-sixth",
    "9": "dominant-ninth", "add9": "major", "maj9": "major-ninth", "m9": "minor-ninth", "madd9": "minor",
    "mmaj7": "major-minor", "7sus4": "suspended-fourth", "aug7": "augmented-seventh", "7b9": "dominant",
    "7#9": "dominant", "11": "dominant-11th", "13": "dominant-13th", "6/9": "major-sixth", "5": "power",
}
ADDED = {"add9": ((9, 0),), "madd9": ((9, 0),), "7sus4": ((7, -1),), "7b9": ((9, -1),), "7#9": ((9, 1),),
         "6/9": ((9, 0),)}


def _q(ticks: float) -> Fraction:
    """Grid ticks -> quarter lengths on the nearer of the sixteenth and eighth-triplet grids."""
    x = Fraction(int(round(float(ticks))), GRID)
    a = Fraction(round(x * 4), 4)
    b = Fraction(round(x * 3), 3)
    return a if abs(a - x) <= abs(b - x) else b


def _m21_name(pc: int) -> str:
    return PC_NAME[pc % 12].replace("b", "-")


def chord_symbol(chord: Chord) -> Any:
    """A music21 ChordSymbol (or NoChord) for one of our chords."""
    from music21 import harmony

    if chord.root is None:
        return harmony.NoChord()
    name = chord.symbol[: -len(chord.symbol.split("/")[-1]) - 1] if chord.bass is not None else chord.symbol
    suffix = name[2:] if len(name) > 1 and name[1] in "#b" else name[1:]
    kind = KINDS.get(suffix, "major")
    kw: dict[str, Any] = {"root": _m21_name(chord.root), "kind": kind}
    if chord.bass is not None:
        kw["bass"] = _m21_name(chord.bass)
    cs = harmony.ChordSymbol(**kw)
    for degree, alter in ADDED.get(suffix, ()):
        cs.addChordStepModification(harmony.ChordStepModification("add", degree, alter), updatePitches=True)
    return cs


def _staff_stream(notes: list[tuple[Fraction, Fraction, int]], stream_cls: Any, end: Fraction) -> Any:
    """Notes (offset, duration, pitch) -> a part/staff whose simultaneous notes are chords, filled with a
    rest from its last note to ``end`` (gaps between notes become rests on writing)."""
    from music21 import note, stream

    raw = stream.Stream()
    for off, dur, p in notes:
        raw.insert(off, note.Note(int(p), quarterLength=dur))
    out = stream_cls()
    if notes:
        for el in raw.chordify().flatten().notes:
            offset = el.offset
            if el.isChord and len(el.pitches) == 1:
                n = note.Note(el.pitches[0], quarterLength=el.quarterLength)
                if el.tie is not None:
                    n.tie = el.tie
                el = n
            out.insert(offset, el)
    last = max((a + d for a, d, _ in notes), default=Fraction(0))
    if last < end:
        out.insert(last, note.Rest(quarterLength=end - last))
    return out


def _grid_notes(
    onsets: np.ndarray, ends: np.ndarray, pitches: np.ndarray
) -> list[tuple[Fraction, Fraction, int]]:
    out = []
    for on, end, p in zip(onsets, ends, pitches):
        a = _q(on)
        b = max(_q(end), a + Fraction(1, 4))
        out.append((a, b - a, int(p)))
    return out


def write_musicxml(
    path: Path, song: Song, accompaniment: np.ndarray, spans: list[Span], key: Any = None, title: str = "",
    notes: np.ndarray | None = None,
) -> dict[str, int]:
    """Write ``path`` (MusicXML); returns counts of the notes and chord symbols written. ``notes``: (m, 3)
    grid (pitch, onset, offset) accompaniment notes, instead of those of the roll ``accompaniment``."""
    try:
        import music21  # noqa: F401
    except ImportError:
        raise HarmonizeError(f"{song.path}: {INSTALL_HINT}") from None
    from music21 import clef, instrument, layout, metadata, meter, stream, tempo
    from music21 import key as m21key

    from stripes.metrics import extract_notes

    end = _q(song.n_ticks)
    mel = song.grid_notes
    melody = _staff_stream(_grid_notes(mel[:, 0], mel[:, 1], mel[:, 2]), stream.Part, end)
    acc = extract_notes(accompaniment) if notes is None else np.asarray(notes, np.int64).reshape(-1, 3)
    upper = acc[acc[:, 0] >= SPLIT_PITCH] if len(acc) else acc
    lower = acc[acc[:, 0] < SPLIT_PITCH] if len(acc) else acc
    treble = _staff_stream(_grid_notes(upper[:, 1], upper[:, 2], upper[:, 0]), stream.PartStaff, end)
    bass = _staff_stream(_grid_notes(lower[:, 1], lower[:, 2], lower[:, 0]), stream.PartStaff, end)
    n_symbols = 0
    previous = None
    for s in spans:
        if s.chord == previous or (previous is None and s.chord.root is None):
            continue
        melody.insert(_q(s.start), chord_symbol(s.chord))
        previous = s.chord
        n_symbols += 1
    melody.insert(0, instrument.Instrument(instrumentName="Melody"))
    melody.partName = "Melody"
    treble.insert(0, instrument.Piano())
    treble.partName = "Piano"
    bass.partName = "Piano"
    melody.insert(0, clef.TrebleClef())
    treble.insert(0, clef.TrebleClef())
    bass.insert(0, clef.BassClef())
    # time signatures from the song's bars (a short bar = its own signature)
    edges = list(map(int, song.bar_starts)) + [int(song.n_ticks)]
    last = None
    for i, start in enumerate(song.bar_starts):
        length = _q(edges[i + 1] - edges[i])
        beats = max(int(song.beats[i]), 1)
        den = BEAT_UNITS.get(length / beats if length else Fraction(1))
        ts = f"{beats}/{den}" if den else f"{max(int(length * 4), 1)}/16"
        if ts != last:
            for part in (melody, treble, bass):
                part.insert(_q(start), meter.TimeSignature(ts))
            last = ts
    if key is not None:
        for part in (melody, treble, bass):
            part.insert(0, m21key.KeySignature(int(key.sharps)))
    qpm = float(song.score.tempos[0].qpm) if len(song.score.tempos) else 120.0
    melody.insert(0, tempo.MetronomeMark(number=round(qpm, 2)))
    score = stream.Score()
    score.metadata = metadata.Metadata(title=title or song.path.stem)
    score.insert(0, melody)
    score.insert(0, treble)
    score.insert(0, bass)
    score.insert(0, layout.StaffGroup([treble, bass], name="Piano", symbol="brace"))
    try:
        with atomic_path(path, suffix=".musicxml") as tmp:
            score.write("musicxml", fp=str(tmp), makeNotation=True)
    except HarmonizeError:
        raise
    except Exception as exc:  # music21 raises many kinds on notation it cannot make
        why = f"{type(exc).__name__}: {str(exc)[:120]}"
        raise HarmonizeError(f"{song.path}: cannot write MusicXML ({why})") from None
    return {
        "melody_notes": int(len(mel)),
        "accompaniment_notes": int(len(acc)),
        "chord_symbols": n_symbols,
    }
