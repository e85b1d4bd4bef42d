"""ECG-QTDB wave segmentation (Yin et al. 2021), from ``QTDB_train.mat`` / ``QTDB_test.mat``.

Each segment is 1300 steps of 4 binary level-crossing channels with a label per step (6 wave segments:
P, PQ, QR, RS, ST, TP). The files hold 1301 steps; the last holds a -1 end marker and is dropped, as the paper's
code does. Unlabelled steps (all-zero one-hot: 8.2 % of train, 10.4 % of test) are scored as class 0 by the
paper (``argmax``); ``mask_unlabelled=True`` labels them ``IGNORE_INDEX`` (-1) instead so loss and accuracy skip
them.

Example:
    >>> from brf_plugins.data import ECGQTDB
    >>> test = ECGQTDB("../shared/data", split="test")                    # doctest: +SKIP
    >>> x, y = test[0]; x.shape, y.shape                                   # doctest: +SKIP
    (torch.Size([1300, 4]), torch.Size([1300]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from ..metrics import IGNORE_INDEX
from ._files import DataCorruptError, DataMissingError, PathLike, file_digest, resolve_root
from .download import digest_checker, download_file

__all__ = ["ECG_FILES", "ECG_URL", "find_ecg_file", "ECGQTDB", "download_ecg"]

ECG_FILES = {
    "QTDB_train.mat": "72d1a10c96f1540880447e07256835d66da419c0b34f3dff495731a7928c5bc7",
    "QTDB_test.mat": "916f11e21679a5b61988305bbb7cd1e6df8b34f1ed4a157a7a4e295d400ef232",
}


def find_ecg_file(root: Path, name: str) -> Path:
    for folder in (root, root / "ecg_qtdb", root / "ecg"):
        if (folder / name).is_file():
            return folder / name
    raise DataMissingError(
        f"ECG file {name} not found under {root} (looked in {root}, {root / 'ecg_qtdb'}, {root / 'ecg'}). "
        f"Put QTDB_train.mat and QTDB_test.mat there (from github.com/byin-cwi/Efficient-spiking-networks, "
        f"folder data/), or call ECGQTDB(root, download=True)."
    )


class ECGQTDB(Dataset):
    """The spike-encoded QT database: ``(x, y)`` with ``x`` float32 ``(1300, 4)`` and ``y`` long ``(1300,)``.

    Args:
        root: folder with the ``.mat`` files (or a parent with ``ecg_qtdb/``); default ``$BRF_PLUGINS_DATA``.
        split: ``"train"`` (618 segments) or ``"test"`` (141).
        mask_unlabelled: label unlabelled steps -1 (skipped) instead of class 0 (the paper's choice).
        download: fetch missing files first (needs internet).
        verify: check the files' sha256.
    """

    seq_len = 1300
    input_size = 4
    num_classes = 6

    def __init__(self, root: Optional[PathLike] = None, split: str = "train", mask_unlabelled: bool = False,
                 download: bool = False, verify: bool = True):
        if split not in ("train", "test"):
            raise ValueError(f"`split` must be 'train' or 'test', got {split!r}.")
        try:
            import scipy.io
        except ImportError as err:  # pragma: no cover - scipy is a core dependency
            raise ImportError("reading the ECG .mat files needs scipy: pip install scipy") from err
        root = resolve_root(root)
        name = f"QTDB_{split}.mat"
        if download:
            download_ecg(root)
        path = find_ecg_file(root, name)
        if verify:
            digest = file_digest(path, "sha256")
            if digest != ECG_FILES[name]:
                raise DataCorruptError(f"{path} has sha256 {digest}, expected {ECG_FILES[name]}: the file is corrupt "
                                       f"or another version; delete it and fetch it again.")
        try:
            mat = scipy.io.loadmat(str(path))
            x, y = mat["x"], mat["y"]
        except Exception as err:  # scipy raises many types on garbage (MatReadError, KeyError, struct errors...)
            raise DataCorruptError(f"{path} is not a readable QTDB .mat file ({type(err).__name__}: {err}); "
                                   f"delete it and fetch it again.") from err
        if x.ndim != 3 or x.shape[1:] != (1301, 4) or y.shape[:2] != x.shape[:2] or y.shape[2] != 6:
            raise DataCorruptError(f"{path}: unexpected shapes x {x.shape}, y {y.shape}.")
        self.split = split
        self.mask_unlabelled = bool(mask_unlabelled)
        self.inputs = torch.from_numpy(x[:, :-1, :].astype(np.float32))
        onehot = y[:, :-1, :]
        labels = onehot.argmax(-1).astype(np.int64)
        self.labelled = torch.from_numpy(onehot.any(-1))
        if self.mask_unlabelled:
            labels[~onehot.any(-1)] = IGNORE_INDEX
        self.labels = torch.from_numpy(labels)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int):
        return self.inputs[index], self.labels[index]


ECG_URL = "https://raw.githubusercontent.com/byin-cwi/Efficient-spiking-networks/main/data/"
"""Yin et al.'s repository (MIT), where ``QTDB_train.mat`` / ``QTDB_test.mat`` are published."""


def download_ecg(root: Optional[PathLike] = None, base_url: str = ECG_URL, progress: bool = True) -> Dict[str, Path]:
    """Fetch ``QTDB_train.mat`` and ``QTDB_test.mat`` into ``root/ecg_qtdb``; returns ``{name: path}``."""
    root = resolve_root(root)
    paths = {}
    for name, sha in ECG_FILES.items():
        try:
            existing = find_ecg_file(root, name)
            if file_digest(existing, "sha256") == sha:
                paths[name] = existing
                continue
        except DataMissingError:
            pass
        paths[name] = download_file([base_url + name], root / "ecg_qtdb" / name, digest_checker("sha256", sha),
                                    progress=progress)
    return paths
