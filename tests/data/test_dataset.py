"""HarmonizationDataset items, contexts and whole-split arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stripes.data import HarmonizationDataset, contexts
from stripes.errors import ConfigError


@pytest.mark.parametrize(("context", "dim"), [
    ("time", 1), ("rep", 1), ("key", 1), ("bin", 12), ("melody", 1), ("chord", 1), ("phrase", 1),
    (["m", "c", "p"], 3), (["bin", "rep"], 13),
])
def test_item_shapes_and_dtypes(small_root, context, dim: int) -> None:
    root, cache = small_root
    ds = HarmonizationDataset("train", context, data_root=root, cache_dir=cache)
    assert len(ds) > 0 and ds.context_dim == dim and ds.window_len == 1024
    item = ds[len(ds) - 1]
    assert item["x"].shape == (1024, 256) and item["x"].dtype == torch.float32
    assert item["y"].shape == (1024, 128) and item["y"].dtype == torch.float32
    assert item["pos"].shape == (1024, dim) and item["pos"].dtype == torch.float32
    assert isinstance(item["song_id"], int) and isinstance(item["start"], int)
    assert set(torch.unique(torch.cat([item["x"].flatten(), item["y"].flatten()])).tolist()) <= {0.0, 1.0}
    assert isinstance(ds.manifest_hash, str) and len(ds.manifest_hash) == 16


def test_context_values(small_root) -> None:
    root, cache = small_root
    ds = HarmonizationDataset("val", ["time", "rep", "chord", "bin", "key", "m", "p"], data_root=root,
                              cache_dir=cache)
    item = ds[0]
    pos = item["pos"].numpy()
    time_, rep, chord, binv, key, mel, phr = (pos[:, 0], pos[:, 1], pos[:, 2], pos[:, 3:15], pos[:, 15],
                                              pos[:, 16], pos[:, 17])
    assert np.array_equal(time_, np.arange(1024))
    assert np.array_equal(rep, contexts.rep_labels(chord))
    table = ds.data.chord_table
    assert np.array_equal(binv, table[chord.astype(int), 1:])
    lab = ds.labels(0)
    assert np.array_equal(key, lab["key"]) and np.array_equal(mel, lab["melody"])
    assert np.array_equal(phr, lab["phrase"])
    # the melody label is the annotated melody, which mostly sounds in the MIDI melody track
    x = item["x"].numpy()
    sounding = mel > 0
    hits = x[np.flatnonzero(sounding), mel[sounding].astype(int)]
    assert hits.mean() > 0.5


def test_test_split_64_bars_and_max_len(small_root) -> None:
    root, cache = small_root
    ds = HarmonizationDataset("test", "time", bars=64, data_root=root, cache_dir=cache)
    assert ds.window_len == 4096
    if len(ds):
        assert ds[0]["pos"][-1, 0].item() == 4095
    short = HarmonizationDataset("train", "bin", data_root=root, cache_dir=cache, max_len=100)
    assert short[0]["x"].shape == (100, 256) and short[0]["pos"].shape == (100, 12)


def test_arrays_match_items(small_root) -> None:
    root, cache = small_root
    ds = HarmonizationDataset("train", "chord", data_root=root, cache_dir=cache)
    arr = ds.arrays()
    assert len(arr["starts"]) == len(ds) == len(arr["song_id"])
    for i in (0, len(ds) - 1):
        s, t = int(arr["starts"][i]), arr["window_len"]
        roll = np.unpackbits(arr["roll"][s:s + t], axis=-1, count=384)
        item = ds[i]
        assert np.array_equal(roll[:, :256], item["x"].numpy())
        assert np.array_equal(roll[:, 256:], item["y"].numpy())
        assert np.array_equal(arr["chord"][s:s + t], item["pos"][:, 0].numpy())
        assert int(arr["song_id"][i]) == item["song_id"]


def test_dataloader_batches(small_root) -> None:
    root, cache = small_root
    ds = HarmonizationDataset("train", ["bin"], data_root=root, cache_dir=cache, max_len=64)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["x"].shape == (4, 64, 256) and batch["pos"].shape == (4, 64, 12)


def test_bad_arguments(small_root) -> None:
    root, cache = small_root
    with pytest.raises(ConfigError, match="split"):
        HarmonizationDataset("dev", "time", data_root=root, cache_dir=cache)
    with pytest.raises(ConfigError, match="unknown context"):
        HarmonizationDataset("train", "pitch", data_root=root, cache_dir=cache)
    ds = HarmonizationDataset("train", "time", data_root=root, cache_dir=cache)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_split_sizes_of_the_real_split(shared_data) -> None:
    from stripes.data.readers import read_split

    split = read_split(shared_data / "structurePE" / "split.npz")
    assert {k: len(v) for k, v in split.items()} == {"train": 692, "val": 86, "test": 88}
    assert not set(split["train"]) & set(split["val"]) and not set(split["val"]) & set(split["test"])
