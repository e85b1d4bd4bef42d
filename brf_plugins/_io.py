"""Atomic file writes, shared by checkpoints, logs and downloads.

The content goes to a temporary file in the destination folder, is flushed to disk and renamed over the target
(``os.replace`` is atomic on POSIX and Windows): a reader, or a crash at any moment, sees the previous file or the
new complete one, never half of one.

* The new file gets the mode ``open(path, "w")`` would give it: the existing file's mode when it replaces one,
  else ``0o666`` minus the process umask (``tempfile.mkstemp`` alone would leave ``0o600``).
* A failed write (an exception, a full disk, Ctrl-C) removes its temporary file and keeps the previous ``path``.
* A write killed outright (SIGKILL, power loss) can leave a temporary file ``.NAME.PID.XXXX.tmp``; the next
  write of that file removes those whose process ``PID`` no longer runs (:func:`remove_stale_temporaries`).
  Readers never look at them.
* A full disk raises :class:`DiskFullError` (an ``OSError`` with ``errno.ENOSPC``) naming the file and the free
  space, also when torch reports it as ``enforce fail at inline_container.cc``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Union

__all__ = ["atomic_write", "DiskFullError", "remove_stale_temporaries", "creation_mode"]

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


class DiskFullError(OSError):
    """A write failed for lack of space; ``str()`` names the file and the free space. ``errno`` is ENOSPC."""

    def __str__(self) -> str:
        return str(self.strerror)


def _umask() -> int:
    try:  # Linux >= 4.7: read it without changing it (os.umask is process-wide, so racy with threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def creation_mode(path: Union[str, Path]) -> int:
    """The permission bits a plain ``open(path, "w")`` gives: those of the existing file, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists (another user's), or we cannot tell: keep its file
    return True


def remove_stale_temporaries(folder: Union[str, Path], name: Optional[str] = None) -> List[Path]:
    """Delete the temporary files that killed :func:`atomic_write` calls left in ``folder`` (only those whose
    writer process is gone; ``name`` restricts it to one target file). Returns the removed paths."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or (name is not None and match["name"] != name) or _pid_running(int(match["pid"])):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _free_space(folder: Path) -> str:
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "free space unknown"
    if free < 1024:
        return f"{free:.0f} bytes free"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        free /= 1024
        if free < 1024 or unit == "TiB":
            break
    return f"{free:.1f} {unit} free"


def _disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return True
    text = str(err)
    return "No space left on device" in text or (isinstance(err, RuntimeError) and "inline_container.cc" in text)


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

    Raises:
        DiskFullError: the disk (or quota) is full; ``path`` keeps its previous content.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "log.txt"
        >>> atomic_write(target, "w", lambda f: f.write("epoch 1\\n")).read_text()
        'epoch 1\\n'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    file_mode = creation_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, file_mode)
        except (AttributeError, OSError):  # pragma: no cover - no fchmod on Windows
            pass
        with os.fdopen(fd, mode, **open_kwargs) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if _disk_full(err) and not isinstance(err, DiskFullError):
            raise DiskFullError(errno.ENOSPC, f"cannot write {path}: No space left on device "
                                f"({_free_space(path.parent)} on {path.parent}); the previous {path.name} is "
                                f"kept. Free some space and rerun") from err
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
