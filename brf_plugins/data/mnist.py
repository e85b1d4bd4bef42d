"""Sequential MNIST (S-MNIST) and permuted sequential MNIST (PS-MNIST) from the IDX files.

Each image becomes a sequence of 784 steps with one input (pixel / 255, row-major, no normalisation), as the
paper's pipeline (spec 4.1). PS-MNIST gathers the time axis with a fixed permutation: input at step ``t`` is
flattened pixel ``perm[t]``.

The loader reads the four canonical IDX files, gzip-compressed or not, from ``root`` (or ``root/mnist``);
torchvision is not needed.

Example:
    >>> from brf_plugins.data import SequentialMNIST
    >>> x, y = SequentialMNIST("../shared/data", split="test")[0]          # doctest: +SKIP
    >>> x.shape                                                           # doctest: +SKIP
    torch.Size([784, 1])
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ._files import DataCorruptError, DataMissingError, PathLike, file_digest, resolve_root
from .download import digest_checker, download_file

__all__ = ["MNIST_FILES", "MNIST_MIRRORS", "read_idx", "find_mnist_file", "load_permutation", "SequentialMNIST",
           "download_mnist"]

MNIST_FILES = {
    # name: (md5 of the uncompressed content, count)
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", 60000),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", 60000),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", 10000),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", 10000),
}
_SPLIT_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a uint8 array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        if isinstance(err, FileNotFoundError):
            raise DataMissingError(f"IDX file {path} not found.") from err
        raise DataCorruptError(f"{path} cannot be read ({err}); delete it and fetch it again.") from err
    if len(data) < 4:
        raise DataCorruptError(f"{path} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataCorruptError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()}).")
    if len(data) < 4 + 4 * ndim:
        raise DataCorruptError(f"{path} ends inside its IDX header.")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataCorruptError(f"{path} holds {body.size} bytes of data but its header declares shape {shape}.")
    return body.reshape(shape)


def find_mnist_file(root: Path, name: str) -> Path:
    """``root/name[.gz]`` or ``root/mnist/name[.gz]`` (also torchvision's ``MNIST/raw``)."""
    for folder in (root, root / "mnist", root / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataMissingError(
        f"MNIST file {name}(.gz) not found under {root} (looked in {root}, {root / 'mnist'}, "
        f"{root / 'MNIST' / 'raw'}). Put the four IDX files there, or call "
        f"SequentialMNIST(root, download=True) to fetch them from a public mirror."
    )


def load_permutation(permutation: Union[None, int, str, Path, torch.Tensor], length: int = 784) -> Optional[torch.Tensor]:
    """A PS-MNIST pixel order: ``None`` (no permutation), a seed (int), a ``.pt`` file or a tensor."""
    if permutation is None:
        return None
    if isinstance(permutation, bool):
        raise TypeError("`permutation` must be None, an int seed, a file path or a tensor, not a bool.")
    if isinstance(permutation, int):
        return torch.randperm(length, generator=torch.Generator().manual_seed(permutation))
    if isinstance(permutation, (str, Path)):
        path = Path(permutation)
        if not path.is_file():
            raise DataMissingError(f"permutation file {path} not found.")
        permutation = torch.load(path, weights_only=True, map_location="cpu")
    perm = torch.as_tensor(permutation).long().flatten()
    if perm.numel() != length or not torch.equal(perm.sort().values, torch.arange(length)):
        raise DataCorruptError(f"`permutation` must be a permutation of range({length}), got {perm.numel()} "
                               f"entries that are not.")
    return perm


class SequentialMNIST(Dataset):
    """MNIST as 784-step sequences of one pixel each (S-MNIST), optionally permuted (PS-MNIST).

    Args:
        root: folder with the IDX files (or a parent with ``mnist/``); default ``$BRF_PLUGINS_DATA``.
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        permutation: ``None`` for S-MNIST; for PS-MNIST an int seed, a ``.pt`` file of the order (the authors'
            is ``psmnist_brf_permutation.pt``) or a tensor.
        download: fetch missing files from a public mirror first (needs internet).
        verify: check the md5 of each file's content.

    Items are ``(x, y)`` with ``x`` float32 ``(784, 1)`` in [0, 1] and ``y`` the digit.
    """

    seq_len = 784
    input_size = 1
    num_classes = 10

    def __init__(self, root: Optional[PathLike] = None, split: str = "train",
                 permutation: Union[None, int, str, Path, torch.Tensor] = None, download: bool = False,
                 verify: bool = True):
        if split not in _SPLIT_FILES:
            raise ValueError(f"`split` must be 'train' or 'test', got {split!r}.")
        root = resolve_root(root)
        if download:
            download_mnist(root)
        image_name, label_name = _SPLIT_FILES[split]
        image_path, label_path = find_mnist_file(root, image_name), find_mnist_file(root, label_name)
        if verify:
            for name, path in ((image_name, image_path), (label_name, label_path)):
                digest = file_digest(path, "md5", decompress=path.suffix == ".gz")
                if digest != MNIST_FILES[name][0]:
                    raise DataCorruptError(f"{path} has md5 {digest}, expected {MNIST_FILES[name][0]}: the file is "
                                           f"corrupt or not the canonical MNIST; delete it and fetch it again.")
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
            raise DataCorruptError(f"unexpected MNIST shapes {images.shape} / {labels.shape}.")
        self.split = split
        self.images = torch.from_numpy(images.reshape(len(images), 784).copy())
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.permutation = load_permutation(permutation, 784)

    def __len__(self) -> int:
        return len(self.labels)

    def sequences(self, index) -> torch.Tensor:
        """Float sequences ``(N, 784, 1)`` for an index, slice or index tensor (faster than item by item)."""
        pixels = self.images[index]
        if self.permutation is not None:
            pixels = pixels[..., self.permutation]
        return (pixels.float() / 255.0).unsqueeze(-1)

    def __getitem__(self, index: int):
        return self.sequences(index), int(self.labels[index])


MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Public mirrors of the four canonical IDX files (gzip)."""


def download_mnist(root: Optional[PathLike] = None, mirrors: Iterable[str] = MNIST_MIRRORS,
                   progress: bool = True) -> Dict[str, Path]:
    """Fetch the four MNIST IDX files (gzip) into ``root/mnist``; returns ``{name: path}``.

    Files already present (compressed or not, in ``root`` or ``root/mnist``) with the right content are kept.
    """
    root = resolve_root(root)
    mirrors = list(mirrors)
    paths = {}
    for name, (md5, _) in MNIST_FILES.items():
        try:
            existing = find_mnist_file(root, name)
            if file_digest(existing, "md5", decompress=existing.suffix == ".gz") == md5:
                paths[name] = existing
                continue
        except DataMissingError:
            pass
        dest = root / "mnist" / f"{name}.gz"
        paths[name] = download_file([m + f"{name}.gz" for m in mirrors], dest,
                                    digest_checker("md5", md5, decompress=True), progress=progress)
    return paths
