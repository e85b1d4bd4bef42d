"""Shared fixtures: the shared data folder (../shared/data from the repo root) and float64 defaults."""

import itertools
import os
from pathlib import Path

import pytest
import torch

from brf_plugins import functional as F

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("BRF_TEST_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()
CHECKPOINTS = DATA_ROOT / "reference_checkpoints"

# (kind, option, ablation) for every variant the kernels implement (test_kernels.py, test_step_kernel.py).
BRF_ABLATIONS = [dict(divergence_boundary=a, refractory=b, smooth_reset=c)
                 for a, b, c in itertools.product((True, False), repeat=3)]
CASES = ([("brf", "", ab) for ab in BRF_ABLATIONS] + [("rf", r, {}) for r in F.RF_RESETS]
         + [("bhrf", v, {}) for v in F.BHRF_VARIANTS])
CASE_IDS = [f"{k}-{o or 'x'}-{''.join(str(int(v)) for v in ab.values())}" for k, o, ab in CASES]

# Under pytest-xdist, give each worker its share of the cores: N workers x all-core intra-op pools oversubscribe
# the CPU (about 4x slower on 2 cores).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


def subprocess_env() -> dict:
    """The environment for a child Python process running this checkout (one thread: tests share 2 cores)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def needs_data(*parts):
    """Skip marker for tests that read a file of the shared data folder."""
    path = DATA_ROOT.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available (set BRF_TEST_DATA)")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's step-by-step loops over small tensors: more threads only contend on a
    shared machine (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data_root() -> Path:
    return DATA_ROOT


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
