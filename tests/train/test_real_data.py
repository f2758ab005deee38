"""Train + evaluate on real POP909 windows, in the default suite (a few songs, the smoke profile: seconds).

Also the identity of the one prediction path: the validation BCE that training logs equals the BCE that
``stripes evaluate``'s prediction computes on the same windows."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from stripes.config import load_run_config

from ..data.conftest import SONGS, make_root


@pytest.fixture(scope="module")
def real_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(run folder, data root, cache) of a smoke run trained on 10 real songs."""
    from stripes.train import train

    split = np.load(shared_data / "structurePE" / "split.npz")
    parts = {k: [s for s in SONGS if s in set(split[f"{k}_idx"].tolist())] for k in ("train", "val", "test")}
    root = make_root(shared_data, tmp_path_factory.mktemp("root"), parts)
    cache = tmp_path_factory.mktemp("cache")
    cfg = load_run_config("smoke", overrides={"train.max_val_windows": 3, "train.max_len": 128})
    run = train(cfg, tmp_path_factory.mktemp("r") / "run", data_root=root, cache_dir=cache, progress=False)
    return run, root, cache


def test_smoke_train_and_evaluate_on_pop909(real_run) -> None:
    from stripes.experiments.evaluate import evaluate_run

    run, root, cache = real_run
    res = evaluate_run(run, 16, data_root=root, cache_dir=cache, progress=False)
    assert res["n_windows"] >= 1 and len(res["bce_per_position"]) == 1024 and math.isfinite(res["bce"])
    assert 0 < res["bce"] < 0.7  # a trained model beats the uniform 0.5 guess (log 2 = 0.69)
    assert json.loads((run / "metrics_16.json").read_text())["bars"] == 16
    assert (run / "metrics_16_windows.csv").is_file()


def test_validation_bce_equals_evaluate_bce_on_the_same_windows(real_run) -> None:
    from stripes.train.data import make_dataset, spread_subset
    from stripes.train.loop import load_run, validate
    from stripes.train.predict import mean_window_bce, predict

    run, root, cache = real_run
    config, model, ck = load_run(run, "last")
    val = make_dataset(config, "val", 16, root, cache)
    idx = spread_subset(len(val), config.train.max_val_windows)
    logged = [float(r["val_bce"]) for r in csv.DictReader(open(run / "log.csv"))]
    again = validate(model, val, idx, config.train.batch_size, "cpu")["val_bce"]
    through_eval = mean_window_bce(list(predict(model, val, idx, batch_size=1)))  # another batching
    assert again == pytest.approx(logged[-1], rel=1e-6)
    assert through_eval == pytest.approx(logged[-1], rel=1e-5)
