"""Datasets of the paper's benchmarks, as torch Datasets that work offline from a local directory.

Every dataset yields batch-first samples ``(x, y)`` with ``x`` of shape ``(T, m)`` (float32) and ``y`` a class
label (``int``) or per-step labels ``(T,)``; :func:`brf_plugins.metrics.time_first` turns a batch into the
networks' time-first layout.
"""

from ._files import DataMissingError, DataCorruptError, default_data_root
from .mnist import MNIST_FILES, SequentialMNIST, read_idx, load_permutation
from .ecg import ECG_FILES, ECGQTDB

__all__ = ["DataMissingError", "DataCorruptError", "default_data_root", "MNIST_FILES", "SequentialMNIST",
           "read_idx", "load_permutation", "ECG_FILES", "ECGQTDB"]
