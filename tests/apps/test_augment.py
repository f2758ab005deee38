import pytest
import torch

from stripes.errors import ConfigError
from stripes.train.augment import augment_batch


def _batch(B=3, T=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(B, T, 256, generator=g) < 0.05).float()
    y = (torch.rand(B, T, 128, generator=g) < 0.05).float()
    pos = (torch.rand(B, T, 12, generator=g) < 0.3).float()
    return {"x": x, "y": y, "pos": pos, "song_id": torch.arange(B)}


def test_shift_round_trip_and_chroma_follows_melody():
    b = _batch()
    # keep notes away from the range edges so that +k then -k is exact
    b["x"][..., :10] = 0
    b["x"][..., 118:138] = 0
    b["x"][..., 246:] = 0
    b["y"][..., :10] = 0
    b["y"][..., 118:] = 0
    up = augment_batch(b, torch.Generator().manual_seed(1), (-5, 6), 0.0, "bin")
    k = up["transpose"]
    for i in range(3):
        ki = int(k[i])
        back = augment_batch(
            {key: v[i : i + 1] for key, v in up.items() if key != "transpose"},
            torch.Generator().manual_seed(0),
            (-ki, -ki),
            0.0,
            "bin",
        )
        for key in ("x", "y", "pos"):
            assert torch.equal(back[key][0], b[key][i])
        # melody pitch classes move exactly like the chroma columns
        mel_pc = torch.zeros(32, 12)
        mel_pc.index_add_(1, torch.arange(128) % 12, b["x"][i, :, :128])
        up_pc = torch.zeros(32, 12)
        up_pc.index_add_(1, torch.arange(128) % 12, up["x"][i, :, :128])
        assert torch.equal(torch.roll(mel_pc, ki, dims=-1), up_pc)
        assert torch.equal(torch.roll(b["pos"][i], ki, dims=-1), up["pos"][i])


def test_notes_off_range_are_dropped():
    b = _batch(B=1)
    b["x"].zero_()
    b["x"][0, 0, 127] = 1
    b["x"][0, 0, 60] = 1
    out = augment_batch(b, torch.Generator(), (3, 3), 0.0, "bin")
    assert out["x"][0, 0, :128].nonzero().flatten().tolist() == [63]


def test_deterministic_by_generator_and_bridge_dropout():
    b = _batch(B=8)
    a1 = augment_batch(b, torch.Generator().manual_seed(5), (-5, 6), 0.5, "bin")
    a2 = augment_batch(b, torch.Generator().manual_seed(5), (-5, 6), 0.5, "bin")
    for key in ("x", "y", "pos", "transpose"):
        assert torch.equal(a1[key], a2[key])
    full = augment_batch(b, torch.Generator().manual_seed(5), None, 1.0, "bin")
    assert full["x"][..., 128:].sum() == 0
    assert torch.equal(full["x"][..., :128], b["x"][..., :128]) and torch.equal(full["pos"], b["pos"])
    assert torch.equal(b["x"], _batch(B=8)["x"])  # input untouched


def test_contexts():
    b = _batch(B=2)
    b["pos"] = torch.cat([b["pos"], torch.arange(32.0).expand(2, 32)[..., None]], dim=-1)
    out = augment_batch(b, torch.Generator().manual_seed(2), (1, 1), 0.0, ["bin", "time"])
    assert torch.equal(out["pos"][..., 12], b["pos"][..., 12])
    assert torch.equal(out["pos"][..., :12], torch.roll(b["pos"][..., :12], 1, dims=-1))
    with pytest.raises(ConfigError, match="chord"):
        augment_batch({**b, "pos": b["pos"][..., :1]}, torch.Generator(), (-5, 6), 0.0, "chord")
    out = augment_batch({**b, "pos": b["pos"][..., :1]}, torch.Generator(), None, 0.0, "chord")
    assert out["x"].shape == b["x"].shape
