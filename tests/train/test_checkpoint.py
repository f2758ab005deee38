"""Safe checkpoints: plain values only, weights_only loading, refusal of code-running pickles everywhere."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from stripes.cli import main
from stripes.errors import CheckpointError
from stripes.train import train
from stripes.train.checkpoint import (
    export_inference,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from stripes.train.loop import load_run

from .conftest import tiny_config

MARKER = "stripes-pwned-marker"


class _RunsCode:
    """Unpickling this calls os.system: what a hostile checkpoint would do."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        import os

        return (os.system, (f"echo {MARKER} > {self.target}",))


def _evil(path: Path, target: Path, base: dict | None = None) -> Path:
    state = dict(base or {})
    state["payload"] = _RunsCode(target)
    with open(path, "wb") as fh:
        torch.save(state, fh)  # torch.save pickles arbitrary objects; loading must refuse them
    return path


def test_rng_state_round_trip_and_plain_values() -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    st = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    save_checkpoint(Path("/tmp") / f"rng_{id(st)}.pt", {"rng": st})  # plain values only
    set_rng_state(st)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_save_refuses_non_plain_values(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="ndarray"):
        save_checkpoint(tmp_path / "x.pt", {"a": np.zeros(3)})
    assert not (tmp_path / "x.pt").exists()


def test_code_running_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    bad = _evil(tmp_path / "evil.pt", target)
    with pytest.raises(CheckpointError, match=r"refusing to load .*evil\.pt.*stripes checkpoint convert"):
        load_checkpoint(bad)
    assert not target.exists()
    # and the converter of old checkpoints does not run it either
    with pytest.raises(CheckpointError):
        from stripes.train.checkpoint import convert_legacy

        convert_legacy(bad, tmp_path / "new.pt")
    assert not target.exists() and not (tmp_path / "new.pt").exists()


def test_corrupt_and_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "t.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a stripes checkpoint"):
        load_checkpoint(tmp_path / "list.pt")


def test_evaluate_resume_and_load_run_refuse_hostile_checkpoints(tmp_path: Path, capsys) -> None:
    cfg = tiny_config(**{"train.epochs": 1})
    run = train(cfg, tmp_path / "run", progress=False)
    target = tmp_path / "pwned.txt"
    good = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    for name in ("best.pt", "last.pt"):
        _evil(run / "checkpoints" / name, target, good)
    # evaluate (CLI): one line, exit 2, nothing executed
    assert main(["evaluate", str(run), "--bars", "16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to load" in err[0]
    # resume (CLI)
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 2
    assert "refusing to load" in capsys.readouterr().err
    # library loaders (used by the harmonizer)
    with pytest.raises(CheckpointError):
        load_run(run)
    assert not target.exists()


def test_inference_file_round_trip(tmp_path: Path) -> None:
    cfg = tiny_config(**{"train.epochs": 1})
    run = train(cfg, tmp_path / "run", progress=False)
    f = export_inference(run, tmp_path / "model.pt")
    raw = torch.load(f, weights_only=True)
    assert raw["format"] == "stripes-inference" and "optimizer" not in raw
    c1, m1, _ = load_run(run)
    c2, m2, ck = load_run(f)
    assert c1.to_dict() == c2.to_dict() and ck["inference"]
    x, pos = torch.rand(1, 32, 256).round(), torch.rand(1, 32, m1.context_dim).round()
    torch.testing.assert_close(m1(x, pos), m2(x, pos))  # same weights and random features
    assert f.stat().st_size < (run / "checkpoints" / "last.pt").stat().st_size


def test_legacy_checkpoint_conversion(tmp_path: Path) -> None:
    if not hasattr(torch.serialization, "safe_globals"):
        pytest.skip("conversion needs torch >= 2.5")
    cfg = tiny_config(**{"train.epochs": 1})
    run = train(cfg, tmp_path / "run", progress=False)
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    ck["rng"]["numpy"] = np.random.get_state()  # the old format pickled numpy's state tuple
    old = tmp_path / "old.pt"
    torch.save(ck, old)
    with pytest.raises(CheckpointError, match="convert"):
        load_checkpoint(old)
    assert main(["checkpoint", "convert", str(old), str(tmp_path / "new.pt")]) == 0
    new = load_checkpoint(tmp_path / "new.pt")
    set_rng_state(new["rng"])
