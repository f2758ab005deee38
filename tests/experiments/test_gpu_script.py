"""scripts/gpu_paper.sh on CPU with the smoke profile: packed runs, a time budget that pauses them cleanly,
and a rerun that resumes and finishes with a report `stripes report` can read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_SETS = ("data.source=synthetic", "data.synthetic_windows=4", "train.max_len=32", "train.epochs=1",
         "train.max_val_windows=2", "eval.max_val_windows=2", "eval.max_test_windows=2", "eval.n_examples=0")
TINY = [x for kv in _SETS for x in ("--set", kv)]


def _script(out: Path, budget: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, VIRTUAL_ENV=str(Path(sys.executable).parent.parent),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = ["bash", str(REPO / "scripts" / "gpu_paper.sh"), "--profile", "smoke", "--budget-min", budget,
           "--jobs", "2", "--contexts", "bin", "--seeds", "1", "--lrs", "1e-3", "--tables", "p1-table3",
           "--out", str(out),
           "--", *TINY]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def test_gpu_script_budget_pauses_then_resume_finishes(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    first = _script(out, "0.001")  # the budget is over before anything can start
    assert first.returncode == 0, first.stderr[-2000:]
    assert "paused by the time budget" in first.stdout
    status = json.loads((out / "runs" / "sweep_status.json").read_text())
    assert status["paused"] and not status["done"] and not status["failed"]
    second = _script(out, "30")
    assert second.returncode == 0, second.stderr[-2000:]
    status = json.loads((out / "runs" / "sweep_status.json").read_text())
    assert len(status["done"]) == 3 and not status["paused"]  # RoPE(C), F-StrIPE1, RoPEPool on BIN
    assert (out / "report" / "report.md").is_file() and (out / "report" / "runs.csv").is_file()
    from stripes.experiments.report import collect_runs

    assert len(collect_runs([out / "runs"])) == 3
