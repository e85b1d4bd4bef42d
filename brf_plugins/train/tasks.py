"""Task lookup for the trainer (the paper's four benchmarks plus the built-in synthetic task) and their data.

:data:`SYNTHETIC` is the recipe of the synthetic task (:class:`brf_plugins.data.NoisyFrequencies`); the paper's
tasks come from :data:`brf_plugins.tasks.TASKS`.

Example:
    >>> from brf_plugins.train.tasks import resolve_task, task_datasets
    >>> cfg = resolve_task("synthetic")
    >>> train, val, test = task_datasets(cfg, train_samples=32, val_samples=16, test_samples=16)
    >>> len(train), len(val), len(test)
    (32, 16, 16)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional, Tuple, Union

from torch.utils.data import Dataset

from ..data import ECGQTDB, SHD, SequentialMNIST, VALIDATION_SIZES, synthetic_splits, train_val_split
from ..data.splits import first
from ..tasks import TASKS, TaskConfig, get_task

__all__ = ["SYNTHETIC", "TASK_NAMES", "resolve_task", "task_datasets", "BEST_RULES", "best_rule"]

SYNTHETIC = replace(
    TASKS["shd"], name="synthetic", input_size=16, hidden_size=32, output_size=5, seq_len=100,
    omega_init=(10.0, 40.0), b_offset_init=(0.0, 0.5), lr=0.1, epochs=5, batch_size=64, val_batch_size=300,
    test_batch_size=500, alif=replace(TASKS["smnist"].alif, lr=0.01, batch_size=64, tbptt=0),
    bhrf_omega_init=(10.0, 40.0), bhrf_b_offset_init=(0.1, 1.0),
    notes="built-in: frequency of noisy spike trains (brf_plugins.data.NoisyFrequencies), 1,500/300/500 samples",
    extra={"n_train": 1500, "n_val": 300, "n_test": 500},
)
"""The synthetic task: 16 spike trains, 100 steps, 5 frequencies; 16-32-5 network, the paper's recipe
(Adam 0.1, linear decay) over 5 epochs; scored like SHD (summed loss, time-mean readout). ALIF/LIF use the MNIST
ALIF time constants with lr 0.01 and full BPTT."""

TASK_NAMES = tuple(TASKS) + ("synthetic",)

BEST_RULES = {"ecg": "<="}
"""How a new best validation loss is recognised: ``<=`` in the ECG script, strict ``<`` in the other BRF scripts
(spec 4); the ALIF scripts all use ``<=`` (:func:`best_rule`)."""


def best_rule(task_name: str, alif_recipe: bool) -> str:
    """``"<="`` (a later equal validation loss is the new best) or ``"<"`` for a task's script (spec 4)."""
    return "<=" if alif_recipe else BEST_RULES.get(task_name, "<")


def _val_size(full: Dataset, name: str) -> int:
    """A tenth of the training file: exactly the paper's sizes (6,000 / 61 / 815) on the real files, and still a
    sensible split of a small stand-in file (the quick-mode SHD)."""
    size = max(1, len(full) // 10)
    if len(full) // 10 not in (0, VALIDATION_SIZES[name]):
        import warnings
        warnings.warn(f"{name}: the training file has {len(full)} samples, not the paper's; validating on "
                      f"{size} of them.", stacklevel=3)
    return size


def resolve_task(task: Union[str, TaskConfig]) -> TaskConfig:
    """A :class:`TaskConfig` by name (``smnist``, ``psmnist``, ``ecg``, ``shd``, ``synthetic``) or as given."""
    if isinstance(task, TaskConfig):
        return task
    if not isinstance(task, str):
        raise TypeError(f"`task` must be a task name or a TaskConfig, got {type(task).__name__}.")
    if task.lower() in ("synthetic", "synth", "noisy_frequencies"):
        return SYNTHETIC
    try:
        return get_task(task)
    except ValueError:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASK_NAMES)}.") from None


def task_datasets(task: Union[str, TaskConfig], data_root: Optional[Union[str, Path]] = None, *,
                  data_seed: int = 0, permutation=None, mask_unlabelled: bool = False, shd_binning: str = "paper",
                  download: bool = False, train_samples: Optional[int] = None, val_samples: Optional[int] = None,
                  test_samples: Optional[int] = None) -> Tuple[Dataset, Dataset, Dataset]:
    """``(train, validation, test)`` of a task with the paper's split sizes, split from ``data_seed``.

    Args:
        permutation: PS-MNIST pixel order: ``None`` draws one from ``data_seed``; an int seed, a ``.pt`` file
            (the authors' ``psmnist_brf_permutation.pt``) or a tensor. Ignored by the other tasks.
        mask_unlabelled: ECG: leave unlabelled steps out of loss and accuracy (the paper scores them as class 0).
        shd_binning: ``"paper"`` or ``"plain"`` (see :class:`brf_plugins.data.SHD`).
        train_samples, val_samples, test_samples: keep only the first samples of each split (quick runs).
    """
    cfg = resolve_task(task)
    name = cfg.name
    if name == "synthetic":
        extra = cfg.extra
        train, val, test = synthetic_splits(extra["n_train"], extra["n_val"], extra["n_test"], seed=data_seed,
                                            seq_len=cfg.seq_len, channels=cfg.input_size)
    elif name in ("smnist", "psmnist"):
        order = None
        if name == "psmnist":
            order = data_seed if permutation is None else permutation
        full = SequentialMNIST(data_root, "train", permutation=order, download=download)
        train, val = train_val_split(full, _val_size(full, name), seed=data_seed)
        test = SequentialMNIST(data_root, "test", permutation=full.permutation, download=download)
    elif name == "ecg":
        full = ECGQTDB(data_root, "train", mask_unlabelled=mask_unlabelled, download=download)
        train, val = train_val_split(full, _val_size(full, name), seed=data_seed)
        test = ECGQTDB(data_root, "test", mask_unlabelled=mask_unlabelled, download=download)
    elif name == "shd":
        full = SHD(data_root, "train", binning=shd_binning, n_bins=cfg.seq_len, download=download)
        train, val = train_val_split(full, _val_size(full, name), seed=data_seed)
        test = SHD(data_root, "test", binning=shd_binning, n_bins=cfg.seq_len, download=download)
    else:  # pragma: no cover - resolve_task only returns the names above
        raise ValueError(f"no data pipeline for task {name!r}.")
    return first(train, train_samples), first(val, val_samples), first(test, test_samples)
