"""Question 3's per-bar curves also come from the per-tick BCE every metrics_64.json holds, so committed
records without a positions file (P1 Table III's) answer it; the positions file wins when both exist."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from stripes.experiments.report.generalisation import position_curves


def _run(tmp: Path, name: str, per_tick: list[float] | None, per_bar: list[float] | None) -> SimpleNamespace:
    d = tmp / name
    d.mkdir()
    if per_tick is not None:
        (d / "metrics_4.json").write_text(json.dumps({"bars": 4, "bce_per_position": per_tick}))
    if per_bar is not None:
        (d / "metrics_4_positions.json").write_text(json.dumps({"bce_per_bar": per_bar}))
    return SimpleNamespace(path=d)


def test_per_bar_means_of_per_tick_bce(tmp_path: Path):
    ticks = np.arange(4 * 8, dtype=float)  # 4 bars of 8 ticks
    a = _run(tmp_path, "a", ticks.tolist(), None)
    b = _run(tmp_path, "b", ticks.tolist(), [9.0, 9.0, 9.0, 9.0])  # the positions file wins
    c = _run(tmp_path, "c", None, None)  # nothing: skipped
    d = _run(tmp_path, "d", ticks[:30].tolist(), None)  # not a whole number of bars: skipped
    curves = position_curves({("REP", "RoPE(B)"): [a, b, c, d]}, bars=4)
    got = curves[("REP", "RoPE(B)")]
    assert len(got) == 2
    np.testing.assert_allclose(got[0], [3.5, 11.5, 19.5, 27.5])  # the mean of each bar's 8 ticks
    np.testing.assert_allclose(got[1], [9.0] * 4)
    assert position_curves({("REP", "RoPE(B)"): [c]}, bars=4) == {}


def test_bar_level_test_finds_a_planted_effect_and_not_a_null():
    from stripes.analysis.rep_generalisation import bar_level_test

    rng = np.random.default_rng(0)
    rare = rng.uniform(0.0, 0.4, 64)
    control = 6.0 + rng.normal(0, 0.05, 64)
    planted = control - 0.1 + 2.0 * rare  # excess grows with the rare-label share
    null = control - 0.1 + rng.normal(0, 0.05, 64)
    curves = {"RoPE(B) on REP": planted, "RoPEPool on REP": null, "RoPE(C) on TIME": control}
    res = bar_level_test(curves, ["RoPE(C) on TIME"], rare)
    assert res["RoPE(B) on REP"]["rho"] > 0.9 and res["RoPE(B) on REP"]["p"] < 1e-6
    assert abs(res["RoPEPool on REP"]["rho"]) < 0.3 and res["RoPEPool on REP"]["p"] > 0.05
    assert "RoPE(C) on TIME" not in res  # only REP cells are tested
    np.testing.assert_allclose(res["RoPE(B) on REP"]["excess_first"], (planted - control)[:16].mean())
