"""Datasets of the paper's benchmarks and a built-in synthetic task, as torch Datasets that work offline.

Every dataset yields batch-first samples ``(x, y)`` with ``x`` of shape ``(T, m)`` (float32) and ``y`` a class
label (``int``) or per-step labels ``(T,)``; :func:`brf_plugins.metrics.time_first` turns a batch into the
networks' time-first layout.

* :class:`SequentialMNIST` (S-MNIST, PS-MNIST), :class:`ECGQTDB`, :class:`SHD`: read local files; with
  ``download=True`` they fetch them first (checksummed, atomic: :mod:`brf_plugins.data.download`).
  Missing files raise :class:`DataMissingError`, bad ones :class:`DataCorruptError`, both saying what to do.
* :class:`NoisyFrequencies`: frequency classification of noisy spike trains, generated from a seed.
* :func:`train_val_split`: the paper's validation split sizes (``VALIDATION_SIZES``), seeded.
"""

from ._files import DataMissingError, DataCorruptError, default_data_root
from .mnist import MNIST_FILES, SequentialMNIST, download_mnist, load_permutation, read_idx
from .ecg import ECG_FILES, ECGQTDB, download_ecg
from .shd import SHD, SHD_SIZES, download_shd, bin_spikes, make_synthetic_shd, paper_bin_edges, read_shd_h5, write_shd_h5
from .synthetic import SYNTHETIC_OMEGAS, NoisyFrequencies, synthetic_splits
from .splits import VALIDATION_SIZES, train_val_split

__all__ = ["DataMissingError", "DataCorruptError", "default_data_root", "MNIST_FILES", "SequentialMNIST",
           "read_idx", "load_permutation", "ECG_FILES", "ECGQTDB", "SHD", "SHD_SIZES", "bin_spikes",
           "paper_bin_edges", "read_shd_h5", "write_shd_h5", "make_synthetic_shd", "SYNTHETIC_OMEGAS",
           "NoisyFrequencies", "synthetic_splits", "VALIDATION_SIZES", "train_val_split", "download_mnist",
           "download_ecg", "download_shd"]
