"""Smoke training and evaluation on the real POP909 subset (slow: prepares the data cache)."""

from __future__ import annotations

import json
import math

import pytest

from stripes.config import load_run_config


@pytest.mark.slow
def test_smoke_profile_on_pop909(shared_data, tmp_path) -> None:
    pytest.importorskip("stripes.data")
    from stripes.evaluate import evaluate_run
    from stripes.train import train

    cfg = load_run_config("smoke")
    run = train(cfg, tmp_path / "run", data_root=shared_data, cache_dir=tmp_path / "cache", progress=False)
    res = evaluate_run(run, 16, data_root=shared_data, cache_dir=tmp_path / "cache", progress=False)
    assert res["n_windows"] == cfg.eval.max_test_windows
    assert len(res["bce_per_position"]) == 1024 and math.isfinite(res["bce"])
    assert json.loads((run / "metrics_16.json").read_text())["bars"] == 16
