"""Sweep test fixtures: fake train / evaluate patched into stripes.sweep."""

from __future__ import annotations

import sys
from pathlib import Path

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
