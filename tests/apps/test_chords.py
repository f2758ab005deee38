import numpy as np
import pytest

from stripes.apps.harmonize.chords import (
    bars_from_spans,
    format_chord_text,
    name_pcs,
    parse_chord,
    parse_chord_text,
    spans_from_bars,
)
from stripes.apps.harmonize.errors import HarmonizeError

TABLE = [
    ("C", 0, {0, 4, 7}, "C"),
    ("Cmaj", 0, {0, 4, 7}, "C"),
    ("Am", 9, {9, 0, 4}, "Am"),
    ("Amin", 9, {9, 0, 4}, "Am"),
    ("G7", 7, {7, 11, 2, 5}, "G7"),
    ("Fmaj7", 5, {5, 9, 0, 4}, "Fmaj7"),
    ("FM7", 5, {5, 9, 0, 4}, "Fmaj7"),
    ("Dm7", 2, {2, 5, 9, 0}, "Dm7"),
    ("Bdim", 11, {11, 2, 5}, "Bdim"),
    ("Bdim7", 11, {11, 2, 5, 8}, "Bdim7"),
    ("Bm7b5", 11, {11, 2, 5, 9}, "Bm7b5"),
    ("Bø", 11, {11, 2, 5, 9}, "Bm7b5"),
    ("Caug", 0, {0, 4, 8}, "Caug"),
    ("C+", 0, {0, 4, 8}, "Caug"),
    ("Dsus2", 2, {2, 4, 9}, "Dsus2"),
    ("Dsus4", 2, {2, 7, 9}, "Dsus4"),
    ("Dsus", 2, {2, 7, 9}, "Dsus4"),
    ("F6", 5, {5, 9, 0, 2}, "F6"),
    ("Em6", 4, {4, 7, 11, 1}, "Em6"),
    ("G9", 7, {7, 11, 2, 5, 9}, "G9"),
    ("Cadd9", 0, {0, 4, 7, 2}, "Cadd9"),
    ("F#m", 6, {6, 9, 1}, "F#m"),
    ("Bb", 10, {10, 2, 5}, "Bb"),
    ("Ebmaj7", 3, {3, 7, 10, 2}, "Ebmaj7"),
    ("C#7", 1, {1, 5, 8, 11}, "C#7"),
    ("Gb", 6, {6, 10, 1}, "F#"),
    ("Fmaj7/A", 5, {5, 9, 0, 4}, "Fmaj7/A"),
    ("C/G", 0, {0, 4, 7}, "C/G"),
    ("C/Bb", 0, {0, 4, 7, 10}, "C/Bb"),
    ("Am/G", 9, {9, 0, 4, 7}, "Am/G"),
    ("D7sus4", 2, {2, 7, 9, 0}, "D7sus4"),
    ("Cm(maj7)", 0, {0, 3, 7, 11}, "Cmmaj7"),
]


@pytest.mark.parametrize("symbol,root,pcs,canonical", TABLE)
def test_parser_table(symbol, root, pcs, canonical):
    c = parse_chord(symbol)
    assert (c.root, set(c.pcs), c.symbol) == (root, pcs, canonical)
    assert parse_chord(c.symbol) == c


@pytest.mark.parametrize("bad", ["H", "Cxyz", "C/H", "cm", "C##", "", "7"])
def test_parser_rejects(bad):
    with pytest.raises(ValueError):
        parse_chord(bad)


def test_no_chord():
    for s in ("N", "N.C.", "NC"):
        assert parse_chord(s).root is None and parse_chord(s).pcs == ()


def test_text_format_round_trip_and_errors():
    bars = parse_chord_text("C | G | Am F | Fmaj7/A\n# a comment\n| % | N |")
    assert [[c.symbol for c in b] for b in bars] == [
        ["C"],
        ["G"],
        ["Am", "F"],
        ["Fmaj7/A"],
        ["Fmaj7/A"],
        ["N"],
    ]
    again = parse_chord_text(format_chord_text(bars, header="x\ny"))
    assert again == bars
    with pytest.raises(HarmonizeError, match=r"bar 3: cannot parse chord symbol 'Qm'"):
        parse_chord_text("C | G | Am Qm")
    with pytest.raises(HarmonizeError, match="bar 2 is empty"):
        parse_chord_text("C || G")


def test_spans_and_bars_round_trip():
    bars = parse_chord_text("C | G G G D7 | Am F | N")
    starts = np.array([0, 64, 128, 192])
    spans = spans_from_bars(bars, starts, 256)
    assert [(s.start, s.end, s.chord.symbol) for s in spans][:3] == [
        (0, 64, "C"),
        (64, 80, "G"),
        (80, 96, "G"),
    ]
    back = bars_from_spans(spans, starts, 256, np.array([4, 4, 4, 4]))
    assert [[c.symbol for c in b] for b in back] == [["C"], ["G", "G", "G", "D7"], ["Am", "F"], ["N"]]


def test_name_pcs():
    assert name_pcs({7, 11, 2, 5}).symbol == "G7"
    assert name_pcs({0, 4, 7}, bass=4).symbol == "C/E"
    assert name_pcs({9, 0, 4}).symbol == "Am"
    assert set(name_pcs({0, 4, 7, 1}).pcs) == {0, 1, 4, 7}  # keeps the exact pitch classes
