"""Give the operating system back the heap a process freed after its start-up."""

from __future__ import annotations

import ctypes
import gc

__all__ = ["release_free_memory"]


def release_free_memory() -> None:
    """Collect garbage, then have the C allocator return its free pages to the system.

    Start-up parses large inputs once (the template, botocore's data files) and frees most of
    what it built; glibc keeps those pages for reuse unless asked, so the process would stay
    that much larger for its whole life. Elsewhere than glibc this only collects garbage.
    """
    gc.collect()
    try:
        # The process's own symbols, the C library's among them: no search for its file.
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
