"""Degraded BIN contexts (question 1): names, span corruption, chord shifts, and the dataset windows."""

from __future__ import annotations

import numpy as np
import pytest

from stripes.config import load_run_config
from stripes.data import HarmonizationDataset
from stripes.data import contexts as ctx
from stripes.data.variants import CORRUPTION_SEED, ContextVariants, chord_vocabulary
from stripes.errors import ConfigError

# ------------------------------------------------------------------------------------------------- names


def test_variant_names_parse_in_one_spelling() -> None:
    assert ctx.parse_variant("bin_corrupt0.25") == ("corrupt", 0.25)
    assert ctx.parse_variant("bin_corrupt0") == ("corrupt", 0.0)
    assert ctx.parse_variant("bin_corrupt1") == ("corrupt", 1.0)
    assert ctx.parse_variant("bin_shift2") == ("shift", 2.0)
    assert ctx.parse_variant("bin_shift-1") == ("shift", -1.0)
    assert ctx.parse_variant("bin") is None and ctx.parse_variant("chord") is None
    assert ctx.variant_name("corrupt", 0.5) == "bin_corrupt0.5"
    assert ctx.variant_name("shift", 4) == "bin_shift4"
    for bad in ("bin_corrupt0.50", "bin_corrupt1.5", "bin_corrupt1.0", "bin_shift1.5", "bin_shift02"):
        with pytest.raises(ValueError):
            ctx.parse_variant(bad)


def test_variants_resolve_as_12_wide_contexts_and_configs_accept_them() -> None:
    names = ["bin_corrupt0.5", "bin_shift2", "rep"]
    assert ctx.resolve_contexts(["BIN_Corrupt0.5", "bin_shift2", "rep"]) == names
    assert ctx.context_dim(["bin_corrupt0.5", "bin_shift2", "rep"]) == 25
    assert ctx.context_width("bin_shift4") == 12 and ctx.context_width("key") == 1
    with pytest.raises(ValueError, match="bin_corrupt"):
        ctx.resolve_contexts("bin_noise0.5")
    cfg = load_run_config("smoke", overrides={"context": "bin_corrupt0.25"})
    assert cfg.context == "bin_corrupt0.25"
    with pytest.raises(ConfigError, match="spelled 'bin_corrupt0.5'"):
        load_run_config("smoke", overrides={"context": "bin_corrupt0.50"})
    with pytest.raises(ConfigError, match="unknown context"):
        load_run_config("smoke", overrides={"context": "bin_blur1"})


def test_chroma_masks_round_trip() -> None:
    chroma = np.random.default_rng(0).integers(0, 2, size=(50, 12)).astype(np.uint8)
    assert np.array_equal(ctx.mask_chroma(ctx.chroma_masks(chroma)), chroma)
    assert np.array_equal(ctx.span_starts(np.array([3, 3, 5, 5, 5, 3, 0])), [0, 2, 5, 6])


# ---------------------------------------------------------------------------------- corruption of spans

VOCAB = np.array([0b10010001, 0b100010001, 0b10001001, 0b100100100, 0b10010000100], dtype=np.int64)
WEIGHTS = np.array([5.0, 3.0, 2.0, 1.0, 1.0])


def _spans(n: int, seed: int = 1) -> np.ndarray:
    return VOCAB[np.random.default_rng(seed).integers(0, VOCAB.size, size=n)]


def test_rate_zero_is_the_identity() -> None:
    masks = _spans(500)
    out = ctx.corrupt_span_masks(masks, 0.0, VOCAB, WEIGHTS, ctx.corruption_rng(0, 7))
    assert np.array_equal(out, masks)


@pytest.mark.parametrize("rate", [0.25, 0.5, 0.75, 1.0])
def test_rate_r_replaces_about_r_of_the_spans(rate: float) -> None:
    n = 20000
    masks = _spans(n)
    out = ctx.corrupt_span_masks(masks, rate, VOCAB, WEIGHTS, ctx.corruption_rng(0, 3))
    changed = out != masks  # a replacement is always another chroma
    sd = np.sqrt(rate * (1 - rate) / n)
    assert abs(changed.mean() - rate) <= 4 * sd + 1e-12
    assert set(np.unique(out[changed]).tolist()) <= set(VOCAB.tolist())
    # replacements follow the weights (renormalised without the span's own chroma): for spans of chroma
    # VOCAB[0], the other four in proportion 3 : 2 : 1 : 1
    if rate == 1.0:
        got = np.array([(out[masks == VOCAB[0]] == v).mean() for v in VOCAB[1:]])
        assert np.allclose(got, WEIGHTS[1:] / WEIGHTS[1:].sum(), atol=0.03)


def test_corruption_is_seeded_per_song_and_nested_over_rates() -> None:
    masks = _spans(3000)

    def run(rate: float, seed: int = 0, song: int = 5) -> np.ndarray:
        return ctx.corrupt_span_masks(masks, rate, VOCAB, WEIGHTS, ctx.corruption_rng(seed, song))

    assert np.array_equal(run(0.5), run(0.5))  # the same (song, rate, seed): the same corruption
    assert not np.array_equal(run(0.5), run(0.5, song=6)) and not np.array_equal(run(0.5), run(0.5, seed=1))
    low, high = run(0.25), run(0.75)
    changed_low = low != masks
    assert np.array_equal(high[changed_low], low[changed_low])  # nested: same spans, same chords
    assert ((high != masks) >= changed_low).all()


def test_corruption_keeps_a_chroma_with_no_alternative() -> None:
    one = np.array([VOCAB[0]])
    out = ctx.corrupt_span_masks(np.full(10, VOCAB[0]), 1.0, one, np.ones(1), ctx.corruption_rng(0, 0))
    assert (out == VOCAB[0]).all()
    with pytest.raises(ValueError):
        ctx.corrupt_span_masks(np.zeros(3, np.int64), 1.5, VOCAB, WEIGHTS, ctx.corruption_rng(0, 0))


def test_shift_ticks() -> None:
    assert np.array_equal(ctx.shift_ticks(np.arange(3), 2), np.arange(3) - 32)
    assert np.array_equal(ctx.shift_ticks(np.arange(3), -1), np.arange(3) + 16)


# ------------------------------------------------------------------------------------ real prepared data


class _Song:
    """A fake prepared cache of two songs with known chords (for exact expectations)."""

    def __init__(self) -> None:
        from stripes.data.prepare import SONG_COLUMNS, SPLITS

        rng = np.random.default_rng(0)
        self.chroma = np.concatenate([np.zeros((1, 12), np.uint8),
                                      rng.integers(0, 2, size=(9, 12)).astype(np.uint8)])
        self.chroma[1:, 0] = 1  # every chord id > 0 has a distinct non-empty chroma
        self.chroma[1:, 1:5] = ctx.mask_chroma(np.arange(1, 10))[:, :4]
        beats = [rng.integers(1, 9, size=60) for _ in range(2)]
        ids = [np.repeat(rng.integers(0, 10, size=60), b * 16) for b in beats]
        self.chord = np.concatenate(ids).astype(np.int16)
        n0, n1 = len(ids[0]), len(ids[1])
        songs = np.zeros((2, len(SONG_COLUMNS)), np.int64)
        songs[:, SONG_COLUMNS.index("song_id")] = [11, 12]
        songs[:, SONG_COLUMNS.index("offset")] = [0, n0]
        songs[:, SONG_COLUMNS.index("length")] = [n0, n1]
        songs[:, SONG_COLUMNS.index("split")] = [SPLITS.index("train"), SPLITS.index("test")]
        self.songs = songs
        self.folder, self.hash = "fake-song-cache", "fake"


def test_shifted_windows_are_the_chords_moved_by_k_beats() -> None:
    data = _Song()
    n0 = int(data.songs[0, 2])
    binv = data.chroma[data.chord[:n0].astype(np.int64)]
    for k in (1, 2, 4, -1):
        v = ContextVariants(data, [f"bin_shift{k}"])
        for start, length in ((0, 256), (100, 300), (n0 - 128, 128)):
            got = v.window(f"bin_shift{k}", 0, start, length)
            t = np.arange(start, start + length) - 16 * k
            want = np.where(((t >= 0) & (t < n0))[:, None], binv[np.clip(t, 0, n0 - 1)], 0)
            assert np.array_equal(got, want), (k, start)
    whole = ContextVariants(data, ["bin_shift2"]).window("bin_shift2", 0, 0, n0)
    assert np.array_equal(whole[32:], binv[:-32]) and not whole[:32].any()


def test_corrupted_windows_agree_across_windows_and_rate_zero_is_bin() -> None:
    data = _Song()
    n0 = int(data.songs[0, 2])
    binv = data.chroma[data.chord[:n0].astype(np.int64)]
    assert np.array_equal(ContextVariants(data, ["bin_corrupt0"]).window("bin_corrupt0", 0, 0, n0), binv)
    v = ContextVariants(data, ["bin_corrupt0.5"])
    whole = v.window("bin_corrupt0.5", 0, 0, n0)
    assert np.array_equal(ContextVariants(data, ["bin_corrupt0.5"]).window("bin_corrupt0.5", 0, 64, 512),
                          whole[64:576])  # another window (or dataset) of the same song: the same draws
    starts = ctx.span_starts(data.chord[:n0])
    changed = (whole[starts] != binv[starts]).any(axis=1)
    assert 0.2 < changed.mean() < 0.8
    # within a span the corrupted chroma is constant
    span_of = np.searchsorted(starts, np.arange(n0), side="right") - 1
    assert np.array_equal(whole, whole[starts][span_of])
    masks, counts = chord_vocabulary(data)
    assert set(ctx.chroma_masks(whole[starts][changed]).tolist()) <= set(masks.tolist())
    assert 0 not in masks.tolist() and counts.sum() > 0
    assert CORRUPTION_SEED == 0


def test_dataset_rate_zero_equals_bin_and_shift_equals_moved_bin(small_root) -> None:
    root, cache = small_root
    for split, bars in (("train", 16), ("test", 64)):
        ref = HarmonizationDataset(split, "bin", bars, data_root=root, cache_dir=cache)
        zero = HarmonizationDataset(split, "bin_corrupt0", bars, data_root=root, cache_dir=cache)
        half = HarmonizationDataset(split, ["bin_corrupt0.5", "time"], bars, data_root=root, cache_dir=cache)
        assert zero.context_dim == 12 and half.context_dim == 13 and len(zero) == len(ref)
        for i in range(len(ref)):
            assert np.array_equal(zero[i]["pos"].numpy(), ref[i]["pos"].numpy())
        item = half[0]
        assert item["pos"].shape == (ref.window_len, 13)
        assert np.array_equal(half.labels(0)["bin_corrupt0.5"], item["pos"].numpy()[:, :12])
    # the 16-bar test windows and the 64-bar ones see the same corrupted song
    t16 = HarmonizationDataset("test", "bin_corrupt0.5", 16, data_root=root, cache_dir=cache)
    t64 = HarmonizationDataset("test", "bin_corrupt0.5", 64, data_root=root, cache_dir=cache)
    row16, s16 = t16.windows[0]
    rows64 = [j for j, (r, s) in enumerate(t64.windows) if r == row16 and s <= s16 <= s + 64 * 48]
    j = rows64[0]
    off = int(s16 - t64.windows[j][1])
    assert np.array_equal(t16.positions(0), t64.positions(j)[off : off + 1024])
    shifted = HarmonizationDataset("train", "bin_shift2", 16, data_root=root, cache_dir=cache)
    ref = HarmonizationDataset("train", "bin", 16, data_root=root, cache_dir=cache)
    i = next(i for i in range(len(ref)) if ref.windows[i][1] >= 32)
    row, start = ref.windows[i]
    ids = np.asarray(ref.data.chord[ref.data.span(row, start - 32, 1024)], dtype=np.int64)
    earlier = ref.data.chroma[ids]
    assert np.array_equal(shifted.positions(i), earlier.astype(np.float32))
