"""The six chord metrics of Yeh et al. (2021) on hand-made examples, and the mir_eval-backed helpers."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from stripes.metrics import chord_quality as cq

C, CS, AM, G, F = (0, 4, 7), (1, 5, 8), (0, 4, 9), (2, 7, 11), (0, 5, 9)  # sorted pitch classes
BAR = 64  # ticks of a 4/4 bar, 16 per quarter


def notes(*pitches: int, dur: int = 16, start: int = 0) -> np.ndarray:
    """Consecutive notes of ``dur`` ticks."""
    return np.array([[start + i * dur, start + (i + 1) * dur, p] for i, p in enumerate(pitches)])


# --- tonal centroid ---------------------------------------------------------------------------------------

def test_tonal_centroid_matches_harte_for_single_pitch_classes() -> None:
    # C: angle 0 on all three circles (x = sin, y = cos), radii 1, 1, 0.5
    np.testing.assert_allclose(cq.tonal_centroid([0]), [0, 1, 0, 1, 0, 0.5], atol=1e-12)
    # G (7): fifths angle 7 * 7pi/6 = pi/6 (mod 2pi); minor thirds 7 * 3pi/2 = pi/2 (mod 2pi); major thirds
    # 7 * 2pi/3 = 2pi/3 (mod 2pi)
    np.testing.assert_allclose(
        cq.tonal_centroid([7]),
        [0.5, math.sqrt(3) / 2, 1, 0, 0.5 * math.sqrt(3) / 2, -0.25], atol=1e-12)
    # a chord is the mean of its pitch classes; the chromatic aggregate is the origin; empty -> zeros
    np.testing.assert_allclose(cq.tonal_centroid(C), np.mean([cq.tonal_centroid([p]) for p in C], 0))
    np.testing.assert_allclose(cq.tonal_centroid(range(12)), np.zeros(6), atol=1e-12)
    np.testing.assert_array_equal(cq.tonal_centroid([]), np.zeros(6))


def test_tonal_distance_orders_chords_by_relatedness() -> None:
    assert cq.tonal_distance(C, C) == 0.0
    assert cq.tonal_distance([0, 4, 7], [7, 4, 12]) == 0.0  # same pitch classes, any order/octave
    assert cq.tonal_distance(C, CS) > cq.tonal_distance(C, AM) > 0
    assert cq.tonal_distance(C, G) < cq.tonal_distance(C, CS)
    assert cq.tonal_distance(C, AM) == pytest.approx(cq.tonal_distance((2, 6, 9), (11, 2, 6)))  # D vs Bm
    worst = max(cq.tonal_distance([a], [b]) for a in range(12) for b in range(12))
    assert worst <= 3.0


# --- chord-only metrics -----------------------------------------------------------------------------------

def test_one_chord_repeated() -> None:
    labels = ["C:maj"] * 8
    assert cq.chord_histogram_entropy(labels) == 0.0
    assert cq.chord_coverage(labels) == 1
    assert cq.chord_tonal_distance([C] * 8) == 0.0


def test_entropy_coverage_and_tonal_distance_of_known_progressions() -> None:
    labels = ["C:maj", "A:min", "F:maj", "G:maj"] * 2
    assert cq.chord_histogram_entropy(labels) == pytest.approx(math.log(4))
    assert cq.chord_coverage(labels) == 4
    assert cq.chord_histogram_entropy(["C:maj", "C:maj", "C:maj", "G:maj"]) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    # CTD: mean over the adjacent pairs, repeats count as 0
    assert cq.chord_tonal_distance([C, C, G]) == pytest.approx(cq.tonal_distance(C, G) / 2)
    seq = [C, AM, F, G]
    expect = np.mean([cq.tonal_distance(a, b) for a, b in zip(seq[:-1], seq[1:])])
    assert cq.chord_tonal_distance(seq) == pytest.approx(expect)
    # a semitone away at every change moves further than diatonic neighbours
    assert cq.chord_tonal_distance([C, CS] * 4) > cq.chord_tonal_distance(seq * 2)
    assert math.isnan(cq.chord_tonal_distance([C])) and math.isnan(cq.chord_histogram_entropy([]))


# --- melody against chords -------------------------------------------------------------------------------

def test_melody_of_chord_tones() -> None:
    spans = [(0, BAR, C)]
    thirds_fifths = notes(64, 67, 76, 79)
    assert cq.ctnctr(thirds_fifths, spans) == 1.0
    assert cq.pitch_consonance_score(thirds_fifths, spans) == 1.0
    roots = notes(60, 72, 48, 60)
    assert cq.ctnctr(roots, spans) == 1.0
    # a root makes a perfect fourth (0) above the chord's fifth: (1 + 1 + 0) / 3
    assert cq.pitch_consonance_score(roots, spans) == pytest.approx(2 / 3)
    # MCTD of a note against the chord made of that note alone is 0, and smaller for chord tones
    assert cq.melody_chord_tonal_distance(notes(60, 72), [(0, BAR, (0,))]) == pytest.approx(0.0, abs=1e-12)
    assert (cq.melody_chord_tonal_distance(notes(64, 67), spans)
            < cq.melody_chord_tonal_distance(notes(66, 61), spans))


def test_pcs_interval_scores() -> None:
    spans = [(0, BAR, C)]
    # F# above C, E, G: tritone, major second, major seventh -> -1 each
    assert cq.pitch_consonance_score(notes(66), spans) == -1.0
    # F above C, E, G: fourth 0, minor second -1, minor seventh -1
    assert cq.pitch_consonance_score(notes(65), spans) == pytest.approx(-2 / 3)
    # A above C, E, G: major sixth +1, fourth 0, major second -1
    assert cq.pitch_consonance_score(notes(69), spans) == pytest.approx(0.0)
    # frames weight by duration: an E of 3 beats and an F# of 1 beat
    long_short = np.array([[0, 48, 64], [48, 64, 66]])
    assert cq.pitch_consonance_score(long_short, spans) == pytest.approx((3 * 1 + 1 * -1) / 4)


def test_ctnctr_counts_proper_non_chord_tones() -> None:
    spans = [(0, BAR, C)]
    # D (non-chord) steps to E (chord tone): proper, so (1 + 1) / (1 + 1)
    assert cq.ctnctr(notes(62, 64), spans) == 1.0
    # B4 -> C5 is a half step (pitch classes 11 -> 0)
    assert cq.ctnctr(notes(71, 72), spans) == 1.0
    # F# leaps to C: improper; two 16ths of F#... per frame: C = 4 frames chord tone, F# = 4 frames non-chord
    assert cq.ctnctr(notes(66, 60), spans) == pytest.approx(0.5)
    # the last note has no next note; a non-chord tone there is improper
    assert cq.ctnctr(notes(64, 62), spans) == pytest.approx(0.5)
    # rests and repeated notes are skipped when looking for the next different pitch
    gap = np.array([[0, 8, 62], [8, 16, 62], [32, 48, 64]])
    assert cq.ctnctr(gap, spans) == 1.0
    # the next note must be a tone of the chord sounding *then*: D -> E under C|Dm is improper
    assert cq.ctnctr(notes(62, 64), [(0, 16, C), (16, 32, (2, 5, 9))]) == 0.0


def test_frames_without_chord_or_melody_are_left_out() -> None:
    spans = [(0, 32, C), (32, 64, ())]  # second half: N
    mel = notes(64, 66, dur=32)  # E under C, F# under N
    assert cq.ctnctr(mel, spans) == 1.0 and cq.pitch_consonance_score(mel, spans) == 1.0
    assert math.isnan(cq.ctnctr(notes(66, start=32), spans))
    assert math.isnan(cq.pitch_consonance_score(np.zeros((0, 3)), spans))
    # per 16th (4 ticks) the pitch sounding longest; silence does not compete
    mel_frames, chord_frames, pcs = cq.melody_frames(np.array([[0, 3, 60], [3, 8, 62], [13, 14, 64]]),
                                                     [(0, 8, C)])
    assert mel_frames.tolist() == [60, 62, -1, 64] and chord_frames.tolist() == [0, 0, -1, -1]
    assert pcs == [C]


def _song(seed: int = 0) -> tuple[list[tuple[int, int, tuple[int, ...]]], np.ndarray]:
    """16 bars of I-vi-IV-V in C, a melody of chord tones with passing tones on the off-beats."""
    rng = np.random.default_rng(seed)
    prog = [C, AM, F, G] * 4
    spans = [(i * BAR, (i + 1) * BAR, c) for i, c in enumerate(prog)]
    mel = []
    for i, c in enumerate(prog):
        for beat in range(4):
            t = i * BAR + beat * 16
            p = 60 + sorted(c)[rng.integers(3)]
            mel.append([t, t + 12, p])
            mel.append([t + 12, t + 16, p + (2 if rng.random() < 0.5 else 1)])  # a step away, off the beat
    return spans, np.array(mel)


def test_semitone_shifted_chords_score_worse_on_a_synthetic_song() -> None:
    spans, mel = _song()
    shifted = [(a, b, tuple((p + 1) % 12 for p in c)) for a, b, c in spans]
    true, bad = cq.chord_quality([str(c) for *_, c in spans], [c for *_, c in spans], mel, spans), \
        cq.chord_quality([str(c) for *_, c in shifted], [c for *_, c in shifted], mel, shifted)
    assert true["CTnCTR"] > bad["CTnCTR"] + 0.2
    assert true["PCS"] > bad["PCS"] + 0.3
    assert true["MCTD"] < bad["MCTD"] - 0.3
    # the chord-only metrics are transposition blind
    for m in ("CHE", "CC", "CTD"):
        assert true[m] == pytest.approx(bad[m])
    assert set(true) == set(cq.METRICS)


def test_melody_metrics_are_transposition_invariant() -> None:
    spans, mel = _song(1)
    for k in (1, 5, 7):
        sp = [(a, b, tuple((p + k) % 12 for p in c)) for a, b, c in spans]
        m2 = mel + np.array([0, 0, k])
        for f in (cq.ctnctr, cq.pitch_consonance_score, cq.melody_chord_tonal_distance):
            assert f(m2, sp) == pytest.approx(f(mel, spans))


# --- mir_eval helpers -------------------------------------------------------------------------------------

def test_triad_reduction_of_pop909_labels() -> None:
    pytest.importorskip("mir_eval")
    assert cq.triad("A:min7/b3") == ("A:min", (0, 4, 9))
    assert cq.triad("C:7/b7") == ("C:maj", C)
    assert cq.triad("G:maj6") == ("G:maj", G)
    assert cq.triad("B:hdim7") == ("B:dim", (2, 5, 11))
    assert cq.triad("F#:aug") == ("F#:aug", (2, 6, 10))
    assert cq.triad("C:sus4(b7)") == ("C:sus4", (0, 5, 7))
    assert cq.triad("D:sus2") == ("D:sus2", (2, 4, 9))
    assert cq.triad("Eb:minmaj7") == ("Eb:min", (3, 6, 10))
    assert cq.triad("N") == ("N", ())
    with pytest.raises(ValueError):
        cq.triad("C:5")  # a power chord holds no triad
    assert cq.transpose("B:min", 1) == "C:min" and cq.transpose("N", 1) == "N"


def test_chord_accuracy_uses_mir_eval_rules() -> None:
    pytest.importorskip("mir_eval")
    ref = ["C:maj", "A:min7", "C:sus4", "G:7", "E:min"]
    est = ["C:maj", "C:maj", "C:maj", "G:maj", "E:maj"]
    acc = cq.chord_accuracy(ref, est)
    assert acc["root"] == pytest.approx(4 / 5) and acc["root_n"] == 5
    # majmin leaves out the sus4 reference; G:7 counts as G major
    assert acc["majmin"] == pytest.approx(2 / 4) and acc["majmin_n"] == 4
    assert cq.chord_accuracy(ref, est, weights=[3, 1, 1, 1, 1])["root"] == pytest.approx(6 / 7)
    assert math.isnan(cq.chord_accuracy([], [])["root"])


def test_metrics_import_without_mir_eval() -> None:
    code = ("import sys\nimport stripes.metrics.chord_quality as q\n"
            "assert q.tonal_distance([0, 4, 7], [0, 4, 7]) == 0\n"
            "assert 'mir_eval' not in sys.modules\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
