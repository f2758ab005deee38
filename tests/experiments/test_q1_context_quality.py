"""Question 1 (context quality against performance): the sweep, the MI of degraded contexts, the report
section, and ``stripes reproduce --tables q1-context-quality`` end to end (fakes, then the smoke profile)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

import stripes.experiments.sweep as sw
from stripes.cli import main
from stripes.config import load_run_config
from stripes.data import contexts as ctx
from stripes.experiments import context_quality as cq
from stripes.experiments.reproduce import reproduce

TABLE = "q1-context-quality"
RATES = (0.0, 0.25, 0.5, 0.75, 1.0)
CONTEXTS = ["bin", "bin_corrupt0.25", "bin_corrupt0.5", "bin_corrupt0.75", "bin_corrupt1",
            "bin_shift1", "bin_shift2", "bin_shift4"]

# ------------------------------------------------------------------------------------------------ sweep


def test_sweep_expands_to_the_q1_runs() -> None:
    specs = sw.expand(sw.load_sweep(TABLE), "cpu")
    assert len(specs) == 30 and {s.seed for s in specs} == {0, 1, 2}
    cells = {(s.label, s.context) for s in specs}
    assert cells == {("RoPEPool", c) for c in CONTEXTS} | {("RoPE(C)", "bin"), ("RoPE(C)", "bin_corrupt0.5")}
    for s in specs:
        rc = s.resolve_config()
        assert rc.profile == "cpu" and rc.train.lr == load_run_config("cpu").train.lr and s.bars == [16, 64]
        assert cq.is_bin_family(rc.context)
    # rate 0 is BIN itself: the same runs (folders) as P1 Table III's RoPEPool and RoPE(C) on BIN
    t3 = {s.name for s in sw.expand(sw.load_sweep("p1-table3"), "cpu", 3)
          if s.context == "bin" and s.label in ("RoPEPool", "RoPE(C)")}
    assert {s.name for s in specs if s.context == "bin"} == t3
    assert len(sw.expand(sw.load_sweep(TABLE), "smoke", 1)) == 10
    assert [s.context for s in sw.filter_contexts(specs, "bin_shift2")] == ["bin_shift2"] * 3


# ---------------------------------------------------------------------------------------------------- MI


class _FakeCache:
    """Prepared-cache look-alike of 6 songs whose melody plays tones of the current chord (train: 4)."""

    def __init__(self, seed: int = 0) -> None:
        from stripes.data.prepare import SONG_COLUMNS, SPLITS

        rng = np.random.default_rng(seed)
        self.chroma = np.zeros((13, 12), np.uint8)  # id 0 no chord, ids 1..12 major triads
        for root in range(12):
            self.chroma[root + 1, [root, (root + 4) % 12, (root + 7) % 12]] = 1
        ids, rolls, lengths = [], [], []
        for _ in range(6):
            spans = rng.integers(1, 13, size=120)
            beats = rng.integers(1, 5, size=120)
            chord = np.repeat(spans, beats * 16)
            pcs = np.array([np.flatnonzero(self.chroma[c])[rng.integers(0, 3)] for c in chord])
            roll = np.zeros((chord.size, 384), bool)
            roll[np.arange(chord.size), 60 + pcs] = True
            roll[np.arange(chord.size), 256 + 48 + chord - 1] = True  # the piano plays the chord's root
            ids.append(chord)
            rolls.append(np.packbits(roll, axis=-1))
            lengths.append(chord.size)
        self.chord = np.concatenate(ids).astype(np.int16)
        self.roll = np.concatenate(rolls)
        songs = np.zeros((6, len(SONG_COLUMNS)), np.int64)
        songs[:, SONG_COLUMNS.index("song_id")] = np.arange(100, 106)
        songs[:, SONG_COLUMNS.index("offset")] = np.r_[0, np.cumsum(lengths)[:-1]]
        songs[:, SONG_COLUMNS.index("length")] = lengths
        songs[:, SONG_COLUMNS.index("split")] = [SPLITS.index(s) for s in ["train"] * 4 + ["val", "test"]]
        self.songs = songs
        self.folder, self.hash = f"fake-q1-cache-{seed}", "fake"


class _FakeDataset:
    def __init__(self, split: str, contexts, bars: int = 16, **kw) -> None:  # noqa: ANN001, ANN003
        from stripes.data.prepare import SONG_COLUMNS, SPLITS

        self.data = _FakeCache()
        t = 256
        self.window_len = t
        rows = []
        for row, song in enumerate(self.data.songs):
            if song[SONG_COLUMNS.index("split")] == SPLITS.index(split):
                rows += [(row, s) for s in range(0, int(song[SONG_COLUMNS.index("length")]) - t + 1, t)]
        self.windows = np.array(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.windows)

    def arrays(self) -> dict:
        offsets = self.data.songs[self.windows[:, 0], 1]
        return {"starts": offsets + self.windows[:, 1], "window_len": self.window_len, "roll": self.data.roll,
                "chord": self.data.chord, "chroma": self.data.chroma}


def test_mi_decreases_with_the_corruption_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    import stripes.data

    monkeypatch.setattr(stripes.data, "HarmonizationDataset", _FakeDataset)
    names = ["bin"] + [ctx.variant_name("corrupt", r) for r in RATES] + ["bin_shift1", "bin_shift4"]
    rows = {r["context"]: r for r in cq.context_mi_rows(names)}
    assert rows["bin_corrupt0"]["plugin"] == rows["bin"]["plugin"]  # rate 0 is BIN
    mi = [rows[ctx.variant_name("corrupt", r)]["plugin"] for r in RATES]
    assert all(a > b for a, b in zip(mi, mi[1:])), mi  # strictly decreasing in the rate
    shuffled = [rows[ctx.variant_name("corrupt", r)]["shuffle"] for r in RATES]
    assert all(a > b for a, b in zip(shuffled, shuffled[1:])), shuffled
    assert mi[0] > 0.8 and mi[-1] < 0.1 * mi[0]  # content follows the chord; rate 1 leaves ~nothing
    assert rows["bin_shift4"]["plugin"] < rows["bin_shift1"]["plugin"] < rows["bin"]["plugin"]
    assert rows["bin"]["kind"] == "corrupt" and rows["bin_shift4"]["value"] == 4.0
    rows_t = cq.context_mi_rows(["bin", "bin_corrupt1"], content="target")  # the piano alone
    target = {r["context"]: r["plugin"] for r in rows_t}
    assert target["bin"] == pytest.approx(np.log(12), rel=0.02)  # the piano's root names the chord
    assert target["bin_corrupt1"] < 0.2 * target["bin"]
    with pytest.raises(Exception, match="content"):
        cq.context_mi_rows(["bin"], content="piano")


def test_context_mi_file_is_extended_not_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_rows(names, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        calls.append(list(names))
        return [{"context": n, "kind": cq.describe(n)[0], "value": cq.describe(n)[1], "plugin": 1.0 / (i + 1)}
                for i, n in enumerate(names)]

    monkeypatch.setattr(cq, "context_mi_rows", fake_rows)
    path = tmp_path / "mi" / cq.CONTEXT_MI
    cq.ensure_context_mi(path, ["bin", "bin_shift2"], log=lambda s: None)
    cq.ensure_context_mi(path, ["bin", "bin_shift2", "bin_corrupt0.5"], log=lambda s: None)
    assert calls == [["bin", "bin_shift2"], ["bin_corrupt0.5"]]
    assert [r["context"] for r in cq.load_context_mi(path)] == ["bin", "bin_corrupt0.5", "bin_shift2"]


def test_statistics_helpers() -> None:
    rho, p, n = cq.spearman([1, 2, 3, 4], [8, 6, 4, 2])
    assert rho == pytest.approx(-1.0) and p == pytest.approx(2 / 24) and n == 4  # exact: 2 of 4! orders
    x12 = np.arange(12.0)
    rho, p, n = cq.spearman(x12, x12 ** 2)  # beyond EXACT_MAX_N: scipy's p
    assert rho == pytest.approx(1.0) and p < 1e-6 and n == 12
    assert math.isnan(cq.spearman([1, 2], [1, 2])[0])
    x = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    y = np.where(x < 0.3, 10 - 20 * x, 4 - 2 * (x - 0.3))  # steep, then flat: bends at 0.3
    h = cq.hinge_fit(x, y)
    assert h is not None and h["break"] == pytest.approx(0.3) and h["explained"] > 0.99
    assert h["slope_below"] == pytest.approx(-20) and h["slope_above"] == pytest.approx(-2)
    assert cq.hinge_fit([0, 1, 2], [0, 1, 2]) is None
    assert cq.interpolate([0, 1], [0, 10], 0.25) == pytest.approx(2.5)
    assert math.isnan(cq.interpolate([0, 1], [0, 1], 2))


# ------------------------------------------------------------------------------------------------ report

MI = {"bin": 0.64, "bin_corrupt0.25": 0.34, "bin_corrupt0.5": 0.16, "bin_corrupt0.75": 0.05,
      "bin_corrupt1": 0.02, "bin_shift1": 0.52, "bin_shift2": 0.45, "bin_shift4": 0.40}


def _mi_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cq.write_context_mi([{"context": c, "kind": cq.describe(c)[0], "value": cq.describe(c)[1], "plugin": v,
                          "shuffle": v - 0.001} for c, v in MI.items()], path)


def test_report_relates_bce_and_cs_to_mi(tmp_path: Path) -> None:
    from test_report import make_run  # test_report's fake run folders

    from stripes.experiments.report import make_report

    runs = tmp_path / "runs"
    for c, mi in MI.items():
        for seed, e in enumerate((-0.001, 0.0, 0.001)):
            bce = 0.06 - 0.01 * mi + e * 0.1
            cs = 5 + 40 * mi + e * 100
            make_run(runs, "ropepool", c, seed, {"bce": bce, "cs": cs + 1}, {"bce": bce, "cs": cs + 1})
            if c in ("bin", "bin_corrupt0.5"):
                make_run(runs, "rope", c, seed, {"bce": bce + 0.004, "cs": cs}, {"bce": bce, "cs": cs},
                         variant="C")
    _mi_file(tmp_path / "mi" / cq.CONTEXT_MI)
    md = make_report([runs], tmp_path / "report", table=TABLE, copy_runs=True).read_text()
    q1 = md[md.index("## Q1"):]
    q1 = q1[: q1.index("\n## ", 1)]
    assert "| BIN_CORRUPT0.25 | corrupt 0.25 | 0.3400 | 0.3390 | 3: " in q1
    assert "| BIN | none (BIN) | 0.6400 |" in q1 and "| BIN_SHIFT4 | shift +4 beats | 0.4000 |" in q1
    bce_all = re.search(r"\| test BCE×100, 16 bars \| all \| (-?[\d.]+) \((\S+), 24\) "
                        r"\| (-?[\d.]+) \(\S+, 8\)", q1)
    assert bce_all and float(bce_all.group(1)) < -0.9 and float(bce_all.group(3)) == -1.0
    cs_all = re.search(r"\| CS@0.5, 16 bars \| all \| (-?[\d.]+) \(\S+, 24\)", q1)
    assert cs_all and float(cs_all.group(1)) > 0.9
    assert "| test BCE×100, 16 bars | corruption only |" in q1 and "nats (" in q1  # the bend
    assert "| BIN_CORRUPT1 | 3 % | 0 % | 0 % |" in q1 and "| BIN | 100 % | 100 % | 100 % |" in q1
    assert "shifted chords against the corruption curve" in q1
    assert "| BIN_SHIFT2 | test BCE×100, 16 bars |" in q1
    assert "### Methods on the same degraded context" in q1
    assert "| BIN_CORRUPT0.5 | test BCE×100, 16 bars |" in q1
    assert (tmp_path / "report" / "q1_context_quality.png").stat().st_size > 1000
    assert (tmp_path / "report" / cq.CONTEXT_MI).is_file()  # the commit-ready folder keeps its MI
    again = make_report([tmp_path / "report" / "runs"], tmp_path / "again", table=TABLE).read_text()
    q1_again = again[again.index("## Q1"):]
    assert [ln for ln in q1_again.splitlines() if ln.startswith("|")][:60] == \
        [ln for ln in q1.splitlines() if ln.startswith("|")]  # remade from the records: the same tables
    assert "from `../report/context_mi.json`" in q1_again


def test_report_without_variants_has_no_q1_section(tmp_path: Path) -> None:
    from test_report import make_run

    from stripes.experiments.report import make_report

    make_run(tmp_path / "runs", "ropepool", "bin", 0, {"bce": 0.05, "cs": 30.0})
    assert "## Q1" not in make_report([tmp_path / "runs"], tmp_path / "r").read_text()


# -------------------------------------------------------------------------------------------- reproduce


def test_reproduce_q1_with_fakes_runs_once_and_reports(tmp_path: Path, fake_runner,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import stripes.analysis.mi as mi_mod

    asked: list[list[str]] = []

    def fake_rows(names, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        asked.append(sorted(names))
        return [{"context": n, "kind": cq.describe(n)[0], "value": cq.describe(n)[1], "plugin": MI[n],
                 "shuffle": MI[n]} for n in names]

    monkeypatch.setattr(cq, "context_mi_rows", fake_rows)
    monkeypatch.setattr(mi_mod, "mi_table", lambda *a, **kw: [
        {"context": c, "plugin": v, "miller_madow": v, "shuffle": v, "p1": v, "n_samples": 1, "n_labels": 1}
        for c, v in (("time", 0.01), ("rep", 0.02), ("key", 0.05), ("bin", 0.64))])
    out = tmp_path / "q1"
    argv = ["reproduce", "--profile", "smoke", "--tables", TABLE, "--seeds", "3", "--out", str(out)]
    assert main(argv) == 0
    runs = [p for p in (out / "runs").iterdir() if (p / "config.json").is_file()]
    assert len(runs) == 30 and all((r / sw.DONE).is_file() for r in runs)
    assert asked == [sorted(CONTEXTS)]
    rep = out / "report"
    md = (rep / "report.md").read_text()
    assert "## Q1 — context quality against performance" in md and (rep / "q1_context_quality.png").is_file()
    assert (rep / cq.CONTEXT_MI).read_text() == (out / "mi" / cq.CONTEXT_MI).read_text()
    n = len(fake_runner.calls(out / "runs"))
    assert main(argv) == 0  # resumable: no run and no MI again
    assert len(fake_runner.calls(out / "runs")) == n and len(asked) == 1
    # a later session continues from the committed report folder: nothing reruns, the MI comes along
    second = tmp_path / "second"
    assert main(argv[:-1] + [str(second), "--reuse", str(rep)]) == 0
    assert not [c for c in fake_runner.calls(second / "runs") if c.get("what") == "train"]
    assert (second / "mi" / cq.CONTEXT_MI).read_text() == (rep / cq.CONTEXT_MI).read_text()
    assert len(asked) == 1


# ------------------------------------------------------------------------------- smoke profile, real data

def test_reproduce_q1_smoke_end_to_end(tiny_root: Path, tmp_path: Path) -> None:
    """Real (smoke) training and evaluation on degraded contexts, their MI, and the report."""
    out = tmp_path / "q1"
    res = reproduce([TABLE], profile="smoke", out=out, n_seeds=1, contexts="bin_corrupt0.5,bin_shift2",
                    data_root=tiny_root, cache_dir=tmp_path / "cache", log=lambda s: None)
    assert not res["failed"] and res["runs"] == 3  # RoPEPool on both, RoPE(C) on bin_corrupt0.5
    for run in (out / "runs").iterdir():
        if run.is_dir():
            assert (run / sw.DONE).is_file() and json.loads((run / "metrics_16.json").read_text())["bce"] > 0
    rows = {r["context"]: r for r in cq.load_context_mi(out / "mi" / cq.CONTEXT_MI)}
    assert set(rows) == {"bin_corrupt0.5", "bin_shift2"} and all(r["plugin"] > 0 for r in rows.values())
    md = Path(res["report"]).read_text()
    assert "| BIN_CORRUPT0.5 | corrupt 0.5 |" in md and "| BIN_SHIFT2 | shift +2 beats |" in md
