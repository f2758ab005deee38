"""End-to-end training on synthetic data: outputs, determinism, resume equality, NaN handling."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from stripes.errors import ConfigError, TrainingError
from stripes.train import TrainHooks, load_run, train
from stripes.train.checkpoint import load_checkpoint

from .conftest import tiny_config


def _log(run) -> list[dict[str, str]]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def _weights(run, which="last") -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / f"{which}.pt")["model"]


def test_smoke_run_writes_a_complete_run_folder(tmp_path, tiny) -> None:
    run = train(tiny, tmp_path / "run", progress=False)
    assert json.loads((run / "config.json").read_text()) == tiny.to_dict()
    rows = _log(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(math.isfinite(float(r["train_loss"])) and math.isfinite(float(r["val_bce"])) for r in rows)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])  # it learns
    assert {"val_cs", "val_onset_f1"} <= set(rows[0])
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    val = [float(r["val_bce"]) for r in rows]
    assert best["epoch"] == 1 + val.index(min(val)) and last["epoch"] == 3
    assert {"model", "optimizer", "scheduler", "rng", "config", "manifest_hash"} <= set(last)
    assert any("omega" in k for k in last["model"])  # FAVOR+ random features are saved with the model
    assert last["step"] == 3 * (8 // tiny.train.batch_size)
    _, model, _ = load_run(run, "best")
    assert not model.training


def test_same_seed_same_losses_and_weights(tmp_path, tiny) -> None:
    a = train(tiny, tmp_path / "a", progress=False)
    b = train(tiny, tmp_path / "b", progress=False)
    assert [r["train_loss"] for r in _log(a)] == [r["train_loss"] for r in _log(b)]
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(tiny_config(seed=1), tmp_path / "c", progress=False)
    assert [r["train_loss"] for r in _log(a)] != [r["train_loss"] for r in _log(c)]


@pytest.mark.parametrize("how", ["option", "hook"])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, tiny, how) -> None:
    full = train(tiny, tmp_path / "full", progress=False)
    part = tmp_path / "part"
    if how == "option":
        train(tiny, part, progress=False, stop_after_epoch=1)
    else:

        def die(epoch: int) -> None:
            if epoch == 2:
                raise KeyboardInterrupt  # the process is killed after epoch 2's checkpoint

        with pytest.raises(KeyboardInterrupt):
            train(tiny, part, progress=False, hooks=TrainHooks(after_epoch=die))
    assert len(_log(part)) == (1 if how == "option" else 2)
    train(tiny, part, resume=True, progress=False)
    cols = ("epoch", "step", "lr", "train_loss", "val_bce", "val_onset_f1")
    assert [[r[c] for c in cols] for r in _log(part)] == [[r[c] for c in cols] for r in _log(full)]
    for which in ("last", "best"):
        wf, wp = _weights(full, which), _weights(part, which)
        assert wf.keys() == wp.keys() and all(torch.equal(wf[k], wp[k]) for k in wf)
    of = load_checkpoint(full / "checkpoints" / "last.pt")["optimizer"]["state"]
    op = load_checkpoint(part / "checkpoints" / "last.pt")["optimizer"]["state"]
    assert all(torch.equal(of[i]["exp_avg"], op[i]["exp_avg"]) for i in of)


def test_resume_refuses_other_config_and_fresh_run_refuses_existing(tmp_path, tiny) -> None:
    run = train(tiny, tmp_path / "r", progress=False, stop_after_epoch=1)
    with pytest.raises(TrainingError, match="config differs"):
        train(tiny_config(**{"train.lr": 0.01}), run, resume=True, progress=False)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(tiny, run, progress=False)
    with pytest.raises(TrainingError, match="no checkpoint"):
        train(tiny, tmp_path / "empty", resume=True, progress=False)


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path, tiny) -> None:
    steps_per_epoch = 8 // tiny.train.batch_size
    bad_step = steps_per_epoch + 1  # second step of epoch 2

    def poison(step: int, batch: dict) -> dict:
        if step == bad_step:
            batch["x"] = batch["x"] * float("nan")
        return batch

    ref = train(tiny, tmp_path / "ref", progress=False, stop_after_epoch=1)
    run = tmp_path / "nan"
    with pytest.raises(
        TrainingError, match=r"non-finite training loss .* epoch 2, step 5; last good checkpoint"
    ):
        train(tiny, run, progress=False, hooks=TrainHooks(on_batch=poison))
    ck = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ck["epoch"] == 1
    wr = _weights(ref)
    assert all(torch.equal(ck["model"][k], wr[k]) for k in wr)
    assert len(_log(run)) == 1
    # and the run can be resumed (without the poison) to a finite end
    train(tiny, run, resume=True, progress=False)
    assert len(_log(run)) == 3


def test_batch_size_must_fit_the_data(tmp_path) -> None:
    with pytest.raises(TrainingError, match="training windows"):
        train(tiny_config(**{"train.batch_size": 16}), tmp_path / "x", progress=False)


def test_augmented_training_is_exact_on_resume_and_changes_batches(tmp_path) -> None:
    """Transposition + bridge dropout (data.transpose / data.bridge_dropout) draw from a per-step generator:
    a killed and resumed run equals the uninterrupted one, and the batches really are transformed."""
    aug = tiny_config(**{"context": "bin", "data.transpose": [-5, 6], "data.bridge_dropout": 0.5})
    seen: list[torch.Tensor] = []

    def spy(step: int, batch: dict) -> dict:
        seen.append(batch["x"].clone())
        return batch

    full = train(aug, tmp_path / "full", progress=False, hooks=TrainHooks(on_batch=spy))
    part = tmp_path / "part"
    train(aug, part, progress=False, stop_after_epoch=1)
    train(aug, part, resume=True, progress=False)
    wf, wp = _weights(full, "last"), _weights(part, "last")
    assert all(torch.equal(wf[k], wp[k]) for k in wf)
    plain: list[torch.Tensor] = []
    train(tiny_config(context="bin"), tmp_path / "plain", progress=False,
          hooks=TrainHooks(on_batch=lambda s, b: plain.append(b["x"].clone()) or b))
    assert len(seen) == len(plain) and any(not torch.equal(a, b) for a, b in zip(seen, plain))


def test_harmonizer_and_cpu_profiles() -> None:
    from stripes.config import list_profiles, load_run_config

    assert {"smoke", "quick", "cpu", "paper", "harmonizer"} <= set(list_profiles())
    cpu = load_run_config("cpu")
    assert cpu.train.max_len is None and cpu.train.max_train_windows is None  # full windows, all of them
    assert cpu.eval.max_test_windows is None and cpu.data.transpose is None
    h = load_run_config("harmonizer")
    assert h.context == "bin" and h.data.transpose == [-5, 6] and 0 < h.data.bridge_dropout < 1
    with pytest.raises(ConfigError, match="transpose"):
        load_run_config("cpu", overrides={"context": "chord", "data.transpose": [-1, 1]})


def test_deadline_pauses_after_a_checkpoint_and_resume_is_exact(tmp_path, tiny) -> None:
    import time

    from stripes.errors import BudgetExceeded

    full = train(tiny, tmp_path / "full", progress=False)
    with pytest.raises(BudgetExceeded, match="after epoch 1/3"):
        train(tiny, tmp_path / "part", progress=False, deadline=time.time() + 0.01)
    assert len(_log(tmp_path / "part")) == 1
    train(tiny, tmp_path / "part", resume=True, progress=False)
    wf, wp = _weights(full, "last"), _weights(tmp_path / "part", "last")
    assert all(torch.equal(wf[k], wp[k]) for k in wf)
