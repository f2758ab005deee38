"""Label computations: chord codes and table, key normalisation, REP, alignment, buckets."""

from __future__ import annotations

import numpy as np
import pytest

from stripes.data import contexts as ctx


def test_codes_round_trip_with_chord_db(shared_data) -> None:
    from stripes.data.readers import read_chord_db

    db = read_chord_db(shared_data / "structurePE" / "chord_db.npz")
    codes = ctx.codes_from_table(db)
    assert np.array_equal(ctx.table_from_codes(codes), db)
    table = ctx.ChordTable(db)
    assert np.array_equal(table.ids(codes), np.arange(len(db)))
    assert table.no_chord_id == 8
    assert ctx.chord_code(11, (3, 6, 11)) == codes[np.flatnonzero((db[:, 0] == 12) & (db[:, 4] == 1)
                                                                   & (db[:, 7] == 1) & (db[:, 12] == 1))[0]]


def test_table_extension_is_deterministic() -> None:
    base = ctx.table_from_codes(np.array([0, ctx.chord_code(0, (0, 4, 7))]))
    new = np.array([ctx.chord_code(2, (2, 5, 9)), ctx.chord_code(1, (1, 5, 8))])
    t1, t2 = ctx.ChordTable(base), ctx.ChordTable(base)
    assert t1.extend(new) == 2 and t2.extend(new[::-1]) == 2
    assert np.array_equal(t1.codes, t2.codes)
    assert t1.ids(new).tolist() == [3, 2]  # appended in increasing code order
    assert t1.extend(new) == 0
    with pytest.raises(KeyError):
        t1.ids(np.array([ctx.chord_code(3, (3,))]))


def test_key_normalisation_example_from_p1() -> None:
    # P1: E:min in D:major -> D:min in C:major
    e_min = ctx.chord_code(4, (4, 7, 11))
    d_min = ctx.chord_code(2, (2, 5, 9))
    assert ctx.key_normalize(np.array([e_min, 0]), tonic=2).tolist() == [d_min, 0]


def test_transpose_properties() -> None:
    rng = np.random.default_rng(0)
    codes = np.array([ctx.chord_code(int(r), rng.choice(12, 3, replace=False))
                      for r in rng.integers(0, 12, 50)])
    for s in range(12):
        back = ctx.transpose_codes(ctx.transpose_codes(codes, s), -s)
        assert np.array_equal(back, codes)
        moved = ctx.table_from_codes(ctx.transpose_codes(codes, s))
        orig = ctx.table_from_codes(codes)
        assert np.array_equal(moved[:, 1:], np.roll(orig[:, 1:], s, axis=1))
        assert np.array_equal(moved[:, 0] - 1, (orig[:, 0] - 1 + s) % 12)


def test_rep_is_dense_rank() -> None:
    assert ctx.rep_labels(np.array([40, 8, 40, 3, 8])).tolist() == [2, 1, 2, 0, 1]


def test_tick_expansion() -> None:
    assert ctx.chord_ticks(np.array([5, 0]), np.array([1, 2])).tolist() == [5] * 16 + [0] * 32
    assert ctx.melody_ticks(np.array([[60, 1], [0, 2]])).tolist() == [60] * 4 + [0] * 8
    lab = ctx.section_ticks([("i", 1), ("A", 2), ("x", 1)])
    assert lab.tolist() == [8] * 64 + [26] * 128 + [23] * 64
    assert ctx.SECTION_INDEX["a"] == 0 and ctx.SECTION_INDEX["z"] == 25 and ctx.SECTION_INDEX["Z"] == 51


@pytest.mark.parametrize(("start_pos", "expected"), [
    (3, [9, 9, 9, 1, 2, 3, 4, 5]),  # positive: labels padded at the start, truncated at the end
    (0, [1, 2, 3, 4, 5, 6, 7, 9]),  # zero: fitted to the roll, padded at the end
    (-2, [1, 2, 3, 4, 5, 6, 7, 9]),  # negative: the roll was padded instead
])
def test_align_labels(start_pos: int, expected: list[int]) -> None:
    labels = np.arange(1, 8)
    assert ctx.align_labels(labels, 8, start_pos, pad=9).tolist() == expected


def test_align_truncates_long_streams() -> None:
    assert ctx.align_labels(np.arange(20), 5, 2, pad=-1).tolist() == [-1, -1, 0, 1, 2]
    assert ctx.align_labels(np.arange(20), 5, 0, pad=-1).tolist() == [0, 1, 2, 3, 4]


def test_tempo_buckets_and_bars() -> None:
    buckets = [ctx.tempo_bucket(b) for b in (10, 30, 59, 60, 90, 119, 120, 149, 200)]
    assert buckets == [0, 0, 0, 1, 2, 2, 3, 3, 3]
    assert ctx.bar_index(130).tolist() == [0] * 64 + [1] * 64 + [2] * 2


def test_resolve_contexts() -> None:
    assert ctx.resolve_contexts(["m", "C", "p", "bin"]) == ["melody", "chord", "phrase", "bin"]
    assert ctx.context_dim(["bin", "rep"]) == 13
    with pytest.raises(ValueError, match="unknown context"):
        ctx.resolve_contexts("pitch")
