"""Fixtures of the data tests: small prepared caches built once per session from the shared data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

# Songs covering every alignment case: offsets 8, 63, 0, 373, -16 (train), 112, 0 (val), 0, 24, 8 (test).
SONGS = [1, 25, 44, 123, 371, 225, 507, 55, 830, 758]


def make_root(shared: Path, dest: Path, split: dict[str, list[int]], copy: tuple[int, ...] = ()) -> Path:
    """A data root in `dest` holding only the songs of `split` (symlinked; those in `copy` are real copies
    that a test may damage) and a split.npz listing them."""
    for sub in ("POP909", "POP909-structure"):
        (dest / sub).mkdir(parents=True)
        for ids in split.values():
            for sid in ids:
                src = shared / sub / f"{sid:03d}"
                if sid in copy:
                    shutil.copytree(src, dest / sub / f"{sid:03d}")
                else:
                    (dest / sub / f"{sid:03d}").symlink_to(src)
    meta = dest / "structurePE"
    meta.mkdir()
    for f in ("chord_db.npz", "startpos.csv"):
        (meta / f).symlink_to(shared / "structurePE" / f)
    np.savez(meta / "split.npz", **{f"{k}_idx": np.asarray(v, dtype=np.int64) for k, v in split.items()})
    return dest


@pytest.fixture(scope="session")
def prepared(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cache folder of SONGS prepared from the real data root, cache dir)."""
    from stripes.data.prepare import prepare

    cache = tmp_path_factory.mktemp("cache")
    folder = prepare(shared_data, cache, songs=SONGS, bars=16, test_bars=(64,), workers=1)
    return folder, cache


@pytest.fixture(scope="session")
def small_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data root holding only SONGS with a split.npz of them, empty cache dir)."""
    import numpy as _np

    split = _np.load(shared_data / "structurePE" / "split.npz")
    parts = {k: [s for s in SONGS if s in set(split[f"{k}_idx"].tolist())] for k in ("train", "val", "test")}
    root = make_root(shared_data, tmp_path_factory.mktemp("root"), parts)
    return root, tmp_path_factory.mktemp("dscache")
