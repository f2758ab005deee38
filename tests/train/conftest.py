"""Helpers for the training tests: tiny synthetic-data configs."""

from __future__ import annotations

import pytest

from stripes.config import RunConfig, load_run_config


def tiny_config(**overrides: object) -> RunConfig:
    """Smoke profile on synthetic data, small enough for a few seconds per run."""
    base = {
        "data.source": "synthetic",
        "data.synthetic_windows": 8,
        "data.bars": 2,
        "train.epochs": 3,
        "train.max_len": 48,
        "train.max_val_windows": 2,
        "eval.max_val_windows": 2,
        "eval.max_test_windows": 3,
    }
    base.update(overrides)
    return load_run_config("smoke", overrides=base)


@pytest.fixture
def tiny() -> RunConfig:
    return tiny_config()
