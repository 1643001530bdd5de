"""Child processes that end when the process that started them ends, however it ends.

A process killed with SIGKILL (or by a closed terminal, or the OOM killer) runs no cleanup, so
a child that waits for its parent to stop it would run on, holding its ports. Two mechanisms
make a child notice instead:

* a **lifeline**: a pipe whose write end only the parent holds. The kernel closes it when the
  parent exits, whatever ends it, and the child, which watches the read end, sees end of file.
  It is portable and does not care which of the parent's threads started the child, so it is
  what a child started from any thread gets (``wsstack up`` started by the pytest plugin,
  Lambda workers the stack spawns). The emulator and the fork server watch a pipe of their
  own already (their stdin, their control socket).
* Linux's **parent-death signal** (``prctl(PR_SET_PDEATHSIG)``): the kernel signals the child
  when its parent ends, even while the child cannot run a line of Python. It fires when the
  *thread* that forked the child ends, not the process, so it is only used where that thread
  lives as long as the process: workers forked by the single-threaded fork server, and a
  seed command (someone else's program, which watches no pipe) started by ``wsstack up``'s
  main thread.

A lifeline's write end is not inherited by programs the parent starts (descriptors are
close-on-exec), only by plain ``fork()`` children of the parent, which keep it open as long
as they live.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
from collections.abc import Callable

__all__ = ["ENV_VAR", "Lifeline", "can_die_with_parent", "die_with_parent", "main", "wrapped"]

#: The variable that tells ``wsstack up`` which descriptor is its lifeline (see
#: :class:`Lifeline`); read once and removed, so that nothing the stack starts sees it.
ENV_VAR = "WSSTACK_LIFELINE_FD"

_PR_SET_PDEATHSIG = 1


class Lifeline:
    """A pipe a child watches for end of file: the parent's side.

    Pass :attr:`child_fd` to the child (``pass_fds``) and tell it the number, then call
    :meth:`started`. The child watches it (``wsstack up`` with ``loop.add_reader``, a spawned
    worker on a thread of its own) and ends once a read returns end of file. The parent keeps
    the write end until :meth:`cut`, or until it exits, which closes it however it ends.
    """

    def __init__(self) -> None:
        self.child_fd, self._write_fd = os.pipe()  # both close-on-exec

    def started(self) -> None:
        """The child has its copy of the read end: close ours."""
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1

    def cut(self) -> None:
        """Close the write end (the child sees end of file); idempotent."""
        self.started()
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def can_die_with_parent() -> bool:
    """Whether :func:`die_with_parent` works here; a process that forks calls it once first,
    so that its children find the C library already loaded."""
    return _prctl() is not None


def die_with_parent(signum: int, parent: int) -> bool:
    """Have the kernel send ``signum`` to this process when its parent ends (Linux only).

    Called in a child right after ``fork()``. ``parent`` is the parent's pid as the parent
    knew it before the fork: if it has already gone by the time the request is made, no
    signal would ever come, so the signal is sent at once. Returns False where the kernel
    has no such request (then nothing was done).

    The signal comes when the parent's *thread* that forked this process ends: call it only
    in children of a process whose forking thread lives as long as it does.
    """
    prctl = _prctl()
    if prctl is None or prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # it ended between the fork and the request
        os.kill(os.getpid(), signum)
    return True


def wrapped(command: list[str]) -> list[str]:
    """``command`` run so that it gets SIGTERM when this process ends (see :func:`main`).

    For a program of someone else's (a seed command), which watches no lifeline. Only on
    Linux and only for a command that resolves; otherwise ``command`` as it is. Call it
    from the thread that starts the process, and only if that thread lives as long as the
    process does (the main thread).
    """
    if not can_die_with_parent() or not command or shutil.which(command[0]) is None:
        return command
    return [sys.executable, "-m", "wsstack.lifeline", str(os.getpid()), *command]


def main(argv: list[str] | None = None) -> None:
    """``python -m wsstack.lifeline PID COMMAND...``: become COMMAND, set to get SIGTERM
    when our parent, PID, ends (the parent-death signal survives ``exec``)."""
    args = sys.argv[1:] if argv is None else argv
    die_with_parent(signal.SIGTERM, int(args[0]))
    os.execvp(args[1], args[1:])


if __name__ == "__main__":
    main()
