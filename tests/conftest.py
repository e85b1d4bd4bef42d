"""Shared fixtures: the shared data folder (../shared/data from the repo root) and float64 defaults."""

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("BRF_TEST_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()
CHECKPOINTS = DATA_ROOT / "reference_checkpoints"


def needs_data(*parts):
    """Skip marker for tests that read a file of the shared data folder."""
    path = DATA_ROOT.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available (set BRF_TEST_DATA)")


@pytest.fixture
def data_root() -> Path:
    return DATA_ROOT


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
