"""Run checkpoints and run folders: atomic writes, random-generator states, safe loading, the folder lock.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over the old one
(``os.replace`` is atomic on POSIX and Windows), so a crash at any moment leaves either the previous or the new
complete file, never a half-written one (:func:`brf_plugins._io.atomic_write`). Files load with
``torch.load(weights_only=True)``: only tensors and plain Python containers, no pickled code; a file that does
not load raises :class:`CheckpointCorruptError` naming it.

A run folder is guarded by :class:`RunLock` (``fcntl.flock`` on ``.brf-train.lock``, held while the run trains):
a second run on the same folder fails at once with :class:`RunFolderInUseError` naming the holder's pid.
:func:`run_files` lists what a folder holds of a previous run (:class:`RunExistsError` when a new run would
overwrite it); :func:`move_run_aside` is what ``--force`` does with it.
"""

from __future__ import annotations

import datetime
import os
import pickle
import random
import shutil
import socket
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from .._io import atomic_write

__all__ = ["RUN_FORMAT", "RUN_FILES", "LOCK_NAME", "atomic_torch_save", "atomic_write_text", "capture_rng",
           "restore_rng", "load_run_file", "load_checkpoint_file", "is_run_checkpoint", "CheckpointCorruptError",
           "RunFolderInUseError", "RunExistsError", "RunLock", "run_files", "move_run_aside", "append_run_log"]

RUN_FORMAT = "brf-plugins-run"
"""Value of the ``"format"`` key that marks a checkpoint written by :mod:`brf_plugins.train`."""

RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "summary.json", "tensorboard", "divergence.txt", "run.log")
"""What a run writes into its folder (a folder holding any of them holds a run)."""

LOCK_NAME = ".brf-train.lock"


class CheckpointCorruptError(ValueError):
    """A checkpoint file does not load: truncated, corrupt, or not a weights-only PyTorch file. ``path`` is it."""

    def __init__(self, message: str, path: Union[str, Path]):
        super().__init__(message)
        self.path = Path(path)


class RunFolderInUseError(RuntimeError):
    """Another process holds the run folder's lock; ``pid`` is the holder's (None when it cannot be read)."""

    def __init__(self, message: str, pid: Optional[int] = None):
        super().__init__(message)
        self.pid = pid


class RunExistsError(FileExistsError):
    """The folder already holds a run and neither ``resume`` nor ``force`` was asked for."""


def atomic_torch_save(obj: Any, path: Union[str, Path]) -> Path:
    """``torch.save(obj, path)`` via a temporary file, fsync and ``os.replace``."""
    return atomic_write(path, "wb", lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: Union[str, Path]) -> Path:
    """Write a text file atomically (CSV, JSON)."""
    return atomic_write(path, "w", lambda f: f.write(text), encoding="utf-8", newline="")


def append_run_log(folder: Union[str, Path], line: str) -> None:
    """Append a time-stamped line to ``folder/run.log`` (starts, resumes, recipe changes, --force, divergence)."""
    stamp = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    with open(Path(folder) / "run.log", "a", encoding="utf-8") as f:
        f.write(f"{stamp} {line}\n")


def capture_rng() -> Dict[str, Any]:
    """States of torch's (CPU and CUDA), NumPy's and Python's global generators, as weights-only-safe objects."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint_file(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file.

    Raises:
        FileNotFoundError: no file at ``path``.
        IsADirectoryError / PermissionError: ``path`` cannot be read as a file.
        CheckpointCorruptError: the file is empty, truncated, corrupt, or holds objects a weights-only load
            refuses (then it was not written by brf-train; it is not loaded).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder, not a file.")
    size = path.stat().st_size
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise PermissionError(f"cannot read checkpoint {path}: permission denied.") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, OSError, AttributeError,
            IndexError, TypeError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        text = str(err)
        with open(path, "rb") as f:
            head = f.read(4)
        if (isinstance(err, pickle.UnpicklingError) and "Weights only load failed" in text and head.startswith(b"PK")
                and zipfile.is_zipfile(path)):
            reason = ("it holds Python objects other than tensors and plain containers, which a safe "
                      "(weights-only) load refuses: it was not written by brf-train")
        elif size == 0:
            reason = "it is empty (0 bytes): truncated, e.g. by a crash or a full disk while it was copied"
        elif head.startswith(b"PK") and (not zipfile.is_zipfile(path) or isinstance(err, (OSError, EOFError))):
            reason = f"it is truncated or corrupt ({size} bytes; the archive is incomplete)"
        elif head.startswith(b"PK"):
            reason = f"it is corrupt ({size} bytes; an archive whose contents do not load: {type(err).__name__})"
        else:
            reason = f"it is corrupt ({size} bytes that are not a PyTorch checkpoint)"
        raise CheckpointCorruptError(f"checkpoint {path} cannot be loaded: {reason}. Restore it from a copy, or "
                                     f"start the run again (brf-train --force moves the old files aside).",
                                     path) from None


def load_run_file(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Load a checkpoint file written by the trainer (weights-only); see :func:`load_checkpoint_file`.

    Raises:
        CheckpointCorruptError: as :func:`load_checkpoint_file`, or the file is not a brf-train checkpoint.
    """
    blob = load_checkpoint_file(path, map_location)
    if not is_run_checkpoint(blob):
        raise CheckpointCorruptError(f"checkpoint {path} is not a brf-train checkpoint (no format={RUN_FORMAT!r} "
                                     f"entry).", path)
    return blob


def is_run_checkpoint(blob: Any) -> bool:
    return isinstance(blob, dict) and blob.get("format") == RUN_FORMAT


# -- run folders --------------------------------------------------------------------------------------------

class RunLock:
    """An exclusive ``fcntl.flock`` on ``folder/.brf-train.lock`` for the life of a run.

    The lock file keeps the holder's pid, host, start time and command line; the kernel drops the lock when the
    holder ends in any way (also SIGKILL), so a leftover file never blocks a later run. On systems without
    ``fcntl`` (Windows) the lock is a no-op.

    Raises:
        RunFolderInUseError: another process holds the lock (on :meth:`acquire`).
    """

    def __init__(self, folder: Union[str, Path]):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip()
            os.close(fd)
            fields = dict(item.split("=", 1) for item in holder.split("\n") if "=" in item)
            pid = int(fields["pid"]) if fields.get("pid", "").isdigit() else None
            who = (f"pid {pid} on {fields.get('host', '?')}, started {fields.get('started', '?')}" if pid
                   else "a process that has not written its pid yet")
            raise RunFolderInUseError(f"run folder {self.folder} is in use by another brf-train run ({who}); "
                                      f"wait for it to end, or use another --out-dir.", pid) from None
        os.ftruncate(fd, 0)
        info = (f"pid={os.getpid()}\nhost={socket.gethostname()}\n"
                f"started={datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n"
                f"command={' '.join(sys.argv)}\n")
        os.write(fd, info.encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            import fcntl
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def run_files(folder: Union[str, Path]) -> List[str]:
    """The names of :data:`RUN_FILES` present in ``folder`` (empty: the folder is new or holds no run)."""
    folder = Path(folder)
    return [name for name in RUN_FILES if (folder / name).exists()]


def move_run_aside(folder: Union[str, Path]) -> Optional[Path]:
    """Move the previous run's files (:func:`run_files`) into ``folder/replaced-YYYYmmdd-HHMMSS/`` and return
    that folder (None when there was nothing to move). Nothing is deleted."""
    folder = Path(folder)
    names = run_files(folder)
    if not names:
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = folder / f"replaced-{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"replaced-{stamp}-{n}"
    target.mkdir()
    for name in names:
        shutil.move(str(folder / name), str(target / name))
    return target
