"""Texture metrics (Yang & Lerch 2020 feature distributions), chord-tone share and the rule baseline."""

import math

import numpy as np
import pytest

from stripes.errors import DataError
from stripes.metrics import (
    chord_tone_share,
    compare_sets,
    feature_matrix,
    format_texture_table,
    notes_from_rolls,
    rule_accompaniment,
    texture_table,
    window_features,
)
from stripes.metrics.baselines import chord_root, triad, voicing
from stripes.metrics.texture import FEATURES, overlap_and_kl, split_halves

C_MAJOR = np.array([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0])
A_MINOR = np.roll(np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]), 9)
G7 = np.roll(np.array([1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0]), 7)


def rolls(t, notes):
    """(start, end, pitch) notes -> (frame, onset) rolls with an onset at every note start."""
    f = np.zeros((t, 128), bool)
    o = np.zeros((t, 128), bool)
    for a, b, p in notes:
        f[a:b, p] = True
        o[a, p] = True
    return f, o


def test_notes_repeated_split_held_one():
    f, o = rolls(32, [(0, 4, 60), (4, 8, 60), (0, 16, 64)])
    assert notes_from_rolls(f, o) == [(0, 4, 60), (0, 16, 64), (4, 8, 60)]
    f, o = rolls(32, [(0, 8, 60)])
    assert notes_from_rolls(f, o) == [(0, 8, 60)]


def test_notes_without_onsets_gaps_and_stray_onsets():
    f, o = rolls(32, [(0, 8, 60), (10, 12, 60)])
    assert notes_from_rolls(f, np.zeros_like(o)) == [(0, 8, 60), (10, 12, 60)]  # frame runs
    o[20, 60] = True  # onset on a silent tick: no note
    assert notes_from_rolls(f, o) == [(0, 8, 60), (10, 12, 60)]
    f[31, 70] = True
    assert notes_from_rolls(f, o)[-1] == (31, 32, 70)  # a note runs to the window's end
    assert notes_from_rolls(np.zeros((8, 128)), np.zeros((8, 128))) == []
    with pytest.raises(DataError):
        notes_from_rolls(np.zeros((8, 128)), np.zeros((9, 128)))


def test_features_known_values():
    notes = [(0, 16, 60), (0, 16, 64), (16, 32, 67), (32, 64, 48)]  # one bar
    f = window_features(notes, 64)
    assert f["note_count"].tolist() == [4.0]
    assert f["pitch_count"].tolist() == [4.0]
    assert f["pitch_range"].tolist() == [19.0]
    assert f["polyphony"].tolist() == [(16 * 2 + 16 + 32) / 64]
    assert f["ioi"].tolist() == [1.0]
    assert f["onset_times"].tolist() == [3.0]
    assert f["note_length"].tolist() == [1.25]
    assert f["note_length_hist"].tolist() == [0, 0, 0, 0, 0.75, 0.25, 0]
    pch = np.zeros(12)
    pch[[0, 4, 7]] = [0.5, 0.25, 0.25]
    assert f["pitch_class_hist"].tolist() == pch.tolist()
    pctm = np.zeros((12, 12))
    pctm[0, 7] = pctm[4, 7] = pctm[7, 0] = 1 / 3  # {C, E} -> {G} -> {C}
    assert np.allclose(f["pctm"].reshape(12, 12), pctm)
    # the same from rolls, over two bars (per-bar features halve)
    fr, on = rolls(128, notes)
    f2 = feature_matrix([(fr, on)])
    assert f2["note_count"][0].tolist() == [2.0] and f2["onset_times"][0].tolist() == [1.5]
    assert f2["polyphony"][0].tolist() == f["polyphony"].tolist()


def test_features_length_bins_and_empty_window():
    f = window_features([(0, 1, 60), (4, 7, 60), (8, 136, 60)], 192)  # 1/16 q, 3/16 q -> 1/4, 8 q -> 4+
    assert f["note_length_hist"].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 0, 0, 1 / 3])
    e = window_features([], 64)
    assert set(e) == set(FEATURES)
    assert all(not v.any() for v in e.values())
    assert e["pctm"].shape == (144,) and e["note_length_hist"].shape == (7,)
    assert window_features([(5, 6, 60)], 64)["ioi"].tolist() == [0.0]  # one onset time: no interval


def _random_windows(rng, n, dense):
    """Dense: block chords of 3-4 notes on 8ths/quarters in the mid register; sparse: one long high note."""
    out = []
    for _ in range(n):
        notes = []
        if dense:
            t = 0
            while t < 128:
                d = int(rng.choice([8, 16]))
                base = int(rng.integers(48, 60))
                notes += [(t, min(t + d, 128), base + k) for k in (0, 4, 7, 12)[: int(rng.integers(3, 5))]]
                t += d
        else:
            a = int(rng.integers(0, 32))
            notes = [(a, 128, int(rng.integers(90, 100)))]
        out.append(rolls(128, notes))
    return out


def test_oa_self_high_other_low_kl_nonnegative():
    rng = np.random.default_rng(0)
    a = feature_matrix(_random_windows(rng, 30, dense=True))
    a2 = feature_matrix(_random_windows(rng, 30, dense=True))
    b = feature_matrix(_random_windows(rng, 30, dense=False))
    same = compare_sets(a, a)
    other = compare_sets(a2, a)
    far = compare_sets(b, a)
    assert same["mean_oa"] > 0.9 and other["mean_oa"] > 0.8
    assert far["mean_oa"] < 0.35
    assert far["mean_oa"] == pytest.approx(np.mean(list(far["oa"].values())))
    for r in (same, other, far):
        assert set(r["oa"]) == set(FEATURES)
        assert all(0 <= v <= 1 for v in r["oa"].values())
        assert all(v >= 0 and math.isfinite(v) for v in r["kl"].values())
    assert np.mean(list(far["kl"].values())) > 10 * np.mean(list(other["kl"].values()))


def test_overlap_and_kl_cases():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 2000)
    oa, kl = overlap_and_kl(x, x)
    assert oa == pytest.approx(1.0, abs=1e-9) and kl == pytest.approx(0.0, abs=1e-9)
    oa, kl = overlap_and_kl(x, rng.normal(0, 1, 2000))
    assert oa > 0.9 and 0 <= kl < 0.05
    oa, kl = overlap_and_kl(x, rng.normal(20, 1, 2000))
    assert oa < 1e-6 and kl > 5
    # degenerate samples (a KDE of constant values fails): documented fallbacks
    assert overlap_and_kl(np.full(5, 2.0), np.full(7, 2.0)) == (1.0, 0.0)
    oa, kl = overlap_and_kl(np.full(5, 2.0), np.full(7, 3.0))
    assert oa < 1e-6 and kl > 5
    oa, kl = overlap_and_kl(x, np.full(3, 0.0))
    assert 0 < oa < 0.2 and kl > 0
    oa, _ = overlap_and_kl(np.array([1.0]), np.array([1.0, 1.0]))
    assert oa == 1.0
    with pytest.raises(DataError):
        overlap_and_kl(np.array([]), x)


def test_chord_tone_share_known_values():
    T = 32
    chroma = np.tile(C_MAJOR, (T, 1))
    chroma[24:] = 0  # no chord from tick 24
    on = np.zeros((T, 128), bool)
    on[0, [60, 64]] = True  # C, E: chord tones
    on[8, 65] = True  # F: not
    on[24, 61] = True  # no chord: left out
    assert chord_tone_share(on, chroma) == pytest.approx(2 / 3)
    assert math.isnan(chord_tone_share(np.zeros((T, 128)), chroma))
    with pytest.raises(DataError):
        chord_tone_share(on, chroma[:, :11])


def test_triads_and_roots():
    assert chord_root(C_MAJOR) == 0 and chord_root(A_MINOR) == 9 and chord_root(G7) == 7
    assert chord_root(np.zeros(12)) == -1
    assert triad(G7) == [7, 11, 2]
    assert triad(A_MINOR, root=9) == [9, 0, 4]
    assert triad(C_MAJOR, root=5) == [0, 4, 7]  # a root outside the chord is inferred
    am7 = A_MINOR.copy()
    am7[7] = 1  # Am7 = C6 as a chroma: the annotated root decides
    assert triad(am7, root=9) == [9, 0, 4] and triad(am7, root=0) == [0, 4, 7]
    v = voicing([7, 11, 2])  # G: bass G2 (43), mid G3 B3 D4
    assert v == [43, 55, 59, 62]
    assert 42 <= voicing([0, 4, 7])[0] <= 53 and all(54 <= p <= 65 for p in voicing([0, 4, 7])[1:])


def test_rule_baseline_chord_tones_on_every_beat():
    T = 128
    chroma = np.zeros((T, 12))
    chroma[:56] = C_MAJOR
    chroma[56:100] = A_MINOR
    chroma[100:] = G7
    root = np.r_[np.zeros(56), np.full(44, 9), np.full(28, 7)].astype(int)
    for start in (0, 3):
        frame, onset = rule_accompaniment(chroma, root, start=start)
        beats = [t for t in range(T) if (start + t) % 16 == 0]
        assert sorted(set(np.nonzero(onset)[0])) == beats  # an onset on every beat, none elsewhere
        assert chord_tone_share(onset, chroma) == 1.0
        assert frame[onset].all() and not frame[: beats[0]].any()
        for t in beats:
            struck = np.nonzero(onset[t])[0]
            assert struck[0] % 12 == root[t] and len(struck) == 4  # root in the bass, then the triad
            assert frame[t : t + 16, struck].all()  # held to the next beat
        notes = notes_from_rolls(frame, onset)
        assert {b - a for a, b, _ in notes} <= {16, T - beats[-1]}  # re-struck every beat
    f1, o1 = rule_accompaniment(chroma)  # roots inferred from the chroma
    assert np.array_equal(o1, rule_accompaniment(chroma, root)[1])
    silent = rule_accompaniment(np.zeros((32, 12)))
    assert not silent[0].any() and not silent[1].any()


def _table(seed=0):
    rng = np.random.default_rng(3)
    human = _random_windows(rng, 12, dense=True)
    chroma = [np.tile(C_MAJOR, (128, 1)) for _ in human]
    systems = {
        "rule": [rule_accompaniment(c) for c in chroma],
        "sparse": _random_windows(rng, 12, dense=False),
    }
    groups = np.repeat(np.arange(6), 2)  # 6 songs of 2 windows
    return texture_table(systems, human, chroma, groups=groups, seed=seed)


def test_texture_table_rows_and_determinism():
    t = _table()
    assert list(t["rows"]) == ["human", "rule", "sparse"]
    assert t["n_reference"] == 6 and t["n_compared"] == 6
    for r in t["rows"].values():
        assert set(r["oa"]) == set(FEATURES) == set(r["kl"])
        keys = {"mean_oa", "notes_per_bar", "onset_times_per_bar", "mean_note_length", "chord_tone_share"}
        assert keys <= set(r)
    rule = t["rows"]["rule"]
    assert rule["chord_tone_share"] == 1.0 and rule["onset_times_per_bar"] == 4.0
    assert rule["notes_per_bar"] == 16.0 and rule["mean_note_length"] == 1.0
    assert t["rows"]["human"]["mean_oa"] > t["rows"]["sparse"]["mean_oa"]
    assert t == _table()  # deterministic
    md = format_texture_table(t)
    assert md.count("\n| human |") == 2 and "| rule |" in md
    ref, cmp = split_halves(np.repeat(np.arange(6), 2), seed=0)
    assert not set(np.repeat(np.arange(6), 2)[ref]) & set(np.repeat(np.arange(6), 2)[cmp])


def test_texture_table_rejects_bad_input():
    w = _random_windows(np.random.default_rng(0), 4, dense=True)
    c = [np.zeros((128, 12))] * 4
    with pytest.raises(DataError):
        texture_table({"x": w[:3]}, w, c)
    with pytest.raises(DataError):
        texture_table({"human": w}, w, c)
    with pytest.raises(DataError):
        texture_table({"x": w}, w, c, groups=[0, 0, 1, 1])  # fewer than 3 songs
