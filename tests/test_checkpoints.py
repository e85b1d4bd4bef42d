"""The authors' released checkpoints reproduce their published accuracies (spec rules, real test sets)."""

import math

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from brf_plugins.checkpoints import infer_neuron, load_authors_checkpoint, read_state_dict
from brf_plugins.data import DataCorruptError, DataMissingError, ECGQTDB, SequentialMNIST
from brf_plugins.metrics import evaluate
from brf_plugins.train.reproduce import REFERENCES, distance_to_range, format_table, main, reproduce

from .conftest import CHECKPOINTS, DATA_ROOT, needs_data

REF = {r.name: r for r in REFERENCES}


def _evaluate(name, dataset, batch_size):
    ref = REF[name]
    model = load_authors_checkpoint(CHECKPOINTS / f"{name}.pt")
    return evaluate(model, DataLoader(dataset, batch_size=batch_size), ref.loss_rule, ref.accuracy_rule, ref.start)


@needs_data("ecg_qtdb", "QTDB_test.mat")
@pytest.mark.parametrize("name", ["ecg_brf", "ecg_rf", "ecg_alif"])
def test_ecg_checkpoints_reproduce_published_accuracy(name):
    ref = REF[name]
    result = _evaluate(name, ECGQTDB(DATA_ROOT, split="test"), 141)
    assert result.scored == 141 * (1300 - ref.start)
    assert distance_to_range(result.percent, ref.expected) <= ref.tolerance, result.percent
    if ref.sops:
        assert result.sops == pytest.approx(ref.sops, rel=2e-3)


def _binomial_floor(expected_percent, n, sigmas=3.0):
    p = expected_percent / 100
    return 100 * (p - sigmas * math.sqrt(p * (1 - p) / n))


@needs_data("mnist", "t10k-images-idx3-ubyte.gz")
@pytest.mark.parametrize("name", ["smnist_brf", "psmnist_brf"])
def test_mnist_checkpoints_on_a_test_subset(name):
    """1,000 test images: accuracy consistent with the published full-test-set figure (3 binomial sigmas)."""
    ref = REF[name]
    perm = CHECKPOINTS / ref.permutation if ref.permutation else None
    test = SequentialMNIST(DATA_ROOT, split="test", permutation=perm)
    n = 1000
    result = _evaluate(name, Subset(test, range(n)), 500)
    assert result.percent >= _binomial_floor(ref.expected[0], n)
    assert result.sops == pytest.approx(ref.sops, rel=0.05)


@needs_data("mnist", "t10k-images-idx3-ubyte.gz")
def test_psmnist_needs_its_permutation():
    """Without the authors' permutation the PS-MNIST model is far off: the permutation really is applied."""
    test = SequentialMNIST(DATA_ROOT, split="test")
    result = _evaluate("psmnist_brf", Subset(test, range(300)), 300)
    assert result.percent < 60


@pytest.mark.slow
@needs_data("mnist", "t10k-images-idx3-ubyte.gz")
def test_full_reproduction_table():
    rows = reproduce(DATA_ROOT, only=["ecg_brf", "ecg_rf", "ecg_alif", "smnist_brf", "psmnist_brf",
                                      "smnist_alif", "psmnist_alif"], log=lambda s: None)
    table = format_table(rows)
    assert all(r["status"] == "ok" for r in rows), table


@needs_data("ecg_qtdb", "QTDB_test.mat")
def test_reproduce_command_prints_table(capsys):
    code = main(["--data-root", str(DATA_ROOT), "--only", "ecg_rf", "shd_rf"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| ecg_rf | ecg | 85.11 | 85.11" in out and "| ok |" in out
    assert "| shd_rf |" in out and "skipped" in out


@needs_data("reference_checkpoints", "ecg_rf.pt")
def test_checkpoint_kind_inference_and_errors(tmp_path):
    assert infer_neuron("x/ecg_rf.pt", read_state_dict(CHECKPOINTS / "ecg_rf.pt")) == "rf"
    assert infer_neuron("x/ecg_brf.pt", read_state_dict(CHECKPOINTS / "ecg_brf.pt")) == "brf"
    assert load_authors_checkpoint(CHECKPOINTS / "ecg_alif.pt").neuron == "alif"
    assert "hidden.linear.mask" not in read_state_dict(CHECKPOINTS / "ecg_brf.pt")
    with pytest.raises(DataMissingError, match="not found"):
        load_authors_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(DataCorruptError, match="ALIF"):
        load_authors_checkpoint(CHECKPOINTS / "ecg_alif.pt", neuron="brf")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(DataCorruptError, match="not a brf-neurons"):
        load_authors_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="dt"):
        load_authors_checkpoint(CHECKPOINTS / "psmnist_brf.pt", dt=0.02)  # trained omega 85.3 >= 1/0.02
