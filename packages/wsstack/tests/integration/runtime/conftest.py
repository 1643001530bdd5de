"""Shared helpers: functions from the fixture handlers, and a runtime run for one scenario."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from wsstack.forkserver import FORK_AVAILABLE
from wsstack.model import Function
from wsstack.runtime import LambdaRuntime

FIXTURES = Path(__file__).parent / "fixtures"
#: Every scenario finishes well within this, or the test fails instead of hanging.
BOUND = 30.0


def _function(logical_id: str, handler: str, **fields: Any) -> Function:
    return Function(logical_id=logical_id, handler=handler, runtime="python3.13", code_dir=FIXTURES, **fields)


@pytest.fixture
def function() -> Callable[..., Function]:
    """Build a function whose code is the fixture handlers, e.g. ``function("Echo", "handlers.echo")``."""
    return _function


Scenario = Callable[[LambdaRuntime], Awaitable[Any]]


@pytest.fixture(params=[
    pytest.param("fork", marks=pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork() here")),
    "spawn",
])
def worker_start(request: pytest.FixtureRequest) -> str:
    """Every runtime scenario runs with forked workers and with spawned ones."""
    return str(request.param)


@pytest.fixture
def run_runtime(worker_start: str) -> Callable[..., Any]:
    """Run ``scenario(runtime)`` on a started runtime holding the given functions, then stop it.

    Functions are given as ``(Function, environment)`` pairs; keyword arguments go to
    :class:`LambdaRuntime` (``worker_start`` is the fixture's unless given). Returns what the
    scenario returns.
    """

    def run(scenario: Scenario, *functions: tuple[Function, dict[str, str]], **options: Any) -> Any:
        options.setdefault("worker_start", worker_start)

        async def main() -> Any:
            runtime = LambdaRuntime(**options)
            for fn, environment in functions:
                runtime.add_function(fn, environment)
            await runtime.start()
            try:
                return await asyncio.wait_for(scenario(runtime), BOUND)
            finally:
                await runtime.stop()

        return asyncio.run(main())

    return run


class Rendezvous:
    """A local TCP server the ``hold`` action connects to; it holds handlers until told.

    Handlers are held until ``count`` of them run at the same time, then all are let go,
    and later ones go at once. ``pids`` lists the worker of every handler that arrived.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.pids: list[int] = []
        self.arrived = asyncio.Event()
        self.all_held = asyncio.Event()
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Rendezvous:
        self._server = await asyncio.start_server(self._on_handler, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        assert self._server is not None
        self._server.close()

    async def _on_handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pids.append(int(await reader.readline()))
        self._held.append(writer)
        self.arrived.set()
        if self.all_held.is_set() or len(self._held) >= self.count:
            self.all_held.set()
            self.release()

    def release(self) -> None:
        for writer in self._held:
            writer.write(b"go\n")
            writer.close()
        self._held.clear()


@pytest.fixture
def rendezvous() -> type[Rendezvous]:
    return Rendezvous


@pytest.fixture
def alive() -> Callable[[int], bool]:
    """Whether a process (a worker) still exists."""

    def check(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    return check
