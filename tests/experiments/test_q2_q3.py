"""Questions 2 (learned contexts) and 3 (REP and length generalisation): sweep expansion, the per-bar BCE
file (oracle: it averages back to the window BCE), the REP analysis on synthetic labels, the report
sections, and both tables end to end at the smoke profile on real data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import stripes.experiments.sweep as sw
from stripes.analysis import rep_generalisation as rg
from stripes.experiments import learned_context
from stripes.experiments.evaluate import bar_means
from stripes.experiments.reproduce import reproduce

Q2, Q3 = "q2-learned-context", "q3-rep-generalisation"
ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------------------ sweeps


def test_q2_sweep_reuses_the_bin_runs_of_p1_table3() -> None:
    specs = sw.expand(sw.load_sweep(Q2), "cpu")
    assert len(specs) == 24 and {s.seed for s in specs} == {0, 1, 2}
    learners = {s.resolve_config().model.context_learner for s in specs}
    assert learners == {"none", "linear", "mlp", "chord_embedding"}
    t3 = {s.name for s in sw.expand(sw.load_sweep("p1-table3"), "cpu", 3)
          if s.context == "bin" and s.label in ("RoPEPool", "RoPE(C)")}
    plain = {s.name for s in specs if s.resolve_config().model.context_learner == "none"}
    assert plain == t3  # same names: --reuse docs/results/p1-table3-cpu skips them
    committed = set(os.listdir(ROOT / "docs" / "results" / "p1-table3-cpu" / "runs"))
    assert plain <= committed
    assert len({s.name for s in specs}) == 24  # every learner its own run
    assert [s.label for s in sw.filter_methods(specs, "RoPEPool+mlp")] == ["RoPEPool+mlp"] * 3


def test_q3_sweep_runs_are_new_and_write_positions() -> None:
    specs = sw.expand(sw.load_sweep(Q3), "cpu")
    cells = {(s.label, s.context) for s in specs}
    assert cells == {("RoPE(B)", "rep"), ("RoPE(B)", "time"), ("RoPEPool", "rep"), ("RoPE(C)", "time")}
    assert len(specs) == 12 and all(s.resolve_config().eval.positions for s in specs)
    t3 = {s.name for s in sw.expand(sw.load_sweep("p1-table3"), "cpu", 5)}
    assert not {s.name for s in specs} & t3  # distinct names: fresh runs with checkpoints and positions
    assert all(s.bars == [16, 64] for s in specs)


# ------------------------------------------------------------------------------------ per-position BCE


def test_bar_means_average_back_to_the_window_bce() -> None:
    rng = np.random.default_rng(0)
    b = rng.random(64 * 5)
    m = bar_means(b)
    assert m.shape == (5,) and np.isclose(m.mean(), b.mean())
    np.testing.assert_allclose(m, b.reshape(5, 64).mean(1))
    part = bar_means(b[:100])  # a partial last bar is the mean of its ticks
    np.testing.assert_allclose(part, [b[:64].mean(), b[64:100].mean()])


# --------------------------------------------------------------------------------- REP analysis (synthetic)


def test_value_summary_on_synthetic_windows() -> None:
    train = [np.repeat(np.arange(4), 4), np.repeat([0, 1, 2, 1], 4)]  # values 0..3
    test = [np.repeat(np.arange(8), 4)]  # values 0..7: 4..7 never seen
    s = rg.value_summary(train, test, quantile=100.0)
    assert s["v_max_train"] == 3 and s["v_quantile_train"] == 3.0 and s["v_max_test"] == 7
    assert s["share_ticks_above_max"] == pytest.approx(0.5) and s["share_windows_above_quantile"] == 1.0
    assert sum(s["hist_train"]) == pytest.approx(1.0) and len(s["hist_test"]) == 8
    d = rg.distance_histogram([np.array([0, 0, 2])])  # ordered pairs: (0,0)x4 +(2,2)x1, |0-2| x4
    np.testing.assert_allclose(d, [5, 0, 4])
    assert s["median_distance_test"] > s["median_distance_train"]
    np.testing.assert_allclose(rg.rare_share_per_bar(np.r_[np.zeros(64), np.full(32, 9), np.zeros(32)], 3),
                               [0.0, 0.5])


def test_paired_excess_test_finds_a_planted_effect() -> None:
    rng = np.random.default_rng(1)
    w, b = 40, 64
    rare = rng.random((w, b)) < 0.2
    control = 0.06 + 0.005 * rng.standard_normal((w, b))
    hurt = control + 0.001 + 0.004 * rare + 0.0005 * rng.standard_normal((w, b))
    t = rg.paired_excess_test(hurt, control, rare)
    assert t["n_windows"] == w and t["mean_diff"] == pytest.approx(0.004, abs=5e-4) and t["p"] < 1e-6
    assert t["ci95"][0] < t["mean_diff"] < t["ci95"][1] and t["share_positive"] > 0.9
    null = rg.paired_excess_test(control + 0.001 + 0.0005 * rng.standard_normal((w, b)), control, rare)
    assert abs(null["mean_diff"]) < 5e-4 and null["p"] > 1e-3


def test_matched_kernel_is_the_mean_cosine_of_the_pe() -> None:
    import torch

    from stripes.pe import build_pe

    pe = build_pe("rope", head_dim=8, n_heads=2, context_dim=1, variant="B")
    d = np.arange(6)
    k = rg.matched_kernel(pe, d)
    f = pe.freqs[..., 0].double().numpy()  # (H, D/2)
    np.testing.assert_allclose(k, np.cos(f[:, :, None] * d).mean(1), atol=1e-6)
    # the same as the PE's own closed form with q = k (content matched), per head
    q = torch.randn(1, 1, 2, 8, dtype=torch.float64)
    q = q / q.view(1, 1, 2, 4, 2).norm(dim=-1).repeat_interleave(2, -1)  # unit pairs
    pos = torch.tensor([[[0.0], [3.0]]], dtype=torch.float64)
    s = pe.kernel_scores(q.expand(1, 2, 2, 8).double(), q.expand(1, 2, 2, 8).double(), pos)
    np.testing.assert_allclose(s[0, :, 1, 0].numpy() / 4, k[:, 3], atol=1e-5)
    summ = rg.kernel_summary(k, d, 2)
    assert summ["kernel_mean"][0] == pytest.approx(1.0) and summ["range_beyond"] is not None
    alias = rg.kernel_summary(np.cos(np.arange(10.0) * 2 * np.pi / 4)[None], np.arange(10), 2)
    assert alias["first_return"] == 4.0  # period 4: falls away, back at distance 4
    assert rg.kernel_summary(np.exp(-np.arange(6.0))[None], np.arange(6), 2)["first_return"] is None


# ---------------------------------------------------------------------------------------------- report


def _positions_run(root: Path, pe: str, ctx: str, seed: int, curve: np.ndarray, variant: str | None = None,
                   windows: int = 3) -> Path:
    from test_report import make_run

    run = make_run(root, pe, ctx, seed, {"bce": float(curve.mean())}, {"bce": float(curve.mean())},
                   variant=variant)
    cfg = json.loads((run / "config.json").read_text())
    cfg["eval"]["positions"] = True
    (run / "config.json").write_text(json.dumps(cfg))
    mat = np.stack([curve + 0.001 * i for i in range(windows)])
    (run / "metrics_64_positions.json").write_text(json.dumps({
        "bars": 64, "bce_per_bar": mat.mean(0).tolist(), "windows": [[1, 64 * i] for i in range(windows)],
        "bce_window_bar": mat.tolist()}))
    return run


def test_report_q3_section_curves_and_export(tmp_path: Path) -> None:
    from stripes.experiments.report import make_report

    runs = tmp_path / "runs"
    bars = np.arange(64)
    for seed in range(3):
        _positions_run(runs, "rope", "rep", seed, 0.05 + (0.0002 + 1e-5 * seed) * bars, variant="B")
        _positions_run(runs, "rope", "time", seed, 0.06 - 0.0001 * bars + 0.0001 * seed, variant="B")
    md = make_report([runs], tmp_path / "report", table=Q3, copy_runs=True).read_text()
    q3 = md[md.index("## Q3"):]
    assert "| REP | RoPE(B) | 3 |" in q3 and "| TIME | RoPE(B) | 3 |" in q3
    rep_row = next(ln for ln in q3.splitlines() if ln.startswith("| REP | RoPE(B)"))
    assert float(rep_row.split("|")[6].split("±")[0]) > 0  # later bars worse on REP (planted)
    data = json.loads((tmp_path / "report" / "q3_bce_per_bar_64.json").read_text())
    assert len(data["curves"]["RoPE(B) on REP"]["bce_per_bar"]) == 64
    assert (tmp_path / "report" / "q3_bce_per_bar_64.png").stat().st_size > 1000
    exported = list((tmp_path / "report" / "runs").glob("*/metrics_64_positions.json"))
    assert len(exported) == 6  # the commit-ready records keep the positions
    assert "## Q2" not in md


def test_report_q2_section(tmp_path: Path) -> None:
    from test_report import make_run

    from stripes.experiments.report import make_report

    runs = tmp_path / "runs"
    for seed in range(3):
        make_run(runs, "ropepool", "bin", seed, {"bce": 0.0510 + 0.0001 * seed}, {"bce": 0.05})
        run = make_run(runs / "lin", "ropepool", "bin", seed, {"bce": 0.0490 + 0.00015 * seed},
                       {"bce": 0.048})
        cfg = json.loads((run / "config.json").read_text())
        cfg["model"]["context_learner"] = "linear"
        (run / "config.json").write_text(json.dumps(cfg))
    md = make_report([runs], tmp_path / "report", table=Q2).read_text()
    q2 = md[md.index("## Q2"):]
    assert "### RoPEPool on BIN" in q2
    lin = next(ln for ln in q2.splitlines() if ln.startswith("| linear |"))
    assert "‡" in lin.split("|")[3] and "156 (156) /" in lin  # better BCE, p < 0.05; W 12x12 + b 12
    # paired by seed: differences -0.20, -0.195, -0.19 (x100) -> t = -67.5 on 2 df, p = 2e-4
    assert "; paired 2e-04)" in lin.split("|")[3]
    assert next(ln for ln in q2.splitlines() if ln.startswith("| none (hand-made) |"))


# ------------------------------------------------------------------------------- smoke profile, real data


def test_reproduce_q2_and_q3_smoke_end_to_end(tiny_root: Path, tmp_path: Path) -> None:
    """Real (smoke) training and evaluation of one learned context and of the Q3 cells, the positions
    files, the REP analysis and both report sections."""
    out = tmp_path / "q23"
    res = reproduce([Q2], profile="smoke", out=out / "q2", n_seeds=1, methods="RoPEPool,RoPEPool+linear",
                    data_root=tiny_root, cache_dir=tmp_path / "cache", log=lambda s: None, mi=False)
    assert not res["failed"] and res["runs"] == 2
    md = Path(res["report"]).read_text()
    assert "## Q2" in md and "| linear | 1 |" in md
    geo = out / "q2_geometry.json"
    assert learned_context.main([str(out / "q2" / "runs"), "--out", str(geo), "--data-root", str(tiny_root),
                                 "--cache-dir", str(tmp_path / "cache")]) == 0
    rows = json.loads(geo.read_text())["runs"]
    assert [r["learner"] for r in rows] == ["linear"]  # the plain RoPEPool run has no learner
    assert rows[0]["relative_move"] > 0 and -1 <= rows[0]["distance_rank_corr"] <= 1
    res = reproduce([Q3], profile="smoke", out=out / "q3", n_seeds=1, methods="RoPE(B)",
                    data_root=tiny_root, cache_dir=tmp_path / "cache", log=lambda s: None, mi=False)
    assert not res["failed"] and res["runs"] == 2
    for run in (out / "q3" / "runs").iterdir():
        if not run.is_dir():
            continue
        pos = json.loads((run / "metrics_64_positions.json").read_text())
        met = json.loads((run / "metrics_64.json").read_text())
        assert len(pos["bce_per_bar"]) == 64 and pos["n_windows"] == met["n_windows"]
        assert np.mean(pos["bce_per_bar"]) == pytest.approx(met["bce"], rel=1e-6)  # the oracle
        rows = np.asarray(pos["bce_window_bar"])
        assert rows.shape == (met["n_windows"], 64)
        assert (run / "checkpoints").is_dir()
    rep = out / "q3" / "report"
    res_json = json.loads((rep / rg.RESULT).read_text())
    assert set(res_json["tests"]) == {"REP RoPE(B)", "_control"}
    assert "REP RoPE(B)" in res_json["kernels"] and res_json["values"]["v_max_train"] > 0
    md = (rep / "report.md").read_text()
    assert "## Q3" in md and "**Hypothesis.**" in md and (rep / "q3_bce_per_bar_64.png").is_file()
