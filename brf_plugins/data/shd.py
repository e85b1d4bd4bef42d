r"""Spiking Heidelberg Digits (SHD, Cramer et al. 2020) from the ``shd_{train,test}.h5`` files, binned to frames.

The files hold, per recording, the spike times (float16 seconds) and unit ids (0..699) of 700 cochlea channels,
and one of 20 labels (spoken digits 0-9 in English and German). Two binnings turn them into ``(T, 700)`` frames:

``binning="paper"`` (default; the paper's preprocessing, spec 4.1, taken from Yin et al.):
    250 bins of 4 ms. Bin :math:`i` gets every spike not yet used with :math:`t \le i\cdot 4\,\mathrm{ms}`, i.e.
    bin 0 holds :math:`t = 0` and bin :math:`i` holds :math:`((i-1)\,4\,\mathrm{ms},\ i\cdot 4\,\mathrm{ms}]`; spikes
    after 0.996 s are dropped. The original code compares the float16 times with the bin edge in float16, so the
    edges here are :math:`i\cdot 0.004` rounded to float16 (the comparison itself is exact in float64). A spike of
    unit :math:`u > 0` sets channel :math:`700 - u` (mirrored order); unit 0 is dropped, so channel 0 is always 0.
    Several spikes in one bin and channel count as one.

``binning="plain"``:
    bin :math:`\lfloor t / \Delta \rfloor` (``bin_width`` :math:`\Delta`, ``n_bins`` bins, later spikes dropped),
    channel = unit (all 700 kept, natural order), spike counts per bin or, with ``binary=True``, 0/1.

Frames are stored sparsely (the sorted flat indices ``bin * 700 + channel`` of each sample, int32, plus counts
for the plain count mode) and made dense per item: the dense paper arrays would need 11.4 GB in float64.

Files are found as ``root/shd_{split}.h5``, ``root/SHD/`` (tonic's layout), ``root/shd/`` or ``root/hdspikes/``
(the authors' scripts); a ``.h5.gz`` or ``.h5.zip`` there is unpacked once. ``download=True`` fetches the zips
from the Zenke lab. tonic (GPL-3.0, optional, not a dependency) can be used instead with ``backend="tonic"``.

Split: 8,156 train / 2,264 test recordings; the paper's validation set is 815 of the train recordings
(:func:`brf_plugins.data.train_val_split`, 7,341 / 815).

Example:
    >>> from brf_plugins.data import SHD
    >>> test = SHD("~/data", split="test")                        # doctest: +SKIP
    >>> x, y = test[0]; x.shape                                   # doctest: +SKIP
    torch.Size([250, 700])
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_choice, check_finite_float, check_positive_int
from ._files import DataCorruptError, DataMissingError, PathLike, resolve_root
from .download import digest_checker, download_file, unzip_member

__all__ = ["SHD_CHANNELS", "SHD_CLASSES", "SHD_SIZES", "paper_bin_edges", "bin_spikes", "find_shd_file",
           "read_shd_h5", "write_shd_h5", "make_synthetic_shd", "SHD", "SHD_URL", "SHD_ZIP_MD5", "download_shd"]

SHD_CHANNELS = 700
SHD_CLASSES = 20
SHD_SIZES = {"train": 8156, "test": 2264}
_FOLDERS = ("", "SHD", "shd", "hdspikes", "data/hdspikes")


def paper_bin_edges(n_bins: int = 250, bin_width: float = 0.004) -> np.ndarray:
    """Upper edges ``i * bin_width`` (i = 0..n_bins-1) rounded to float16, as the original comparison used them."""
    return (np.arange(n_bins, dtype=np.float64) * bin_width).astype(np.float16).astype(np.float64)


def bin_spikes(times: np.ndarray, units: np.ndarray, *, binning: str = "paper", n_bins: int = 250,
               bin_width: float = 0.004, binary: bool = True,
               channels: int = SHD_CHANNELS) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Bin one recording: sorted unique flat indices ``bin * channels + channel`` (int32) and, for
    ``binary=False`` (plain binning only), the spike count of each (uint16); see the module docstring."""
    times = np.asarray(times).astype(np.float64)  # float16 seconds; float64 so that no scaling can overflow
    units = np.asarray(units).astype(np.int64)
    if times.shape != units.shape:
        raise DataCorruptError(f"spike times {times.shape} and units {units.shape} differ in length.")
    if binning == "paper":
        bins = np.searchsorted(paper_bin_edges(n_bins, bin_width), times, side="left")
        keep = (bins < n_bins) & (units > 0) & (units < channels)
        flat = bins[keep] * channels + (channels - units[keep])
        return np.unique(flat).astype(np.int32), None
    bins = np.floor(times / bin_width)
    keep = (bins >= 0) & (bins < n_bins) & (units >= 0) & (units < channels)
    flat = bins[keep].astype(np.int64) * channels + units[keep]
    if binary:
        return np.unique(flat).astype(np.int32), None
    flat, counts = np.unique(flat, return_counts=True)
    return flat.astype(np.int32), counts.astype(np.uint16)


def find_shd_file(root: Path, split: str) -> Path:
    """``shd_{split}.h5`` under ``root`` (or its SHD/, shd/, hdspikes/ folders); unpacks a lone .gz/.zip once."""
    from .download import atomic_copy, unzip_member
    name = f"shd_{split}.h5"
    folders = [root / sub if sub else root for sub in _FOLDERS]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    for folder in folders:
        packed_gz, packed_zip = folder / f"{name}.gz", folder / f"{name}.zip"
        if packed_gz.is_file():
            return atomic_copy(packed_gz, folder / name, transform=gzip.open)
        if packed_zip.is_file() and zipfile.is_zipfile(packed_zip):
            unpacked = unzip_member(packed_zip, name, folder / name)
            if unpacked is not None:
                return unpacked
    looked = ", ".join(str(f) for f in folders)
    raise DataMissingError(
        f"SHD file {name} not found (looked in {looked}). Put shd_train.h5 and shd_test.h5 (from "
        f"https://zenkelab.org/datasets/, CC BY 4.0) in {root / 'SHD'}, or call SHD(root, download=True), or "
        f"fetch them with tonic: tonic.datasets.SHD(save_to='{root}')."
    )


def _import_h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError("reading the SHD .h5 files needs h5py: pip install h5py "
                          "(or pip install 'brf-plugins[data]').") from err
    return h5py


def read_shd_h5(path: PathLike, max_samples: Optional[int] = None):
    """``(times, units, labels)`` of an SHD file: object arrays of per-recording float16 times / unit ids, and
    int64 labels. Raises :class:`DataCorruptError` if the layout is not SHD's."""
    h5py = _import_h5py()
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
            if missing:
                raise DataCorruptError(f"{path} is not an SHD file: missing {', '.join(missing)} (expected "
                                       f"spikes/times, spikes/units, labels).")
            stop = None if max_samples is None else int(max_samples)
            times = f["spikes/times"][:stop]
            units = f["spikes/units"][:stop]
            labels = np.asarray(f["labels"][:stop]).astype(np.int64)
    except OSError as err:
        raise DataCorruptError(f"{path} is not a readable HDF5 file ({err}); delete it and fetch it again.") \
            from err
    if not (len(times) == len(units) == len(labels)):
        raise DataCorruptError(f"{path}: {len(times)} spike-time arrays, {len(units)} unit arrays and "
                               f"{len(labels)} labels; they must be equal.")
    return times, units, labels


def write_shd_h5(path: PathLike, times: Sequence[np.ndarray], units: Sequence[np.ndarray],
                 labels: Sequence[int], speakers: Optional[Sequence[int]] = None) -> Path:
    """Write recordings in the real SHD layout (float16 times, uint16 units, ``extra/`` metadata).

    For tests and demos; the real files come from the Zenke lab.
    """
    h5py = _import_h5py()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    keys = [f"english-{w}" for w in ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                     "nine")]
    keys += [f"german-{w}" for w in ("null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht",
                                     "neun")]
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            t[i] = np.asarray(times[i], dtype=np.float16)
            u[i] = np.asarray(units[i], dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
        f.create_dataset("extra/speaker", data=np.asarray(speakers if speakers is not None else np.zeros(n),
                                                          dtype=np.uint8))
        f.create_dataset("extra/meta_info/gender", data=np.array([b"female", b"male"]))
        f.create_dataset("extra/meta_info/age", data=np.array([30, 40], dtype=np.uint8))
        f.create_dataset("extra/meta_info/body_height", data=np.array([170, 180], dtype=np.uint8))
    return path


def make_synthetic_shd(path: PathLike, n_samples: int = 64, seed: int = 0, duration: float = 0.9,
                       rate: float = 600.0) -> Path:
    """A tiny learnable stand-in for an SHD file, in the real layout (for tests and the quick-mode notebook).

    Class ``c`` drives a band of units centred on ``35 * c + 17`` with a burst whose onset depends on ``c``, on
    top of uniform background spikes; times are float16 seconds in ``[0, duration]``.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, SHD_CLASSES, n_samples)
    times, units = [], []
    for c in labels:
        n_bg = rng.poisson(rate * duration * 0.3)
        bg_t, bg_u = rng.uniform(0, duration, n_bg), rng.integers(0, SHD_CHANNELS, n_bg)
        n_sig = rng.poisson(rate * duration)
        onset = 0.05 + 0.03 * (c % 10)
        sig_t = np.clip(onset + rng.exponential(0.15, n_sig), 0, duration)
        sig_u = np.clip(np.round(rng.normal(35 * c + 17, 8, n_sig)), 0, SHD_CHANNELS - 1)
        t = np.concatenate([bg_t, sig_t])
        order = np.argsort(t, kind="stable")
        times.append(t[order])
        units.append(np.concatenate([bg_u, sig_u]).astype(np.int64)[order])
    return write_shd_h5(path, times, units, labels, speakers=rng.integers(0, 12, n_samples))


class SHD(Dataset):
    """SHD recordings as binned spike frames: ``(x, y)`` with ``x`` float32 ``(n_bins, 700)`` and ``y`` the label.

    Args:
        root: folder with the ``.h5`` files (see the module docstring); default ``$BRF_PLUGINS_DATA``.
        split: ``"train"`` (8,156) or ``"test"`` (2,264).
        binning: ``"paper"`` (250 x 4 ms, mirrored channels, unit 0 dropped, binary) or ``"plain"``.
        n_bins, bin_width: number and width (seconds) of the bins (250, 0.004).
        binary: plain binning only: 0/1 frames (True) or spike counts (False); the paper binning is binary.
        download: fetch the files first (needs internet; about 130 MB of zips).
        backend: ``"h5py"`` (default) reads the files directly; ``"tonic"`` takes the events from
            ``tonic.datasets.SHD`` (optional, GPL-3.0; it downloads by itself). tonic reports integer
            microseconds; they are rounded back to the files' float16, which recovers every stored time except
            those below 1 microsecond.
        max_samples: read only the first recordings (for quick experiments).
    """

    input_size = SHD_CHANNELS
    num_classes = SHD_CLASSES

    def __init__(self, root: Optional[PathLike] = None, split: str = "train", binning: str = "paper",
                 n_bins: int = 250, bin_width: float = 0.004, binary: bool = True, download: bool = False,
                 backend: str = "h5py", max_samples: Optional[int] = None):
        check_choice("split", split, ("train", "test"))
        check_choice("backend", backend, ("h5py", "tonic"))
        self._set_binning(binning, n_bins, bin_width, binary)
        self.split = split
        root = resolve_root(root)
        if backend == "tonic":
            times, units, labels = self._read_tonic(root, split, max_samples)
        else:
            if download:
                download_shd(root, splits=(split,))
            path = find_shd_file(root, split)
            times, units, labels = read_shd_h5(path, max_samples)
        self._store(times, units, labels)

    @staticmethod
    def _read_tonic(root: Path, split: str, max_samples: Optional[int]):
        try:
            import tonic
        except ImportError as err:
            raise ImportError("backend='tonic' needs tonic (GPL-3.0, optional): pip install tonic. The default "
                              "backend='h5py' reads the same files without it.") from err
        dataset = tonic.datasets.SHD(save_to=str(root), train=split == "train")
        n = len(dataset) if max_samples is None else min(int(max_samples), len(dataset))
        times, units, labels = [], [], []
        for i in range(n):
            events, label = dataset[i]
            times.append((events["t"].astype(np.float64) / 1e6).astype(np.float16))
            units.append(events["x"].astype(np.int64))
            labels.append(int(label))
        return times, units, np.asarray(labels, dtype=np.int64)

    @classmethod
    def from_arrays(cls, times, units, labels, binning: str = "paper", n_bins: int = 250,
                    bin_width: float = 0.004, binary: bool = True) -> "SHD":
        """Build from in-memory recordings (float seconds, unit ids, labels) without a file."""
        self = cls.__new__(cls)
        Dataset.__init__(self)
        self._set_binning(binning, n_bins, bin_width, binary)
        self.split = None
        self._store(times, units, np.asarray(labels, dtype=np.int64))
        return self

    def _set_binning(self, binning: str, n_bins: int, bin_width: float, binary: bool) -> None:
        self.binning = check_choice("binning", binning, ("paper", "plain"))
        self.n_bins = check_positive_int("n_bins", n_bins)
        self.bin_width = check_finite_float("bin_width", bin_width, positive=True)
        if binning == "paper" and not binary:
            raise ValueError("`binary=False` (spike counts) needs binning='plain'; the paper binning is binary.")
        self.binary = bool(binary)

    def _store(self, times, units, labels) -> None:
        flats, counts = [], []
        for t, u in zip(times, units):
            flat, count = bin_spikes(t, u, binning=self.binning, n_bins=self.n_bins, bin_width=self.bin_width,
                                     binary=self.binary)
            flats.append(flat)
            counts.append(count)
        lengths = np.array([len(f) for f in flats], dtype=np.int64)
        self.offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]))
        self.indices = torch.from_numpy(np.concatenate(flats) if flats else np.zeros(0, np.int32))
        self.counts = None if self.binary else torch.from_numpy(
            np.concatenate(counts).astype(np.float32) if counts else np.zeros(0, np.float32))
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= SHD_CLASSES):
            raise DataCorruptError(f"SHD labels must lie in 0..{SHD_CLASSES - 1}, got {labels.min()}..{labels.max()}.")
        self.labels = torch.from_numpy(labels)

    @property
    def seq_len(self) -> int:
        return self.n_bins

    def __len__(self) -> int:
        return len(self.labels)

    def frames(self, index: int) -> torch.Tensor:
        """Dense ``(n_bins, 700)`` float32 frames of one recording."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} recordings.")
        lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
        x = torch.zeros(self.n_bins * SHD_CHANNELS)
        flat = self.indices[lo:hi].long()
        x[flat] = 1.0 if self.counts is None else self.counts[lo:hi]
        return x.view(self.n_bins, SHD_CHANNELS)

    def __getitem__(self, index: int):
        return self.frames(index), int(self.labels[index])


SHD_URL = "https://zenkelab.org/datasets/"
SHD_ZIP_MD5 = {"shd_train.h5.zip": "f3252aeb598ac776c1b526422d90eecb",
               "shd_test.h5.zip": "1503a5064faa34311c398fb0a1ed0a6f"}
"""The Zenke lab's zips (CC BY 4.0) and their md5 as published by tonic."""


def _check_zip(expected_md5: str) -> Callable[[Path], Optional[str]]:
    md5_check = digest_checker("md5", expected_md5)

    def verify(path: Path) -> Optional[str]:
        problem = md5_check(path)
        if problem is None and not zipfile.is_zipfile(path):
            problem = "not a zip archive"
        return problem
    return verify


def download_shd(root: Optional[PathLike] = None, splits: Sequence[str] = ("train", "test"),
                 base_url: str = SHD_URL, progress: bool = True) -> Dict[str, Path]:
    """Fetch and unzip ``shd_{split}.h5`` into ``root/SHD`` (the folder tonic uses); returns ``{split: path}``.

    The zip stays beside the ``.h5`` (tonic takes its presence as "downloaded"). Existing ``.h5`` files are kept.
    """
    root = resolve_root(root)
    folder = root / "SHD"
    paths = {}
    for split in splits:
        h5_name = f"shd_{split}.h5"
        target = folder / h5_name
        if target.is_file():
            paths[split] = target
            continue
        zip_name = f"{h5_name}.zip"
        zip_path = folder / zip_name
        if not (zip_path.is_file() and _check_zip(SHD_ZIP_MD5[zip_name])(zip_path) is None):
            download_file([base_url + zip_name], zip_path, _check_zip(SHD_ZIP_MD5[zip_name]), progress=progress)
        if unzip_member(zip_path, h5_name, target) is None:
            with zipfile.ZipFile(zip_path) as archive:
                raise DataCorruptError(f"{zip_path} does not contain {h5_name} (members: {archive.namelist()}).")
        paths[split] = target
    return paths
