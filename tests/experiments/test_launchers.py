"""Sweeps through submitit's local executor: real subprocess jobs, no Slurm needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stripes.experiments.sweep as sw
from stripes.errors import ConfigError
from stripes.experiments.launchers import LocalLauncher, SubmititLauncher, make_launcher

SWEEP = {"name": "tiny", "profile": "smoke", "seeds": [0], "contexts": ["time"], "bars": [2],
         "overrides": {"data.source": "synthetic", "data.synthetic_windows": 4, "data.bars": 2,
                       "train.epochs": 1, "train.max_len": 32, "train.max_val_windows": 2,
                       "eval.max_val_windows": 2, "eval.max_test_windows": 2, "eval.n_examples": 0},
         "methods": [{"pe": "ropepool"}, {"pe": "nope"}]}


def test_submitit_local_sweep_completes_then_skips(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(SWEEP))
    specs = sw.expand(sw.load_sweep(cfg))
    out = tmp_path / "runs"
    launcher = SubmititLauncher(cluster="local", timeout_min=10, cpus_per_task=1)
    logs: list[str] = []
    summary = sw.run_sweep(specs, out, launcher=launcher, log=logs.append)
    assert sorted(summary["done"]) == sorted(s.name for s in specs) and not summary["failed"]
    for s in specs:
        run = out / s.name
        assert (run / sw.DONE).is_file() and (run / "metrics_2.json").is_file()
    assert any("submitted" in line for line in logs)
    assert list((out / "submitit").iterdir())  # submitit's own job logs
    again = sw.run_sweep(specs, out, launcher=launcher, log=logs.append)
    assert sorted(again["skipped"]) == sorted(s.name for s in specs) and not again["done"]


def test_make_launcher() -> None:
    assert isinstance(make_launcher("local", 3), LocalLauncher) and make_launcher("local", 3).jobs == 3
    sl = make_launcher("submitit", partition="gpu", timeout_min=30, gpus_per_node=1, folder=None)
    assert isinstance(sl, SubmititLauncher) and sl.partition == "gpu" and sl.gpus_per_node == 1
    with pytest.raises(ConfigError, match="unknown launcher"):
        make_launcher("kubernetes")
