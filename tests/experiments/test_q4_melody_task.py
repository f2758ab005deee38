"""Question 4 (does the ranking transfer to a second task?): the melody-from-piano task on the windows of
melody harmonization, its config and model, the monophonic decoding, the sweep and its report, and
``stripes reproduce --tables q4-melody-task`` end to end (fakes, then the smoke profile on real data)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import stripes.experiments.sweep as sw
from stripes.cli import main
from stripes.config import RunConfig, load_run_config
from stripes.errors import ConfigError, DataError
from stripes.experiments.evaluate import decode, select_binarization
from stripes.experiments.report import method_label
from stripes.experiments.reproduce import reproduce
from stripes.experiments.run import config_hash
from stripes.metrics.binarize import binarize_mono
from stripes.models import build_model
from stripes.train.data import make_dataset

TABLE = "q4-melody-task"
REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "results"

# ------------------------------------------------------------------------------------- config and sweep


def test_task_melody_config() -> None:
    cfg = load_run_config("cpu", overrides={"task": "melody"})
    assert cfg.task == "melody" and cfg.to_dict()["task"] == "melody"
    assert "task" not in load_run_config("cpu").to_dict()  # the default stays out of the identity
    assert config_hash(cfg) != config_hash(load_run_config("cpu"))
    with pytest.raises(ConfigError, match="task must be one of"):
        load_run_config("cpu", overrides={"task": "melodies"})
    for bad in ({"data.bridge_dropout": 0.5}, {"data.transpose": [-2, 2]}):
        with pytest.raises(ConfigError, match="task=melody"):
            load_run_config("cpu", overrides={"task": "melody", **bad})
    with pytest.raises(ConfigError, match="unknown config key"):
        load_run_config("cpu", overrides={"task": "melody", "data.melody_input": "piano"})


def test_committed_run_identities_are_unchanged() -> None:
    """Every committed run record still hashes to its folder name, and P1 Table III's sweep still names
    exactly the committed cpu runs: adding the task changed no existing run's identity."""
    records = [f for f in sorted(COMMITTED.glob("*/runs/*/config.json"))
               if re.search(r"_[0-9a-f]{8}$", f.parent.name)]  # sweep runs (others are named by hand)
    assert len(records) >= 200
    for f in records:
        cfg = RunConfig.from_dict(json.loads(f.read_text()))
        assert config_hash(cfg) == f.parent.name.rsplit("_", 1)[-1], f
    t3 = {s.name for s in sw.expand(sw.load_sweep("p1-table3"), "cpu")}
    assert t3 == {p.name for p in (COMMITTED / "p1-table3-cpu" / "runs").iterdir() if p.is_dir()}


def test_sweep_is_table3_grid_on_the_melody_task() -> None:
    specs = sw.expand(sw.load_sweep(TABLE), "cpu")
    assert len(specs) == 36 and {s.seed for s in specs} == {0, 1, 2}
    assert all(s.bars == [16, 64] and s.profile == "cpu" for s in specs)
    harm = {(s.label, s.context, s.seed): s for s in sw.expand(sw.load_sweep("p1-table3"), "cpu", 3)}
    assert {(s.label, s.context, s.seed) for s in specs} == set(harm)
    assert {(s.label, s.context) for s in specs if s.label.startswith("RoPE(")} == {
        ("RoPE(C)", "time"), ("RoPE(C)", "key"), ("RoPE(C)", "bin"), ("RoPE(B)", "rep")}
    for s in specs:
        h = harm[(s.label, s.context, s.seed)]
        mine, theirs = s.resolve_config().to_dict(), h.resolve_config().to_dict()
        assert method_label(mine) == s.label  # the report names the cell as the sweep does
        assert mine.pop("task") == "melody" and mine == theirs  # the task is the only difference
        assert s.name != h.name and s.name.rsplit("_", 1)[0] == h.name.rsplit("_", 1)[0]
    assert len(sw.expand(sw.load_sweep(TABLE), "smoke")) == 12


# ---------------------------------------------------------------------------------------- model, decoding


def test_model_reads_the_piano_and_writes_the_melody() -> None:
    cfg = load_run_config("smoke", overrides={"task": "melody"})
    model = build_model(cfg, 12)
    assert model.in_proj.in_features == 128 and model.out_proj.out_features == 128
    assert build_model(load_run_config("smoke"), 12).in_proj.in_features == 256
    out = model(torch.zeros(2, 32, 128), torch.zeros(2, 32, 12))
    assert out.shape == (2, 32, 128)


def test_synthetic_melody_dataset_swaps_the_tracks() -> None:
    harm = make_dataset(load_run_config("smoke", overrides={"data.source": "synthetic"}), "val", 16)
    mel = make_dataset(load_run_config("smoke", overrides={"data.source": "synthetic", "task": "melody"}),
                       "val", 16)
    assert len(mel) == len(harm) and mel.window_len == harm.window_len and mel.context_dim == harm.context_dim
    h, m = harm[1], mel[1]
    assert torch.equal(m["x"], h["y"]) and torch.equal(m["y"], h["x"][:, :128])
    assert torch.equal(m["pos"], h["pos"]) and m["song_id"] == h["song_id"]


def test_monophonic_decoding() -> None:
    rng = np.random.default_rng(0)
    probs = rng.random((3, 64, 128)) * 0.7
    y = binarize_mono(probs, 0.3)
    assert y.shape == probs.shape and y.sum(-1).max() == 1
    assert np.array_equal(y.any(-1), probs.max(-1) >= 0.3)
    assert np.array_equal(np.argmax(probs, -1)[y.any(-1)], np.argmax(y, -1)[y.any(-1)])
    tie = np.zeros((4, 128))
    tie[:, [40, 50]] = 0.8
    assert np.flatnonzero(binarize_mono(tie, 0.5).any(0)).tolist() == [40]  # a tie keeps one (the lowest)
    gap = np.zeros((10, 128))
    gap[[0, 1, 2, 5, 6], 60] = 0.9
    assert binarize_mono(gap, 0.5, merge=2)[:7, 60].all() and not binarize_mono(gap, 0.5)[3, 60]
    assert np.array_equal(decode(tie, 0.5, None, True), binarize_mono(tie, 0.5))
    assert decode(tie, 0.5).sum() == 8


def _melody_windows(n: int = 6) -> list[dict]:
    """Monophonic targets; the model's second guess (a fifth above) passes every threshold below 0.55."""
    out = []
    for k in range(n):
        target = np.zeros((64, 128), bool)
        target[np.arange(64), 60 + (np.arange(64) // 16 + k) % 5] = True
        probs = np.where(target, 0.7, 0.01)
        probs[:, 7:] = np.maximum(probs[:, 7:], 0.55 * target[:, :-7])
        out.append({"probs": probs, "target": target})
    return out


def test_binarization_grid_of_a_melody_includes_the_monophonic_decoding() -> None:
    wins = _melody_windows()
    poly = select_binarization(wins, [0.2, 0.5, 0.6], [None, 2])
    assert "mono" not in poly  # a harmonization run's metrics file is as before
    assert set(poly["grid"]) == {f"{t}|{m}" for t in (0.2, 0.5, 0.6) for m in (None, 2)}
    both = select_binarization(wins, [0.2, 0.5], [None, 2], mono=True)
    assert both["mono"] is True and both["method"] == "mono" and both["threshold"] == 0.2
    assert both["score"] == pytest.approx(1.0) and both["grid"]["0.2|None"] < 1.0
    assert set(both["grid"]) == {f"{t}|{m}{s}" for t in (0.2, 0.5) for m in (None, 2) for s in ("", "|mono")}


# -------------------------------------------------------------------------------------------- the report


def _melody_run(root: Path, pe: str, ctx: str, seed: int, bce: float, f1: float,
                variant: str | None = None, task: str = "melody") -> Path:
    from test_report import make_run  # test_report's fake run folders

    run = make_run(root, pe, ctx, seed, {"bce": bce, "cs": 30.0 - 100 * bce, "onset_f1": f1},
                   {"bce": bce - 0.001, "cs": 31.0 - 100 * bce, "onset_f1": f1}, variant=variant,
                   val_bce=bce)
    cfg = json.loads((run / "config.json").read_text())
    if task != "harmonize":
        cfg["task"] = task
    (run / "config.json").write_text(json.dumps(cfg))
    return run


# BCE per (context, method): BIN well ahead of TIME everywhere; RoPEPool ahead of RoPE on BIN, behind on KEY
BCE = {("bin", "ropepool"): 0.040, ("bin", "fstripe1"): 0.044, ("bin", "rope"): 0.046,
       ("key", "ropepool"): 0.052, ("key", "fstripe1"): 0.051, ("key", "rope"): 0.050,
       ("rep", "ropepool"): 0.053, ("rep", "fstripe1"): 0.053, ("rep", "rope"): 0.053,
       ("time", "ropepool"): 0.055, ("time", "fstripe1"): 0.0552, ("time", "rope"): 0.0551}


def _melody_grid(root: Path) -> None:
    for (ctx, pe), bce in BCE.items():
        for seed, e in enumerate((-0.0002, 0.0, 0.0002)):
            _melody_run(root, pe, ctx, seed, bce + e, 0.3 - bce, variant=None if pe != "rope" else
                        ("B" if ctx == "rep" else "C"))


def test_report_of_the_melody_task(tmp_path: Path) -> None:
    from stripes.experiments.report import make_report

    _melody_grid(tmp_path / "runs")
    md = make_report([tmp_path / "runs"], tmp_path / "report", table=TABLE, copy_runs=True).read_text()
    assert "task **melody from the piano**" in md and "## Q4 melody task, grid of P1 Table III" in md
    assert "| P1 |" not in md  # harmonization's published rows do not belong beside the melody task
    # the paper's columns as for harmonization (unscaled): make_run's CS 30 - 100 BCE, SSMD 14, GS 20, NDD 90
    assert "| BIN | RoPEPool | ours | 3 | **26.00 ± 0.02*** | 14.00 ± 0.00 | 20.00 ± 0.00 | 90.00 ± 0.00 |" \
        in md
    assert "## Claims of P1 on the melody task (question 4)" in md
    q4 = md[md.index("## Q4 — does the ranking transfer"):]
    q4 = q4[: q4.index("\n## ", 1)]
    assert "NDD** degenerates" in q4 and "monophonic decoding" in q4
    assert "**BIN ≫ TIME (test BCE at 16 and 64 bars, every method): *reproduced*.**" in q4
    row = re.search(r"\| RoPEPool \| 3/3 \| 4\.00 ± 0\.02 / 5\.50 ± 0\.02 \| (\S+) \|", q4)
    assert row and float(row.group(1)) < 1e-4  # the p-value of BIN vs TIME is in the table
    assert "| best on validation (RoPEPool / RoPEPool) |" in q4  # TIME: RoPEPool 0.055 < RoPE(C) 0.0551
    assert "**RoPEPool ≥ RoPE (test BCE at 16 and 64 bars, every context): *does not hold***" in q4
    assert "KEY: RoPEPool vs RoPE(C) BCE×100, 16" in q4
    assert re.search(r"\| KEY \(RoPE\(C\)\) \|.*reversed", q4)
    assert "RoPEPool ahead of RoPE on BIN (P1's claim, test BCE 16 and 64): *reproduced*" in q4
    order = "(BCE×100) — the harmonization order; contexts TIME, REP, KEY, BIN differ: p = "
    for line in ("- RoPEPool: BIN 4.000 < KEY 5.200 < REP 5.300 < TIME 5.500 ",
                 "- RoPE: BIN 4.600 < KEY 5.000 < REP 5.300 < TIME 5.510 "):
        m = re.search(re.escape(line + order) + r"(\S+) \(anova\)", q4)
        assert m and float(m.group(1)) < 1e-6, line  # seeds 0.02 apart, contexts 0.2 to 1.5 apart
    pooled = re.search(r"- Pooled over the methods, test BCE at 16 bars \(two-way ANOVA, context × method, "
                       r"3 seeds a cell\): context F\(3, 24\) = ([\d.]+), p = (\S+);", q4)
    # context means 0.4 to 1.2 BCE x100 apart against seeds 0.02 apart: F = 5923 by hand
    assert pooled and float(pooled.group(1)) > 1000 and float(pooled.group(2)) < 1e-20
    # the fake seeds shift every cell by the same offset (grand mean 5.061 x100, -/+ 0.02): as blocks they
    # explain all the spread
    assert ("- Pooled over the methods, test BCE at 16 bars (seeds as blocks, seed means 5.041 / 5.061 / "
            "5.081 BCE×100): not testable (the terms explain every value, no error is left).") in q4
    # BIN - TIME per (method, seed), x100: RoPE -0.91, F-StrIPE -1.12, RoPEPool -1.5 on every seed
    assert re.search(r"- BIN − TIME at 16 bars, paired by method and seed \(9 pairs\): -1\.17\d\d BCE×100 on "
                     r"average, first lower in 9, equal in 0; paired t-test p = ", q4)
    again = make_report([tmp_path / "report" / "runs"], tmp_path / "again", table=TABLE).read_text()
    assert again[again.index("## Q4 — does"):].split("\n## ")[0] == q4  # remade from the committed records


def test_pooled_context_effect_waits_for_the_whole_grid() -> None:
    from stripes.experiments.report.transfer import _pooled

    vals = {"BIN": [1.0, 1.1, 0.9], "KEY": [2.0, 2.1, 1.9], "REP": [2.0, 2.2, 1.8], "TIME": [3.0, 3.1, 2.9]}

    def cell(c: str, m: str, bars: int = 16) -> dict[int, float]:
        seeds = (0, 1) if (c, m) == ("TIME", "RoPEPool") else (0, 1, 2)  # one seed missing in one cell
        return {s: vals[c][s] for s in seeds}

    wait = ("- Pooled over the methods, 16 bars: needs the whole grid with the same seeds a cell "
            "(seeds per cell now: 2, 3).")
    assert _pooled(cell, ["RoPE", "RoPEPool"]) == [wait]

    def late(c: str, m: str, bars: int = 16) -> dict[int, float]:  # a cell's 64-bar evaluation is missing
        return cell(c, m, bars) if bars == 64 else dict(enumerate(vals[c]))

    lines = _pooled(late, ["RoPE", "RoPEPool"])  # the 16-bar lines are kept, the 64-bar ones wait
    assert len(lines) == 6 and lines[-1] == wait.replace("16 bars", "64 bars")
    full = _pooled(lambda c, m, bars=16: dict(enumerate(vals[c])), ["RoPE", "RoPEPool"])
    assert len(full) == 10 and "context F(3, 16) = " in full[0]
    assert "method F(1, 16) = 0.00, p = 1;" in full[0]
    # seeds as blocks: KEY and REP differ in spread (0.1 vs 0.2 a seed), so an error is left, on 14 df
    # seed means over the 8 cells: (1 + 2 + 2 + 3) / 4 = 2.0, 2.125, 1.875 -> x100
    assert "seeds as blocks, seed means 200.000 / 212.500 / 187.500 BCE×100): context F(3, 14) = " in full[1]
    assert "seed F(2, 14) = " in full[1]
    # the BIN - TIME contrast against the blocked error: -2.0 over se = sqrt(MSE * 2 / (2 methods x 3 seeds))
    from stripes.analysis.stats import anova_two_way

    r = anova_two_way({(c, m): vals[c] for c in vals for m in ("RoPE", "RoPEPool")}, blocks=True)
    t = -2.0 / np.sqrt(r["mse"] * 2 / 6)
    assert full[2].startswith("- BIN − TIME at 16 bars against the blocked error (contrast of the ANOVA "
                              f"above): -200.0000 BCE×100, t(14) = {t:.2f}, p = ")
    # BIN - TIME is -2.0 (-200 x100) on every (method, seed): a constant difference defines no paired test
    assert full[3] == ("- BIN − TIME at 16 bars, paired by method and seed (6 pairs): -200.0000 BCE×100 on "
                       "average, first lower in 6, equal in 0; no paired test (the same difference in every "
                       "pair).")
    assert full[4] == ("- RoPEPool − RoPE at 16 bars, paired by context and seed (12 pairs): +0.0000 "
                       "BCE×100 on average, first lower in 0, equal in 12; no paired test (the same "
                       "difference in every pair).")


def test_report_refuses_to_pool_two_tasks(tmp_path: Path) -> None:
    from stripes.experiments.report import make_report

    _melody_run(tmp_path / "runs", "ropepool", "bin", 0, 0.04, 0.2)
    _melody_run(tmp_path / "runs", "ropepool", "time", 0, 0.05, 0.1, task="harmonize")
    with pytest.raises(DataError, match="several tasks"):
        make_report([tmp_path / "runs"], tmp_path / "r")
    harm = make_report([tmp_path / "runs" / "ropepool_time_s0_lr0.001"], tmp_path / "h").read_text()
    assert "## Q4" not in harm and "melody from the piano" not in harm


def test_reproduce_q4_with_fakes_is_resumable(tmp_path: Path, fake_runner) -> None:  # noqa: ANN001
    out = tmp_path / "q4"
    argv = ["reproduce", "--profile", "cpu", "--tables", TABLE, "--no-mi", "--out", str(out)]
    assert main(argv) == 0
    runs = [p for p in (out / "runs").iterdir() if (p / "config.json").is_file()]
    assert len(runs) == 36 and all((r / sw.DONE).is_file() for r in runs)
    assert all(json.loads((r / "config.json").read_text())["task"] == "melody" for r in runs)
    md = (out / "report" / "report.md").read_text()
    assert "## Q4 — does the ranking transfer" in md and "BIN ≫ TIME" in md
    n = len(fake_runner.calls(out / "runs"))
    assert main(argv) == 0  # resumable: nothing runs again
    assert len(fake_runner.calls(out / "runs")) == n


# ------------------------------------------------------------------------------- real data (4 songs)

@pytest.mark.parametrize("context", ["bin", "time", "rep", "key"])
def test_melody_windows_are_the_harmonization_windows(tiny_root: Path, tmp_path: Path, context: str) -> None:
    cache = tmp_path / "cache"
    harm_cfg = load_run_config("smoke", overrides={"context": context})
    mel_cfg = load_run_config("smoke", overrides={"context": context, "task": "melody"})
    for split, bars in (("train", 16), ("val", 16), ("test", 16), ("test", 64)):
        harm = make_dataset(harm_cfg, split, bars, tiny_root, cache)
        files = sorted(p.relative_to(cache) for p in cache.rglob("*"))
        mel = make_dataset(mel_cfg, split, bars, tiny_root, cache)
        assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == files  # no second copy of anything
        assert len(mel) == len(harm) > 0 and mel.window_len == harm.window_len == 64 * bars
        assert np.array_equal(mel.windows, harm.windows) and mel.manifest_hash == harm.manifest_hash
        assert mel.context_dim == harm.context_dim == (12 if context == "bin" else 1)
        for i in range(len(harm)):
            h, m = harm[i], mel[i]
            assert (m["song_id"], m["start"]) == (h["song_id"], h["start"])
            assert m["x"].shape == m["y"].shape == (64 * bars, 128) and h["x"].shape == (64 * bars, 256)
            assert torch.equal(m["x"], h["y"]) and torch.equal(m["y"], h["x"][:, :128])  # roles swapped
            assert torch.equal(m["pos"], h["pos"])
            if i == 0:
                assert m["y"].sum() > 0 and m["x"].sum() > 0  # the window plays
                for key, val in harm.labels(i).items():
                    assert np.array_equal(mel.labels(i)[key], val)


def test_reproduce_q4_smoke_end_to_end(tiny_root: Path, tmp_path: Path) -> None:
    """Real (smoke) training and evaluation of the whole grid on the melody task, and its report."""
    out = tmp_path / "q4"
    res = reproduce([TABLE], profile="smoke", out=out, data_root=tiny_root, cache_dir=tmp_path / "cache",
                    mi=False, log=lambda s: None)
    assert not res["failed"] and not res["paused"] and res["runs"] == 12
    runs = sorted(p for p in (out / "runs").iterdir() if p.is_dir())
    assert len(runs) == 12
    for run in runs:
        assert (run / sw.DONE).is_file() and json.loads((run / "config.json").read_text())["task"] == "melody"
        for bars in (16, 64):
            m = json.loads((run / f"metrics_{bars}.json").read_text())
            assert m["bce"] > 0 and "mono" in m["selected"] and len(m["bce_per_position"]) == 64 * bars
            assert any(k.endswith("|mono") for k in m["validation"]["grid"])
    import symusic

    mid = next((runs[0] / "examples_16").glob("*.mid"))
    tracks = {t.name: len(t.notes) for t in symusic.Score(str(mid)).tracks}
    assert tracks["PIANO"] > 0 and tracks.get("BRIDGE", 0) == 0  # the given piano; no bridge (empty: dropped)
    md = Path(res["report"]).read_text()
    assert "## Q4 — does the ranking transfer" in md and "| P1 |" not in md
    assert re.search(r"\*\*BIN ≫ TIME \(test BCE at 16 and 64 bars, every method\): \*[a-z ]+", md)
    before = {r.name: (r / sw.DONE).read_text() for r in runs}
    again = reproduce([TABLE], profile="smoke", out=out, data_root=tiny_root, cache_dir=tmp_path / "cache",
                      mi=False, log=lambda s: None)
    assert again["runs"] == 12 and {r.name: (r / sw.DONE).read_text() for r in runs} == before


def test_a_ge_claim_with_nothing_separable_is_only_not_contradicted() -> None:
    from stripes.experiments.report.transfer import _ge_verdict

    assert _ge_verdict(behind=0, ahead=0, noise=8) == "not contradicted, nothing separable"
    assert _ge_verdict(behind=0, ahead=2, noise=6) == "holds"
    assert _ge_verdict(behind=1, ahead=5, noise=2) == "does not hold"
