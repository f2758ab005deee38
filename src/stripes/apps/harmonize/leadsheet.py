"""MusicXML lead sheets (.musicxml, .mxl, .xml) through music21 (optional extra ``stripes[leadsheet]``).

The first part holding notes is the melody; its chord symbols (``<harmony>``) are the chords. A pickup
measure is moved to the end of a full first bar (rests before it), so bar lines fall where the time
signature says; tempo marks and time signatures are kept. The lead sheet becomes a symusic Score at 480
ticks per quarter note, then goes the same way as a MIDI melody.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stripes.apps.harmonize.chords import NO_CHORD, Chord, name_pcs
from stripes.apps.harmonize.errors import HarmonizeError
from stripes.apps.harmonize.safety import check_input_file
from stripes.apps.harmonize.song import GRID, Song, song_from_score

SUFFIXES = (".musicxml", ".mxl", ".xml")
TPQ = 480
INSTALL_HINT = "reading MusicXML needs music21: pip install 'stripes[leadsheet]' (or pip install music21)"


def read_leadsheet(path: Path) -> Song:
    """Melody and chord symbols of a MusicXML file; chords land in ``Song.leadsheet_chords`` as
    (start grid tick, Chord) pairs."""
    check_input_file(path)  # size limit; a zip (.mxl) is checked before music21 inflates it
    try:
        import music21
    except ImportError:
        raise HarmonizeError(f"{path}: {INSTALL_HINT}") from None
    import symusic

    try:
        parsed: Any = music21.converter.parse(str(path))
    except Exception as exc:  # music21 raises many kinds on bad XML
        raise HarmonizeError(
            f"{path}: cannot read MusicXML ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    parts = list(getattr(parsed, "parts", [])) or [parsed]
    part = next(
        (p for p in parts if any(not isinstance(n, music21.harmony.ChordSymbol) for n in p.recurse().notes)),
        None,
    )
    if part is None:
        raise HarmonizeError(f"{path}: the lead sheet has no notes")
    first = next(iter(part.getElementsByClass("Measure")), None)
    shift = float(first.paddingLeft) if first is not None and first.paddingLeft else 0.0
    flat = part.stripTies().flatten()

    def tick(offset: float) -> int:
        return int(round((float(offset) + shift) * TPQ))

    score = symusic.Score(TPQ)
    track = symusic.Track("melody", 0, False)
    chords: list[tuple[int, Chord]] = []
    for el in flat.notesAndRests:
        if isinstance(el, music21.harmony.ChordSymbol):
            chords.append((tick(el.offset) * GRID // TPQ, _chord_of(el)))
        elif isinstance(el, music21.harmony.NoChord):
            chords.append((tick(el.offset) * GRID // TPQ, NO_CHORD))
        elif el.isNote or el.isChord:
            pitch = max(p.midi for p in el.pitches)  # top note of a chord in the melody part
            dur = max(int(round(float(el.quarterLength) * TPQ)), 1)
            vel = int(el.volume.velocity) if el.volume.velocity else 90
            track.notes.append(symusic.Note(tick(el.offset), dur, int(pitch), vel))
    for ts in flat.getElementsByClass("TimeSignature"):
        score.time_signatures.append(
            symusic.TimeSignature(tick(ts.offset) if ts.offset else 0, int(ts.numerator), int(ts.denominator))
        )
    for mm in flat.getElementsByClass("MetronomeMark"):
        qpm = mm.getQuarterBPM()
        if qpm:
            score.tempos.append(symusic.Tempo(tick(mm.offset) if mm.offset else 0, float(qpm)))
    if len(track.notes) == 0:
        raise HarmonizeError(f"{path}: the lead sheet has no notes")
    score.tracks.append(track)
    song = song_from_score(score, path, forced_track=0)
    song.leadsheet_chords = chords or None
    return song


def _chord_of(cs: Any) -> Chord:
    """music21 ChordSymbol -> Chord (its pitch classes as music21 spells them, named by our table)."""
    try:
        pcs = {p.pitchClass for p in cs.pitches}
        bass = cs.bass().pitchClass if cs.bass() is not None else None
        root = cs.root().pitchClass if cs.root() is not None else None
    except Exception:
        return NO_CHORD
    if not pcs:
        return NO_CHORD
    named = name_pcs(pcs, bass if bass != root else None)
    return named
