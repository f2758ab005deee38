import time

import numpy as np

from stripes.apps.harmonize import chordfit
from stripes.apps.harmonize.estimate import (
    N_FEATURES,
    beat_grid,
    default_params,
    estimate_chords,
    estimate_key,
    slot_histograms,
)


def _melody(chords, beats_per=4):
    """Arpeggiate chord tones (pitch lists), one note per beat (16 ticks), one chord per bar."""
    notes = []
    t = 0
    for tones in chords:
        for j in range(beats_per):
            notes.append((t, t + 16, tones[j % len(tones)]))
            t += 16
    return np.array(notes, np.int64)


def _run(chords):
    notes = _melody(chords)
    n = len(chords)
    spans = estimate_chords(notes, np.arange(n) * 64, np.full(n, 4), n * 64)
    per_bar = []
    for b in range(n):
        mid = b * 64 + 16
        per_bar.append(next(s.chord.symbol for s in spans if s.start <= mid < s.end))
    return per_bar


def test_cadence_major():
    C, F, G = [72, 67, 64, 67], [69, 65, 72, 65], [71, 67, 74, 67]
    assert _run([C, F, G, C, C, F, G, C]) == ["C", "F", "G", "C", "C", "F", "G", "C"]


def test_cadence_minor_and_other_key():
    Am, Dm, E = [69, 72, 76, 72], [74, 69, 77, 69], [71, 68, 76, 68]
    assert _run([Am, Dm, E, Am]) == ["Am", "Dm", "E", "Am"]
    D, G, A = [74, 78, 81, 78], [79, 74, 71, 74], [76, 73, 81, 73]
    assert _run([D, G, A, D]) == ["D", "G", "A", "D"]


def test_key_estimate_and_params_shipped():
    h = np.zeros(12)
    h[[0, 2, 4, 5, 7, 9, 11]] = [5, 2, 4, 2, 5, 2, 1]
    assert estimate_key(h) == (0, False)
    p = default_params()
    assert p.W.shape == (N_FEATURES, 24) and p.prior.shape == (24,) and p.bigram.shape == (24, 24)
    assert np.allclose(np.exp(p.bigram).sum(1), 1, atol=1e-3)
    assert np.allclose(np.exp(p.change).sum(1), 1, atol=1e-3)
    assert 0.0 <= p.gamma <= 1.0


def test_slot_histograms_and_odd_bars():
    edges, pos = beat_grid(np.array([0, 32, 80]), np.array([2, 3, 4]), 144)
    assert edges.tolist() == [0, 16, 32, 48, 64, 80, 96, 112, 128, 144]
    assert pos.tolist() == [0, 1, 0, 1, 2, 0, 1, 2, 3]
    h = slot_histograms(np.array([[2, 10, 60]]), edges)
    assert np.isclose(h[0, :, 0].sum(), 2.0) and np.isclose(h[0, 0, 0], 0.5) and h[1:].sum() == 0
    # a pickup bar, a 3/4 bar, an empty melody and rests do not break the estimate
    notes = np.array([[40, 56, 67], [96, 112, 72]])
    spans = estimate_chords(notes, np.array([0, 32, 80]), np.array([2, 3, 4]), 144)
    assert spans[0].start == 0 and spans[-1].end == 144
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))
    assert estimate_chords(np.zeros((0, 3), np.int64), np.array([0]), np.array([4]), 64)[0].end == 64


def test_fast_and_deterministic():
    rng = np.random.default_rng(0)
    on = np.arange(0, 6400, 8)
    notes = np.stack([on, on + 8, rng.integers(60, 80, len(on))], 1)
    args = (notes, np.arange(100) * 64, np.full(100, 4), 6400)
    estimate_chords(*args)
    t = time.perf_counter()
    a = estimate_chords(*args)
    assert time.perf_counter() - t < 1.0  # about 0.05 s on an idle core
    assert a == estimate_chords(*args)


def test_beats_melody_blind_baseline_on_validation(shared_data):
    songs = chordfit.load_songs(shared_data, splits=("val",), limit=6)["val"]
    p = default_params()
    acc = chordfit.accuracy(songs, p)
    blind = chordfit.accuracy(songs, p, blind=True)
    assert acc["beats"] > 1000
    assert acc["majmin"] > blind["majmin"] + 0.1, (acc, blind)
    assert acc["majmin"] > 0.3 and acc["root"] >= acc["majmin"]


def test_label_reduction():
    assert chordfit.label_state("C:maj7/3") == 0 and chordfit.label_state("A:min7/b7") == 19
    assert chordfit.label_state("Bb:7") == 20 and chordfit.label_state("C#:min6") == 3
    for lab in ("N", "G:sus4", "F:sus4(b7)", "B:dim", "E:hdim7", "Ab:aug", "D:sus2"):
        assert chordfit.label_state(lab) == -1
