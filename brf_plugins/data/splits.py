"""Seeded train/validation splits with the paper's sizes.

The paper splits each training set 90/10 with an unseeded ``random_split`` (spec section 4); here the split is
drawn from a seed, so a run can be repeated. Sizes: 54,000 / 6,000 (S-MNIST, PS-MNIST), 557 / 61 (ECG),
7,341 / 815 (SHD).

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from brf_plugins.data import train_val_split
    >>> train, val = train_val_split(TensorDataset(torch.arange(10)), 3, seed=0)
    >>> len(train), len(val)
    (7, 3)
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch.utils.data import Dataset, Subset

from .._checks import check_positive_int

__all__ = ["VALIDATION_SIZES", "train_val_split", "first"]

VALIDATION_SIZES = {"smnist": 6000, "psmnist": 6000, "ecg": 61, "shd": 815}
"""Validation set size per task (taken out of the training file's samples)."""


def train_val_split(dataset: Dataset, val_size: int, seed: int = 0) -> Tuple[Subset, Subset]:
    """Split ``dataset`` into ``(train, validation)`` subsets; the validation indices are the first ``val_size``
    of ``torch.randperm(len(dataset))`` drawn from ``seed``. Both subsets keep the dataset's order."""
    n = len(dataset)
    val_size = check_positive_int("val_size", val_size)
    if val_size >= n:
        raise ValueError(f"`val_size` ({val_size}) must be smaller than the dataset ({n} samples).")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    val_idx, _ = order[:val_size].sort()
    train_idx, _ = order[val_size:].sort()
    return Subset(dataset, train_idx.tolist()), Subset(dataset, val_idx.tolist())


def first(dataset: Dataset, n) -> Dataset:
    """The first ``n`` samples of ``dataset`` (all of it when ``n`` is None or not smaller)."""
    if n is None or n >= len(dataset):
        return dataset
    return Subset(dataset, list(range(check_positive_int("n", n))))
