"""A whole local stack (moto, gateways, Lambda workers) on free ports, driven from the tests.

The stack runs on an event loop in a background thread, as ``wsstack up`` runs it in its own
process; tests talk to it over real sockets from their own ``asyncio.run`` loops, and reach
its Python objects (the runtime) through :meth:`RunningStack.call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from wsstack.stack import LocalStack, StackInfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
#: Every start, call and scenario finishes well within this, or the test fails instead of hanging.
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
    """Start a stack for ``template`` on free ports in a background thread; stop it after."""
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
        with self._lock:
            return [r.getMessage() for r in self.records if r.name == logger]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    handler = LogLines()
    logger = logging.getLogger("wsstack")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture app to a temporary folder (for tests that edit its code); its template path."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        return target / "template.yaml"

    return copy


@pytest.fixture(name="run_stack")
def run_stack_fixture() -> Callable[..., contextlib.AbstractContextManager[RunningStack]]:
    """``with run_stack(template, **LocalStack options) as stack:`` a started stack."""
    return run_stack


@pytest.fixture(name="fixtures")
def fixtures_fixture() -> Path:
    """The folder of the small fixture apps (``sam_websocket_api``, ``raw_two_apis``)."""
    return FIXTURES


@pytest.fixture(scope="module")
def sam_app() -> Iterator[RunningStack]:
    """The SAM WebSocket API fixture app, shared by a module's tests (no hot reload)."""
    with run_stack(FIXTURES / "sam_websocket_api" / "template.yaml", code_check_interval=None) as stack:
        yield stack


@pytest.fixture(scope="module")
def raw_apis() -> Iterator[RunningStack]:
    """The raw two-API fixture app, shared by a module's tests."""
    with run_stack(FIXTURES / "raw_two_apis" / "template.yaml", code_check_interval=None) as stack:
        yield stack


@pytest.fixture(scope="module")
def features() -> Iterator[RunningStack]:
    """The API Gateway features fixture app (API keys, throttling, models, stage variables)."""
    with run_stack(FIXTURES / "apigw_features" / "template.yaml", code_check_interval=None) as stack:
        yield stack
