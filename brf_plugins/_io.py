"""Atomic file writes, shared by checkpoints, logs and downloads.

The content goes to a temporary file in the destination folder, is flushed to disk and renamed over the target
(``os.replace`` is atomic on POSIX and Windows): a reader, or a crash at any moment, sees the previous file or the
new complete one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

__all__ = ["atomic_write"]


def atomic_write(path: Union[str, Path], mode: str, write: Callable[[Any], None], *,
                 check: Optional[Callable[[Path], None]] = None, **open_kwargs) -> Path:
    """``write(file)`` into a temporary file beside ``path``, fsync, then ``os.replace`` it onto ``path``.

    Args:
        path: the final file; its folder is created if needed.
        mode: ``open`` mode of the temporary file (``"wb"`` or ``"w"``).
        write: fills the open temporary file.
        check: called with the temporary file's path after it is complete; raising there discards it and keeps
            whatever ``path`` held before (used to verify a checksum before a download replaces anything).
        open_kwargs: passed to ``open`` (``encoding``, ``newline``).

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "log.txt"
        >>> atomic_write(target, "w", lambda f: f.write("epoch 1\\n")).read_text()
        'epoch 1\\n'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
