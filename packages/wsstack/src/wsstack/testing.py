"""In-process helpers for tests that drive a whole local stack from Python.

:func:`run_stack` starts a :class:`~wsstack.stack.LocalStack` (moto, gateways, Lambda workers)
on free ports, on an event loop in a background thread, as ``wsstack up`` runs it in its own
process. Tests talk to it over real sockets from their own ``asyncio.run`` loops and reach its
Python objects (the runtime) through :meth:`RunningStack.call`. :func:`captured_logs` keeps
what the ``wsstack`` loggers say meanwhile. (For a stack in a process of its own, started for a
whole test run, use the pytest plugin, :mod:`wsstack.pytest_plugin`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from wsstack.stack import LocalStack, StackInfo

__all__ = ["BOUND", "LogLines", "RunningStack", "captured_logs", "run_stack"]

#: Every start, call and stop finishes well within this, or the test fails instead of hanging.
BOUND = 60.0


class RunningStack:
    """A started :class:`LocalStack` and the loop it runs on."""

    def __init__(self, stack: LocalStack, info: StackInfo, loop: asyncio.AbstractEventLoop) -> None:
        self.stack = stack
        self.info = info
        self.loop = loop

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the stack's loop (e.g. ``stack.runtime.invoke(...)``) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(BOUND)

    def url(self, api: str, stage: str | None = None) -> str:
        """The WebSocket URL of one API's stage (its first stage by default)."""
        for served in self.info.apis:
            if served.api == api and stage in (None, served.stage):
                return served.websocket_url
        raise LookupError(f"{api} {stage} is not served")


@contextlib.contextmanager
def run_stack(template: Path, **options: Any) -> Iterator[RunningStack]:
    """Start a stack for ``template`` on free ports in a background thread; stop it after.

    ``options`` are :class:`LocalStack`'s (``parameters``, ``code_check_interval``, ...).
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = LocalStack(template, emulator_port=0, **options)
    try:
        info = asyncio.run_coroutine_threadsafe(stack.start(), loop).result(BOUND)
        yield RunningStack(stack, info, loop)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stack.stop(), loop).result(BOUND)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(BOUND)
        loop.close()


class LogLines(logging.Handler):
    """Keeps what the ``wsstack`` loggers say while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.records.append(record)

    def messages(self, logger: str) -> list[str]:
        """What one logger (``wsstack.runtime``, ...) said, in order."""
        with self._lock:
            return [r.getMessage() for r in self.records if r.name == logger]


@contextlib.contextmanager
def captured_logs(level: int = logging.INFO) -> Iterator[LogLines]:
    """Keep the ``wsstack`` loggers' records at ``level`` and above while the block runs."""
    handler = LogLines()
    logger = logging.getLogger("wsstack")
    previous = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
