"""Sweep test fixtures: fake train / evaluate patched into stripes.sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _fakes  # noqa: E402


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch):
    import stripes.experiments.run as sw

    monkeypatch.setattr(sw, "_train", _fakes.fake_train)
    monkeypatch.setattr(sw, "_evaluate", _fakes.fake_evaluate)
    return _fakes


# 4 songs of the shared data (module-scoped): the smoke runs of the question tables on real data
SMOKE_SONGS = {"train": [1, 25], "val": [225], "test": [55]}


@pytest.fixture(scope="module")
def tiny_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root of 4 songs of the shared data (symlinked, never copied) with a split.npz of them."""
    dest = tmp_path_factory.mktemp("tinyroot")
    for sub in ("POP909", "POP909-structure"):
        (dest / sub).mkdir()
        for ids in SMOKE_SONGS.values():
            for sid in ids:
                (dest / sub / f"{sid:03d}").symlink_to(shared_data / sub / f"{sid:03d}")
    meta = dest / "structurePE"
    meta.mkdir()
    for f in ("chord_db.npz", "startpos.csv"):
        (meta / f).symlink_to(shared_data / "structurePE" / f)
    np.savez(meta / "split.npz", **{f"{k}_idx": np.asarray(v, np.int64) for k, v in SMOKE_SONGS.items()})
    return dest
