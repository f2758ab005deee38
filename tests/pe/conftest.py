"""PE tests: make ``pe_helpers`` importable (tests run with --import-mode=importlib) and seed torch."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
