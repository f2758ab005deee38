import numpy as np

from stripes.apps.harmonize.estimate import default_params, estimate_chords, estimate_key


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
    assert p.prior.shape == (24,) and p.trans.shape == (24, 24) and p.emit.shape == (2, 12)
    assert np.allclose(np.exp(p.trans).sum(1), 1, atol=1e-3)
