"""Shared fixtures. Real data is read from $STRIPES_DATA or ../shared/data (never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    env = os.environ.get("STRIPES_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder laid out like ../shared/data (POP909, POP909-structure, structurePE)."""
    root = _shared_data()
    if not (root / "POP909").is_dir():
        msg = f"POP909 data not found at {root} (set STRIPES_DATA)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{msg}: in CI the shared data is always there, so a data test fails, not skips")
        pytest.skip(msg)
    return root
