"""Locating, checking and (for real users) downloading data files."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]

ENV_VAR = "BRF_PLUGINS_DATA"


class DataMissingError(FileNotFoundError):
    """A data file is not where the loader looked; the message says where to put it or how to download it."""


class DataCorruptError(ValueError):
    """A data file exists but its checksum or layout is wrong."""


def default_data_root() -> Path:
    """``$BRF_PLUGINS_DATA`` if set, else ``~/.cache/brf_plugins``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "brf_plugins"


def resolve_root(root: Optional[PathLike]) -> Path:
    """``root`` as a Path (``None``: :func:`default_data_root`). TypeError names ``root`` for other types."""
    if root is None:
        return default_data_root()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"`root` must be a folder path (str or os.PathLike), got {type(root).__name__} {root!r}.")
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataMissingError(f"`root` {root} is a file, not a folder; pass the folder that holds the data files.")
    return root


def file_digest(path: Path, algorithm: str = "sha256", decompress: bool = False) -> str:
    """Hex digest of a file, of its gzip-decompressed content when ``decompress``."""
    h = hashlib.new(algorithm)
    opener = gzip.open if decompress else open
    try:
        with opener(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a truncated gzip ends in EOFError
        raise DataCorruptError(f"{path} cannot be read ({err}); delete it and fetch it again.") from err
    return h.hexdigest()
