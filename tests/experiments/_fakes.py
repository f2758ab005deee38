"""Fake train / evaluate for sweep tests: they write the files the real ones write, without training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CALLS_FILE = "fake_calls.jsonl"


def _record(run: Path, **entry: Any) -> None:
    with open(run.parent / CALLS_FILE, "a") as fh:
        fh.write(json.dumps({"run": run.name, **entry}) + "\n")


def calls(root: Path) -> list[dict[str, Any]]:
    f = root / CALLS_FILE
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def fake_train(config: Any, out_dir: Path, resume: bool, data_root: Any, cache_dir: Any) -> Path:
    out = Path(out_dir)
    if (out / "checkpoints" / "last.pt").exists() and not resume:
        raise RuntimeError("run exists but resume=False")  # what the real train does
    _record(out, what="train", resume=resume)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict()))
    (out / "checkpoints" / "last.pt").write_text("ckpt")
    if config.pe == "spe" and not resume:  # the first SPE attempt "crashes" after its checkpoint
        raise RuntimeError("simulated crash during training")
    if config.pe == "fstripe_sff":  # always fails
        raise ValueError("SFF exploded")
    (out / "log.csv").write_text("epoch,val_bce\n1,0.5\n2,0.4\n")
    return out


def fake_evaluate(run_dir: Path, bars: int, data_root: Any, cache_dir: Any) -> dict[str, Any]:
    run = Path(run_dir)
    cfg = json.loads((run / "config.json").read_text())
    _record(run, what="evaluate", bars=bars)
    if cfg["pe"] == "nope" and bars == 64 and not (run / "eval_crashed").exists():
        (run / "eval_crashed").write_text("")
        raise RuntimeError("simulated crash during 64-bar evaluation")
    v = {"cs": 10.0 + cfg["seed"], "ssmd": 14.0, "gs": 20.0, "ndd": 90.0}
    m = {"bars": bars, "n_windows": 3, "selected": {"method": "threshold", "threshold": 0.4, "merge": None,
                                                    "criterion": "val onset F1"},
         "at_selected": v, "at_0.5": v, "bce": 0.1, "bce_per_position": [0.1] * (bars * 4)}
    (run / f"metrics_{bars}.json").write_text(json.dumps(m))
    return m
