"""Run checkpoints: atomic writes, random-generator states, and reading them back safely.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over the old one
(``os.replace`` is atomic on POSIX and Windows), so a crash at any moment leaves either the previous or the new
complete file, never a half-written one. Files load with ``torch.load(weights_only=True)``: only tensors and
plain Python containers, no pickled code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import torch

from .._io import atomic_write

__all__ = ["RUN_FORMAT", "atomic_torch_save", "atomic_write_text", "capture_rng", "restore_rng", "load_run_file",
           "is_run_checkpoint"]

RUN_FORMAT = "brf-plugins-run"
"""Value of the ``"format"`` key that marks a checkpoint written by :mod:`brf_plugins.train`."""


def atomic_torch_save(obj: Any, path: Union[str, Path]) -> Path:
    """``torch.save(obj, path)`` via a temporary file, fsync and ``os.replace``."""
    return atomic_write(path, "wb", lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: Union[str, Path]) -> Path:
    """Write a text file atomically (CSV, JSON)."""
    return atomic_write(path, "w", lambda f: f.write(text), encoding="utf-8", newline="")


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


def load_run_file(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Load a checkpoint file written by the trainer (weights-only)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def is_run_checkpoint(blob: Any) -> bool:
    return isinstance(blob, dict) and blob.get("format") == RUN_FORMAT
