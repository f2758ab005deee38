"""DDP through torchrun with 2 CPU processes (gloo) matches one process with the same global batch
(about 10 s, but it spawns processes and opens a local port, so it is opt-in: -m slow)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stripes.train import train
from stripes.train.checkpoint import load_checkpoint

from .conftest import tiny_config


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(tmp_path) -> None:
    cfg = tiny_config(**{"model.dropout": 0.0, "train.batch_size": 4, "train.epochs": 2})
    single = train(cfg, tmp_path / "single", progress=False)
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    worker = Path(__file__).with_name("_ddp_worker.py")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(worker),
        str(cfg_path),
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(single / "log.csv") as f:
        a = list(csv.DictReader(f))
    with open(tmp_path / "ddp" / "log.csv") as f:
        b = list(csv.DictReader(f))
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        assert abs(float(ra["train_loss"]) - float(rb["train_loss"])) < 1e-5
        assert abs(float(ra["val_bce"]) - float(rb["val_bce"])) < 1e-5
    ca = load_checkpoint(single / "checkpoints" / "last.pt")
    cb = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert (ca["world_size"], cb["world_size"]) == (1, 2)
    wa, wb = ca["model"], cb["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)
