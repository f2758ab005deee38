"""Frame and note-level precision / recall / F1, one-to-one onset matching."""

import numpy as np
import pytest

from stripes.errors import DataError
from stripes.metrics import extract_notes, frame_prf, onset_prf, prf
from stripes.metrics.notes import _match_count


def roll(t, notes):
    r = np.zeros((t, 128), dtype=bool)
    for p, a, b in notes:
        r[a:b, p] = True
    return r


def test_extract_notes_runs_per_pitch():
    r = roll(32, [(60, 0, 4), (60, 6, 10), (40, 3, 32)])
    assert extract_notes(r).tolist() == [[40, 3, 32], [60, 0, 4], [60, 6, 10]]
    assert extract_notes(np.zeros((8, 128), bool)).shape == (0, 3)


def test_frame_prf_counts_cells():
    t = roll(16, [(60, 0, 8)])  # 8 cells
    p = roll(16, [(60, 4, 8), (61, 0, 2)])  # 4 hits + 2 false cells
    precision, recall, f1 = frame_prf(p, t)
    assert precision == pytest.approx(4 / 6)
    assert recall == pytest.approx(4 / 8)
    assert f1 == pytest.approx(2 * (4 / 6) * 0.5 / (4 / 6 + 0.5))


def test_empty_conventions():
    e = np.zeros((16, 128), bool)
    t = roll(16, [(60, 0, 8)])
    assert frame_prf(e, e) == (1.0, 1.0, 1.0)
    assert onset_prf(e, e) == (1.0, 1.0, 1.0)
    assert frame_prf(e, t) == (0.0, 0.0, 0.0)
    assert onset_prf(e, t) == (0.0, 0.0, 0.0)
    assert prf(0, 3, 0) == (0.0, 0.0, 0.0)  # predictions but nothing expected
    assert prf(2, 2, 4) == (1.0, 0.5, pytest.approx(2 / 3))


def test_onset_tolerance_in_ticks_and_offsets_ignored():
    t = roll(64, [(60, 0, 8), (64, 16, 20), (67, 32, 60)])
    late = roll(64, [(60, 1, 3), (64, 17, 40), (67, 33, 34)])  # every onset 1 tick late, other offsets
    assert onset_prf(late, t, onset_tolerance=1) == (1.0, 1.0, 1.0)
    assert onset_prf(late, t, onset_tolerance=0) == (0.0, 0.0, 0.0)
    assert frame_prf(late, t)[2] < 1.0
    wrong_pitch = np.roll(t, 1, axis=1)
    assert onset_prf(wrong_pitch, t, onset_tolerance=4)[2] == 0.0


def test_one_to_one_bipartite_beats_greedy():
    ref, est = np.array([0, 3]), np.array([2, 5])
    # greedy takes the closest pair (3, 2) first and strands both others; a maximum matching pairs 0-2, 3-5
    assert _match_count(ref, est, 2, "greedy") == 1
    assert _match_count(ref, est, 2, "bipartite") == 2
    t = roll(16, [(60, 0, 1), (60, 3, 4)])
    p = roll(16, [(60, 2, 3), (60, 5, 6)])
    assert onset_prf(p, t, onset_tolerance=2, matching="bipartite") == (1.0, 1.0, 1.0)
    assert onset_prf(p, t, onset_tolerance=2, matching="greedy") == (0.5, 0.5, 0.5)


def test_each_target_note_matches_at_most_once():
    t = roll(16, [(60, 4, 6)])
    p = roll(16, [(60, 3, 4), (60, 5, 6)])  # two predicted onsets within tolerance of one target
    precision, recall, _ = onset_prf(p, t, onset_tolerance=1)
    assert (precision, recall) == (0.5, 1.0)


def test_bipartite_matches_assignment_oracle_on_random_onsets():
    rng = np.random.default_rng(0)
    for _ in range(30):
        ref = np.sort(rng.choice(60, size=int(rng.integers(1, 12)), replace=False))
        est = np.sort(rng.choice(60, size=int(rng.integers(1, 12)), replace=False))
        tol = int(rng.integers(0, 4))
        bip = _match_count(ref, est, tol, "bipartite")
        assert bip == _match_count(ref, est, tol, "assignment")
        assert _match_count(ref, est, tol, "greedy") <= bip


def test_vectorised_bipartite_equals_per_pitch_oracle_on_random_rolls():
    rng = np.random.default_rng(5)
    for _ in range(10):
        t = rng.random((96, 128)) < 0.05
        p = rng.random((96, 128)) < 0.05
        tol = int(rng.integers(0, 3))
        fast = onset_prf(p, t, onset_tolerance=tol)
        assert fast == onset_prf(p, t, onset_tolerance=tol, matching="assignment")


def test_bad_options():
    t = roll(16, [(60, 0, 8)])
    with pytest.raises(DataError):
        onset_prf(t, t, onset_tolerance=-1)
    with pytest.raises(DataError):
        onset_prf(t, t, matching="hungarian-ish")
