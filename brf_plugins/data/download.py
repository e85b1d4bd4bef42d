"""Downloading files for real users: checksummed, atomic, with clear errors when offline.

Each dataset module owns its sources and its ``download_*`` function (:func:`brf_plugins.data.download_mnist`,
``download_ecg``, ``download_shd``), built on :func:`download_file` here; this module knows no dataset.

Every file is fetched to a temporary file in the destination folder, verified, and only then renamed into place
(``os.replace``), so an interrupted or corrupt download never leaves a file that looks complete. Files already
present with the right checksum are not fetched again. When no mirror can be reached the error
(:class:`~brf_plugins.data.DataMissingError`) says where to put the files by hand.

Sources:

* MNIST: the four canonical IDX files (gzip) from the public mirrors in :data:`MNIST_MIRRORS`, verified by the
  md5 of their *uncompressed* content (``MNIST_FILES``), which does not depend on how a mirror compressed them.
* ECG-QTDB: ``QTDB_train.mat`` / ``QTDB_test.mat`` from Yin et al.'s repository (MIT), sha256 in ``ECG_FILES``.
* SHD: ``shd_{train,test}.h5.zip`` from the Zenke lab (CC BY 4.0), md5 of the zip as published by tonic, then
  unzipped next to it.

Example:
    >>> from brf_plugins.data import download_ecg
    >>> paths = download_ecg("~/data/brf")                    # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from .._io import atomic_write
from ._files import DataCorruptError, DataMissingError, PathLike, file_digest

__all__ = ["download_file", "digest_checker", "atomic_copy", "unzip_member"]

_USER_AGENT = "brf-plugins data downloader"


def _fetch(url: str, out, timeout: float, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False)
        try:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()


def download_file(urls: Sequence[str], dest: PathLike, verify: Callable[[Path], Optional[str]], *,
                  timeout: float = 60.0, progress: bool = True) -> Path:
    """Fetch ``dest`` from the first working URL, atomically.

    Args:
        urls: candidate URLs, tried in order.
        dest: final path. The download goes to a temporary file beside it and is renamed into place only after
            ``verify`` accepted it.
        verify: ``verify(path)`` returns ``None`` if the file is good, else a short description of what is wrong.

    Raises:
        DataMissingError: no URL could be fetched (offline, blocked, 404...).
        DataCorruptError: every fetched copy failed ``verify``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(urls, str):
        urls = [urls]
    failures: List[str] = []
    corrupt = False
    for url in urls:
        try:
            atomic_write(dest, "wb", lambda out, _url=url: _fetch(_url, out, timeout, progress), check=_raise_if(verify))
            return dest
        except _VerificationFailed as err:
            corrupt = True
            failures.append(f"{url}: {err}")
        except (urllib.error.URLError, OSError, ValueError) as err:  # URLError covers HTTPError, DNS, refused
            failures.append(f"{url}: {type(err).__name__}: {err}")
    details = "\n  ".join(failures)
    if corrupt:
        raise DataCorruptError(f"downloaded {dest.name} but it failed verification:\n  {details}")
    raise DataMissingError(f"could not download {dest.name} (no internet connection?):\n  {details}\n"
                           f"Download it by hand from {urls[0]} and put it at {dest}.")


def atomic_copy(source: PathLike, dest: PathLike, transform: Optional[Callable] = None) -> Path:
    """Write ``dest`` from ``source`` atomically (``transform`` opens the source, e.g. ``gzip.open``)."""
    def copy(out) -> None:
        with (transform or open)(Path(source), "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
    return atomic_write(dest, "wb", copy)


def unzip_member(zip_path: PathLike, name: str, dest: PathLike) -> Optional[Path]:
    """Write the first member of ``zip_path`` whose path ends with ``name`` to ``dest`` atomically; ``None`` if the
    archive has no such member."""
    with zipfile.ZipFile(zip_path) as archive:
        members = [m for m in archive.namelist() if m.endswith(name)]
        if not members:
            return None
        return atomic_copy(zip_path, dest, transform=lambda _path, _mode: archive.open(members[0]))


class _VerificationFailed(Exception):
    pass


def _raise_if(verify: Callable[[Path], Optional[str]]) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        problem = verify(path)
        if problem is not None:
            raise _VerificationFailed(problem)
    return check


def digest_checker(algorithm: str, expected: str, decompress: bool = False) -> Callable[[Path], Optional[str]]:
    """``verify(path) -> None`` if the file's digest is ``expected``, else what is wrong (for
    :func:`download_file`)."""
    def verify(path: Path) -> Optional[str]:
        try:
            digest = file_digest(path, algorithm, decompress=decompress)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            return f"unreadable ({err})"
        return None if digest == expected else f"{algorithm} {digest}, expected {expected}"
    return verify
