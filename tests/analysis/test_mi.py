"""MI estimators on distributions with known MI, count tables from windows, mi_table and its CLI."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from stripes.analysis import mi
from stripes.errors import DataError


def test_known_joint_table_exact():
    counts = np.array([[400, 100], [100, 400]])
    h = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))
    assert mi.mi_plugin_counts(counts) == pytest.approx(math.log(2) - h, abs=1e-12)
    # all four cells occupied: MM correction (2 + 2 - 4 - 1) / (2N)
    assert mi.mi_miller_madow_counts(counts) == pytest.approx(math.log(2) - h - 1 / 2000)


def test_sampled_joint_table_converges():
    rng = np.random.default_rng(0)
    p = np.array([[0.3, 0.05, 0.05], [0.05, 0.2, 0.05], [0.0, 0.1, 0.2]])
    px, py = p.sum(1), p.sum(0)
    true = float(np.sum(p[p > 0] * np.log(p[p > 0] / np.outer(px, py)[p > 0])))
    cells = rng.choice(9, size=100_000, p=p.ravel())
    x, y = cells // 3, cells % 3
    for est in (mi.mi_plugin(x, y), mi.mi_miller_madow(x, y), mi.mi_shuffle(x, y, n_shuffles=3)):
        assert est == pytest.approx(true, abs=0.005)


def test_independent_variables_bias_removed():
    rng = np.random.default_rng(1)
    n, kx, ky = 20_000, 12, 40
    x, y = rng.integers(0, kx, n), rng.integers(0, ky, n)
    plug = mi.mi_plugin(x, y)
    expected_bias = (kx - 1) * (ky - 1) / (2 * n)  # first-order plug-in bias under independence
    assert plug == pytest.approx(expected_bias, rel=0.3)
    assert abs(mi.mi_miller_madow(x, y)) < 0.2 * plug
    assert abs(mi.mi_shuffle(x, y, n_shuffles=5)) < 0.2 * plug
    counts = mi.contingency(x, y)
    assert abs(mi.mi_shuffle_counts(counts, n_shuffles=5)) < 0.2 * plug


def test_deterministic_relation_gives_entropy_of_x():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 8, 5000)
    y = (3 * x + 1) % 8  # a bijection of x
    hx = entropy(np.bincount(x))
    assert mi.mi_plugin(x, y) == pytest.approx(hx, abs=1e-12)
    assert mi.mi_plugin(y, x) == pytest.approx(hx, abs=1e-12)
    assert mi.mi_plugin(x, y) == pytest.approx(math.log(8), abs=0.01)


def test_relabeling_and_table_orientation_invariance():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, 3000), rng.integers(0, 7, 3000)
    y[:1000] = x[:1000]
    c = mi.contingency(x, y)
    assert mi.mi_plugin(x * 10 + 3, -y) == pytest.approx(mi.mi_plugin(x, y))
    assert mi.mi_plugin_counts(c.T) == pytest.approx(mi.mi_plugin_counts(c))
    assert c.sum() == 3000 and c.shape == (5, 7)


def test_estimator_errors():
    with pytest.raises(DataError):
        mi.contingency(np.arange(3), np.arange(4))
    with pytest.raises(DataError):
        mi.mi_plugin_counts(np.zeros((2, 2)))
    with pytest.raises(DataError):
        mi.mi_shuffle_counts(np.ones((2, 2)), n_shuffles=0)


def test_tick_labels_bin_vector_ids():
    pos = np.zeros((3, 13), dtype=np.float32)
    pos[0, 1 + 0] = pos[0, 1 + 4] = pos[0, 1 + 7] = 1  # C major chroma
    pos[1, 1 + 0] = pos[1, 1 + 4] = pos[1, 1 + 7] = 1
    pos[2, 1 + 9] = 1
    ids = mi.tick_labels(pos, slice(1, 13))
    assert ids.tolist() == [1 + 16 + 128, 1 + 16 + 128, 512]


def test_count_tables_by_hand():
    x = np.zeros((4, 256), dtype=np.float32)
    x[0, 60] = 1  # melody C4 at tick 0
    x[0, 128 + 60] = 1  # bridge C4 at tick 0: a second sample of pitch 60
    x[2, 64] = 1
    pos = np.zeros((4, 2), dtype=np.float32)
    pos[:, 0] = np.arange(4)  # time
    pos[:, 1] = [5, 5, 9, 9]  # rep
    tabs = mi.count_tables([(x, pos), (x, pos)], ["time", "rep"], 2)
    assert tabs["time"].shape == (128, 2)  # labels seen at active ticks: 0 and 2
    assert tabs["time"][60].tolist() == [4, 0] and tabs["time"][64].tolist() == [0, 2]
    assert tabs["rep"][60].tolist() == [4, 0] and tabs["rep"][64].tolist() == [0, 2]
    with pytest.raises(DataError):
        mi.count_tables([(x, pos)], ["time", "bin"], 2)


class FakeDataset:
    """Windows where the melody is a chord tone (so BIN is informative) and TIME is uninformative."""

    context_dim = 15

    def __init__(self, n: int = 12, t: int = 128, seed: int = 0):
        rng = np.random.default_rng(seed)
        chords = [(0, 4, 7), (5, 9, 0), (7, 11, 2), (9, 0, 4)]
        self.items = []
        for _ in range(n):
            x = np.zeros((t, 256), dtype=np.float32)
            pos = np.zeros((t, 15), dtype=np.float32)
            pos[:, 0] = np.arange(t)
            seq = rng.integers(0, 4, t // 16).repeat(16)
            pos[:, 1] = np.unique(seq, return_inverse=True)[1]  # rep
            pos[:, 2] = seq  # key (already normalised)
            for tick, c in enumerate(seq):
                pos[tick, 3 + np.array(chords[c])] = 1
                x[tick, 60 + chords[c][rng.integers(0, 3)]] = 1
                x[tick, 128 + int(rng.integers(40, 90))] = 1  # bridge: noise
            item = {"x": torch.from_numpy(x), "pos": torch.from_numpy(pos), "song_id": 0, "start": 0}
            self.items.append(item)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.fixture
def fake_data(monkeypatch):
    calls = []

    def make(split, contexts, bars, data_root, cache_dir):
        calls.append((split, tuple(contexts), bars, data_root, cache_dir))
        return FakeDataset()

    monkeypatch.setattr(mi, "_make_dataset", make)
    return calls


def test_mi_table_on_fake_dataset(fake_data):
    rows = mi.mi_table(data_root="D", cache_dir="C", n_shuffles=2)
    assert fake_data == [("train", ("time", "rep", "key", "bin"), 16, "D", "C")]
    by = {r["context"]: r for r in rows}
    assert set(by) == {"time", "rep", "key", "bin"}
    assert by["bin"]["p1"] == 1.0075 and by["time"]["p1"] == 0.0085
    assert by["bin"]["n_samples"] == 12 * 128 * 2
    # key and bin carry the same chord information here; time carries none (only bias)
    assert by["bin"]["plugin"] == pytest.approx(by["key"]["plugin"], abs=1e-12)
    assert by["bin"]["miller_madow"] == pytest.approx(by["key"]["miller_madow"], abs=1e-12)
    assert by["bin"]["miller_madow"] > 0.2
    assert abs(by["time"]["shuffle"]) < 0.1 * by["bin"]["shuffle"]
    assert by["time"]["plugin"] > by["time"]["miller_madow"]


def test_content_all_adds_the_piano_track(monkeypatch):
    class WithPiano(FakeDataset):
        def __init__(self):
            super().__init__(n=3)
            for item in self.items:
                y = torch.zeros(item["x"].shape[0], 128)
                y[:, 36] = 1  # one held bass note per tick
                item["y"] = y

    monkeypatch.setattr(mi, "_make_dataset", lambda *a: WithPiano())
    rows_in = {r["context"]: r for r in mi.mi_table(n_shuffles=1)}
    rows_all = {r["context"]: r for r in mi.mi_table(n_shuffles=1, content="all")}
    assert rows_all["bin"]["n_samples"] == rows_in["bin"]["n_samples"] + 3 * 128
    assert rows_all["bin"]["content"] == "all"
    with pytest.raises(DataError):
        mi.mi_table(content="piano")


def test_write_and_cli(fake_data, tmp_path, capsys):
    from stripes.cli import main

    out = tmp_path / "mi"
    assert main(["analyze", "mi", "--out", str(out), "--shuffles", "2", "--data-root", "R"]) == 0
    text = capsys.readouterr().out
    assert "BIN" in text and "1.0075" in text
    assert fake_data[0][3] == "R"
    with open(out / "mi.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["context"] for r in rows] == ["time", "rep", "key", "bin"]
    data = json.loads((out / "mi.json").read_text())
    assert data["unit"] == "nats"
    assert float(rows[3]["plugin"]) == pytest.approx(data["rows"][3]["plugin"])
    assert not list(out.glob("*.tmp"))


def test_json_has_no_nan_for_contexts_outside_p1(tmp_path):
    rows = [{"context": "melody", "plugin": 0.1, "p1": float("nan")}]
    _, json_path = mi.write_mi_table(rows, tmp_path)
    assert json.loads(json_path.read_text())["rows"][0]["p1"] is None


def test_cli_toy_wiring(monkeypatch, tmp_path, capsys):
    import sys
    import types

    from stripes.cli import main

    calls = []
    fake = types.ModuleType("stripes.analysis.toy")
    fake.run_toy_study = lambda out_dir, seed: calls.append((out_dir, seed))
    monkeypatch.setitem(sys.modules, "stripes.analysis.toy", fake)
    assert main(["analyze", "toy", "--out", str(tmp_path), "--seed", "3"]) == 0
    assert calls == [(str(tmp_path), 3)]


class PackedFake:
    """Per-tick arrays in the layout of HarmonizationDataset.arrays(), with items built from them directly."""

    context_dim = 15

    def __init__(self, seed: int = 0, t: int = 64):
        rng = np.random.default_rng(seed)
        n_ticks = 400
        self.t = t
        self.roll = rng.random((n_ticks, 384)) < 0.02
        self.chroma = (rng.random((30, 12)) < 0.3).astype(np.uint8)
        self.chord = rng.integers(0, 30, n_ticks // 16).repeat(16)
        self.key = (self.chord * 7 + 3) % 11
        self.starts = np.array([0, 50, 130, 300])

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        s, t = int(self.starts[i]), self.t
        ch = self.chord[s : s + t]
        pos = np.zeros((t, 15), np.float32)
        pos[:, 0] = np.arange(t)
        pos[:, 1] = [sorted(set(ch.tolist())).index(c) for c in ch]
        pos[:, 2] = self.key[s : s + t]
        pos[:, 3:] = self.chroma[ch]
        r = self.roll[s : s + t].astype(np.float32)
        return {
            "x": torch.from_numpy(r[:, :256]),
            "y": torch.from_numpy(r[:, 256:]),
            "pos": torch.from_numpy(pos),
        }


class PackedFakeBulk(PackedFake):
    def arrays(self):
        return {
            "starts": self.starts,
            "window_len": self.t,
            "roll": np.packbits(self.roll, axis=-1),
            "chord": self.chord,
            "key": self.key,
            "chroma": self.chroma,
            "song_id": np.zeros(4, int),
        }


@pytest.mark.parametrize("content", ["input", "all"])
def test_bulk_arrays_path_equals_item_path(monkeypatch, content):
    pytest.importorskip("stripes.data.contexts")
    monkeypatch.setattr(mi, "_make_dataset", lambda *a: PackedFake())
    by_item = mi.mi_table(n_shuffles=1, content=content)
    monkeypatch.setattr(mi, "_make_dataset", lambda *a: PackedFakeBulk())
    bulk = mi.mi_table(n_shuffles=1, content=content)
    for a, b in zip(by_item, bulk, strict=True):
        assert a == b


@pytest.mark.slow
def test_mi_table_on_pop909_reproduces_p1_ranking(shared_data, tmp_path):
    """Real data (prepares a cache in tmp_path, ~15 s): BIN >> KEY, REP > TIME ~ 0 (P1 Table I ranking)."""
    pytest.importorskip("stripes.data")
    rows = {r["context"]: r for r in mi.mi_table(shared_data, tmp_path / "cache", n_shuffles=2)}
    assert rows["bin"]["n_windows"] > 3000
    assert abs(rows["time"]["shuffle"]) < 0.005
    assert rows["bin"]["shuffle"] > 5 * max(rows["key"]["shuffle"], rows["rep"]["shuffle"])
    assert min(rows["key"]["shuffle"], rows["rep"]["shuffle"]) > 2 * abs(rows["time"]["shuffle"])


def test_conditional_mi_known_values():
    from stripes.analysis.mi import conditional_mi, mi_plugin

    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 20000)
    y = rng.integers(0, 2, 20000)
    x = y ^ z  # X tells nothing about Y alone, everything once Z is known
    assert mi_plugin(x, y) < 1e-3
    r = conditional_mi(x, y, z)
    assert r["plugin"] == pytest.approx(np.log(2), abs=1e-3)
    assert r["shuffle"] == pytest.approx(np.log(2), abs=2e-3) and r["n"] == 20000
    # y a function of z: nothing beyond z, exactly, and the shuffle null is the same table
    red = conditional_mi(rng.integers(0, 3, 5000), z[:5000] * 2, z[:5000])
    assert red["plugin"] == pytest.approx(0.0, abs=1e-12) and red["shuffle"] == pytest.approx(0.0, abs=1e-12)
    # many z values and independent x, y: the plug-in is biased upwards, the within-z shuffle removes it
    zz = rng.integers(0, 200, 5000)
    ind = conditional_mi(rng.integers(0, 12, 5000), rng.integers(0, 12, 5000), zz)
    assert ind["plugin"] > 0.1 and abs(ind["shuffle"]) < 0.02
    with pytest.raises(DataError, match="same non-zero length"):
        conditional_mi(x, y, z[:-1])
