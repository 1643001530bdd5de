"""One running stack per state file and per data folder: an advisory lock naming its holder.

A lock taken with ``flock`` belongs to an open file, not to a name: the system releases it
when its last holder exits, however it exits (Ctrl-C, a crash, ``kill -9``), so a stack that
died never leaves a stale lock behind, and a recycled pid cannot pass for a running stack.
The file holds its holder's pid, for messages, and is removed on release; a file left by a
process that died is simply locked again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; every lock is granted (one stack per file is then up to you)
    fcntl = None  # type: ignore[assignment]

__all__ = ["LockFile", "LockHeld"]


class LockHeld(Exception):
    """Another process holds the lock.

    Attributes:
        path: the lock file.
        pid: the holder's pid as it wrote it, or None if unknown.
    """

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path} is held by {'pid ' + str(pid) if pid else 'another process'}")
        self.path = path
        self.pid = pid


class LockFile:
    """An exclusive lock on ``path``, held until :meth:`release` or until this process and
    every child it passed :meth:`fileno` to have exited."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path) -> LockFile:
        """Take the lock, creating the file (and its folder) if needed; never waits.

        Raises:
            LockHeld: a running process holds it.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(_ATTEMPTS):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # The holder may have removed the file between our open and our lock: then
                # we hold a file nobody else will find, and try again with the new one.
                if _same_file(fd, path):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                    return cls(path, fd)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise LockHeld(path, pid) from None
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise LockHeld(path, None)

    def fileno(self) -> int:
        """The locked descriptor: a child given it (``pass_fds``) holds the lock as long as it lives."""
        if self._fd is None:
            raise ValueError(f"the lock on {self.path} was released")
        return self._fd

    def release(self) -> None:
        """Remove the file and let go of the lock; idempotent.

        A child still holding :meth:`fileno` keeps its hold (on a file no longer named).
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            # Removed while still locked, so that nobody locks it between the two steps.
            with contextlib.suppress(OSError):
                if _same_file(fd, self.path):
                    self.path.unlink()
            os.close(fd)


#: Tries at taking a lock whose file keeps being replaced, before calling it held.
_ATTEMPTS = 10


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None
