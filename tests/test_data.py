"""Data loaders: the real shared files (shapes, label counts, permutation, ECG quirks), a synthesised SHD file in
the real layout (the paper binning re-derived by hand), the synthetic task, splits, and the errors for missing or
corrupt files."""

import gzip
import shutil
import zipfile

import numpy as np
import pytest
import torch

from brf_plugins.data import (DataCorruptError, DataMissingError, ECGQTDB, NoisyFrequencies, SHD, SequentialMNIST,
                              bin_spikes, make_synthetic_shd, read_idx, train_val_split, write_shd_h5)
from brf_plugins.data.download import download_file, unzip_member
from brf_plugins.metrics import IGNORE_INDEX
from brf_plugins.train import task_datasets

from .conftest import CHECKPOINTS, DATA_ROOT, needs_data

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# -- MNIST ----------------------------------------------------------------------------------------------------

@needs_data("mnist")
def test_smnist_test_set_is_pixels_over_255_row_major():
    test = SequentialMNIST(DATA_ROOT, "test")
    assert len(test) == 10000
    assert torch.bincount(test.labels).tolist() == MNIST_TEST_COUNTS
    x, y = test[7]
    assert x.shape == (784, 1) and x.dtype == torch.float32
    raw = read_idx(next((DATA_ROOT / "mnist").glob("t10k-images*")))[7]
    np.testing.assert_array_equal(x[:, 0].numpy(), raw.reshape(-1).astype(np.float32) / 255.0)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


@needs_data("mnist")
@needs_data("reference_checkpoints", "psmnist_brf_permutation.pt")
def test_psmnist_applies_the_authors_permutation():
    perm_file = CHECKPOINTS / "psmnist_brf_permutation.pt"
    plain = SequentialMNIST(DATA_ROOT, "test")
    permuted = SequentialMNIST(DATA_ROOT, "test", permutation=perm_file)
    perm = torch.load(perm_file, weights_only=True).long().reshape(-1)
    assert perm[:5].tolist() == [78, 20, 137, 434, 600]  # spec 4.1
    x, _ = plain[3]
    xp, _ = permuted[3]
    assert torch.equal(xp[:, 0], x[perm, 0])
    assert not torch.equal(xp, x)


@needs_data("mnist")
def test_mnist_split_sizes_and_seeded_permutation():
    train, val, test = task_datasets("psmnist", DATA_ROOT, data_seed=3)
    assert (len(train), len(val), len(test)) == (54000, 6000, 10000)
    assert set(train.indices).isdisjoint(val.indices)
    again, val2, _ = task_datasets("psmnist", DATA_ROOT, data_seed=3)
    assert val.indices == val2.indices
    assert torch.equal(train.dataset.permutation, again.dataset.permutation)
    assert torch.equal(test.permutation, train.dataset.permutation)  # test uses the training permutation
    assert sorted(train.dataset.permutation.tolist()) == list(range(784))


# -- ECG ------------------------------------------------------------------------------------------------------

@needs_data("ecg_qtdb", "QTDB_test.mat")
def test_ecg_shapes_labels_and_unlabelled_steps():
    train = ECGQTDB(DATA_ROOT, "train")
    test = ECGQTDB(DATA_ROOT, "test")
    assert (len(train), len(test)) == (618, 141)
    x, y = test[0]
    assert x.shape == (1300, 4) and y.shape == (1300,) and y.dtype == torch.long
    assert set(torch.unique(train.inputs).tolist()) <= {0.0, 1.0}  # the -1 end marker (step 1300) is dropped
    unlabelled_train = 1 - train.labelled.float().mean().item()
    unlabelled_test = 1 - test.labelled.float().mean().item()
    assert abs(unlabelled_train - 0.082) < 0.005 and abs(unlabelled_test - 0.104) < 0.005  # spec 4.1
    assert torch.all(test.labels[~test.labelled] == 0)  # the paper scores them as class 0
    masked = ECGQTDB(DATA_ROOT, "test", mask_unlabelled=True)
    assert torch.all(masked.labels[~masked.labelled] == IGNORE_INDEX)
    assert torch.equal(masked.labels[masked.labelled], test.labels[test.labelled])
    assert set(torch.unique(test.labels).tolist()) == set(range(6))


@needs_data("ecg_qtdb", "QTDB_train.mat")
def test_ecg_split_is_557_61_and_seeded():
    train, val, test = task_datasets("ecg", DATA_ROOT, data_seed=0)
    assert (len(train), len(val), len(test)) == (557, 61, 141)
    _, val_other, _ = task_datasets("ecg", DATA_ROOT, data_seed=1)
    assert val.indices != val_other.indices


# -- missing and corrupt files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda root: SequentialMNIST(root, "test"),
    lambda root: ECGQTDB(root, "test"),
    lambda root: SHD(root, "test"),
])
def test_missing_files_name_the_path_and_how_to_download(tmp_path, make):
    with pytest.raises(DataMissingError) as info:
        make(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "download=True" in message


@needs_data("ecg_qtdb", "QTDB_test.mat")
def test_corrupt_ecg_file_is_reported(tmp_path):
    (tmp_path / "QTDB_test.mat").write_bytes((DATA_ROOT / "ecg_qtdb" / "QTDB_test.mat").read_bytes()[:-100])
    with pytest.raises(DataCorruptError, match="QTDB_test.mat.*sha256"):
        ECGQTDB(tmp_path, "test")


@needs_data("mnist")
def test_uncompressed_mnist_is_accepted_and_a_corrupt_one_rejected(tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(DATA_ROOT / "mnist" / f"{name}.gz", "rb") as src, open(tmp_path / name, "wb") as out:
            shutil.copyfileobj(src, out)
    plain = SequentialMNIST(tmp_path, "test")
    assert torch.equal(plain.labels, SequentialMNIST(DATA_ROOT, "test").labels)
    with open(tmp_path / "t10k-labels-idx1-ubyte", "r+b") as f:
        f.seek(100)
        byte = f.read(1)[0]
        f.seek(100)
        f.write(bytes([(byte + 1) % 10]))  # another valid digit: only the checksum can tell
    with pytest.raises(DataCorruptError, match="t10k-labels-idx1-ubyte.*md5"):
        SequentialMNIST(tmp_path, "test")


def test_download_verifies_and_never_leaves_a_bad_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload")
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DataCorruptError, match="file.bin"):
        download_file([source.as_uri()], dest, lambda p: "wrong checksum", progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    with pytest.raises(DataMissingError, match=r"put it at .*file.bin"):
        download_file([(tmp_path / "nowhere.bin").as_uri()], dest, lambda p: None, progress=False)
    assert download_file([(tmp_path / "nowhere.bin").as_uri(), source.as_uri()], dest, lambda p: None,
                         progress=False).read_bytes() == b"payload"
    # a bad copy never replaces a good file already there
    source.write_bytes(b"tampered")
    with pytest.raises(DataCorruptError):
        download_file([source.as_uri()], dest, lambda p: "wrong checksum" if p.read_bytes() != b"payload" else None,
                      progress=False)
    assert dest.read_bytes() == b"payload" and sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]


# -- SHD ------------------------------------------------------------------------------------------------------

def _hand_made_recordings():
    # (time s, unit): the paper's rule: bin i holds ((i-1) 4 ms, i 4 ms], bin 0 holds t = 0; channel 700 - u.
    times = [np.array([0.0, 0.002, 0.004, 0.0041, 0.5, 0.996, 0.998, 0.3], dtype=np.float16),
             np.array([0.015, 0.015, 0.205], dtype=np.float16)]
    units = [np.array([5, 5, 6, 0, 699, 1, 1, 699]), np.array([10, 10, 3])]
    return times, units, [3, 17]


def _paper_reference(t16, units, n_bins=250):
    dense = np.zeros((n_bins, 700), np.float32)
    for t, u in zip(t16.astype(np.float64), units):
        if u == 0:
            continue
        edges = (np.arange(n_bins) * 0.004).astype(np.float16).astype(np.float64)
        hits = np.nonzero(t <= edges)[0]
        if len(hits):
            dense[hits[0], 700 - u] = 1.0
    return dense


def test_shd_paper_binning_from_a_file_in_the_real_layout(tmp_path):
    times, units, labels = _hand_made_recordings()
    write_shd_h5(tmp_path / "SHD" / "shd_test.h5", times, units, labels)
    data = SHD(tmp_path, "test")
    assert len(data) == 2 and data.labels.tolist() == labels
    for i in range(2):
        x, y = data[i]
        assert x.shape == (250, 700) and y == labels[i]
        np.testing.assert_array_equal(x.numpy(), _paper_reference(times[i], units[i]))
    x0 = data[0][0]
    assert x0[0, 695] == 1 and x0[1, 695] == 1 and x0[1, 694] == 1  # t=0 -> bin 0; 2 and 4 ms -> bin 1
    assert x0[:, 0].sum() == 0                                     # unit 0 dropped
    assert x0[249, 699] == 1 and x0.sum() == 6                     # 0.996 s is in the last bin, 0.998 s dropped


def test_shd_plain_binning_counts_and_gz_unpacking(tmp_path):
    times, units, labels = _hand_made_recordings()
    path = write_shd_h5(tmp_path / "plain.h5", times, units, labels)
    with open(path, "rb") as src, gzip.open(tmp_path / "shd_train.h5.gz", "wb") as out:
        shutil.copyfileobj(src, out)
    data = SHD(tmp_path, "train", binning="plain", n_bins=100, bin_width=0.01, binary=False)
    assert (tmp_path / "shd_train.h5").is_file()
    x1 = data[1][0]
    assert x1.shape == (100, 700)
    assert x1[1, 10] == 2 and x1[20, 3] == 1 and x1.sum() == 3   # floor(t / width), natural channel order
    flat, counts = bin_spikes(times[0], units[0], binning="plain", n_bins=100, bin_width=0.01, binary=False)
    assert int(counts.sum()) == 8 and 0 in flat % 700            # plain binning keeps unit 0 and every spike < 1 s
    with pytest.raises(ValueError, match="binary=False"):
        SHD(tmp_path, "train", binary=False)
    with pytest.raises(ValueError, match="binary=False"):
        SHD.from_arrays(times, units, labels, binary=False)


def test_shd_zip_unpacking_takes_the_member_and_skips_a_zip_without_it(tmp_path):
    times, units, labels = _hand_made_recordings()
    path = write_shd_h5(tmp_path / "made.h5", times, units, labels)
    folder = tmp_path / "SHD"
    folder.mkdir()
    with zipfile.ZipFile(folder / "shd_test.h5.zip", "w") as archive:
        archive.write(path, "inner/shd_test.h5")
    data = SHD(tmp_path, "test")
    assert (folder / "shd_test.h5").read_bytes() == path.read_bytes()
    assert torch.equal(data[0][0], SHD.from_arrays(times, units, labels)[0][0])
    with zipfile.ZipFile(folder / "shd_train.h5.zip", "w") as archive:
        archive.writestr("readme.txt", "no recordings here")
    assert unzip_member(folder / "shd_train.h5.zip", "shd_train.h5", folder / "shd_train.h5") is None
    assert not (folder / "shd_train.h5").exists()
    with pytest.raises(DataMissingError, match="shd_train.h5 not found"):
        SHD(tmp_path, "train")


def test_shd_corrupt_file(tmp_path):
    (tmp_path / "shd_test.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(DataCorruptError, match="shd_test.h5"):
        SHD(tmp_path, "test")


def test_shd_task_pipeline_on_a_synthesised_file(tmp_path):
    make_synthetic_shd(tmp_path / "shd_train.h5", n_samples=40, seed=0)
    make_synthetic_shd(tmp_path / "shd_test.h5", n_samples=12, seed=1)
    with pytest.warns(UserWarning, match="not the paper's"):
        train, val, test = task_datasets("shd", tmp_path)
    assert (len(train), len(val), len(test)) == (36, 4, 12)
    x, y = train[0]
    assert x.shape == (250, 700) and 0 <= y < 20 and float(x.sum()) > 0


# -- synthetic task, splits -------------------------------------------------------------------------------------

def test_noisy_frequencies_is_seeded_and_balanced_in_rate():
    a, b, c = NoisyFrequencies(400, seed=1), NoisyFrequencies(400, seed=1), NoisyFrequencies(400, seed=2)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.inputs, c.inputs)
    x, y = a[0]
    assert x.shape == (100, 16) and x.dtype == torch.float32 and set(torch.unique(x).tolist()) <= {0.0, 1.0}
    rates = torch.stack([a.inputs[a.labels == k].float().mean() for k in range(5)])
    assert float(rates.max() - rates.min()) < 0.02  # the class is in the timing, not in the mean rate
    assert torch.bincount(a.labels, minlength=5).min() > 50


@pytest.mark.parametrize("kwargs, name", [(dict(n_samples=0), "n_samples"), (dict(depth=1.5), "depth"),
                                          (dict(omegas=(10.0,)), "omegas"), (dict(rate=0.7), "rate")])
def test_noisy_frequencies_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NoisyFrequencies(**kwargs)


def test_train_val_split_is_disjoint_complete_and_seeded():
    data = torch.utils.data.TensorDataset(torch.arange(100))
    train, val = train_val_split(data, 10, seed=5)
    assert len(val) == 10 and sorted(train.indices + val.indices) == list(range(100))
    assert train_val_split(data, 10, seed=5)[1].indices == val.indices
    with pytest.raises(ValueError, match="val_size"):
        train_val_split(data, 100)
