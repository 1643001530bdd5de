"""End-to-end fixtures: a real `wsstack up` process on free ports, real Cognito users.

Set CHAT_E2E_STACK_NAME (and AWS_REGION) to run the same tests against a deployed stack
instead; tests that need the emulator's internals are skipped there.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from chatclient import Backoff, ChatClient, ChatSession, Target, Tokens, ensure_user, remove_user_data, sign_in

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "wsstack: ready"
PASSWORD = "Passw0rd-e2e"


@dataclass
class RunningStack:
    target: Target
    state: dict[str, object]
    process: StackProcess | None
    local: bool
    #: Physical table names by logical id (the state file's resources, or the stack outputs).
    tables: dict[str, str]

    def dynamodb(self):  # type: ignore[no-untyped-def]
        if not self.local:
            return boto3.client("dynamodb", region_name=self.target.region)
        return boto3.client(
            "dynamodb", region_name=self.target.region, endpoint_url=self.target.aws_endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def table(self, logical_id: str) -> str:
        resources = self.state["resources"]
        assert isinstance(resources, dict)
        return str(resources[logical_id])


class ChildProcess:
    """A child process whose output (stdout and stderr) a thread drains line by line, so the
    child never blocks on a full pipe and tests can wait, bounded, for what it prints."""

    def __init__(self, argv: list[str], **popen: Any) -> None:
        popen.setdefault("cwd", ROOT)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
        #: Every line printed so far.
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, matches: Callable[[str], bool], timeout: float, failure: str) -> str:
        """The next line for which ``matches`` holds; AssertionError with ``failure`` and the
        output if none comes within ``timeout`` or the child ends first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"{failure}; it printed:\n" + "".join(self.output))
            if matches(line):
                return line

    def wait_drained(self, timeout: float) -> None:
        """Return once everything the (ended) child printed is in ``output``."""
        while self._lines.get(timeout=timeout) is not None:
            pass


class StackProcess(ChildProcess):
    """`wsstack up` on free ports."""

    def __init__(self, state_file: Path, *extra: str) -> None:
        super().__init__(
            [sys.executable, "-m", "wsstack.cli", "up", "--port", "0", "--tls-port", "0",
             "--emulator-port", "0", "--state-file", str(state_file), *extra]
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        try:
            self.expect(lambda line: line.startswith(READY_LINE), timeout, "the stack did not become ready")
        except AssertionError:
            self.proc.kill()
            raise

    def stop(self) -> int:
        """Ctrl-C, as a user would; the exit status."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def start_stack(state_file: Path, *extra: str) -> StackProcess:
    """Start `wsstack up` on free ports and return once it says it is ready."""
    stack = StackProcess(state_file, *extra)
    stack.wait_ready()
    return stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack_name = os.environ.get("CHAT_E2E_STACK_NAME")
    if stack_name:
        region = os.environ.get("AWS_REGION", "us-east-1")
        yield RunningStack(
            Target.from_cloudformation(stack_name, region), {}, None, local=False,
            tables=Target.tables_from_cloudformation(stack_name, region),
        )
        return
    yield from _local_stack(tmp_path_factory)


def _local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_file = tmp_path_factory.mktemp("stack") / "stack.json"
    proc = start_stack(state_file)
    state = json.loads(state_file.read_text())
    try:
        yield RunningStack(
            Target.from_state_file(state_file), state, proc, local=True,
            tables=Target.tables_from_state_file(state_file),
        )
    finally:
        proc.stop()
        # What the stack logged, shown by pytest when a test failed.
        sys.stderr.write("".join(proc.output)[-20000:])


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A local stack for one module alone: for tests that create and delete fixed names
    (the demo users alice and bob), which must not change the shared stack under others."""
    if os.environ.get("CHAT_E2E_STACK_NAME"):
        pytest.skip("needs a local stack of its own")
    yield from _local_stack(tmp_path_factory)


@pytest.fixture
def named_user(stack: RunningStack) -> Iterator[Callable[[str], tuple[str, Tokens]]]:
    """Create a fresh user (unique name) and sign them in: ``(username, tokens)``. At the end
    of the test every user made here is removed with everything stored about them, so no
    test data remains."""
    made: dict[str, str | None] = {}  # username -> sub (None until sign-in told us)

    def make(label: str) -> tuple[str, Tokens]:
        username = f"{label}-{uuid.uuid4().hex[:8]}"
        # Recorded before anything can fail, so a half-made user is removed as well.
        made[username] = None
        ensure_user(stack.target, username, PASSWORD, name=label.title(), email=f"{username}@example.com")
        tokens = sign_in(stack.target, username, PASSWORD)
        made[username] = tokens.sub
        return username, tokens

    yield make
    for username, sub in made.items():
        remove_user_data(stack.target, stack.tables, sub, username)


@pytest.fixture
def new_user(named_user: Callable[[str], tuple[str, Tokens]]) -> Callable[[str], Tokens]:
    """Like ``named_user``, for tests that need only the tokens."""
    return lambda label: named_user(label)[1]


def run(scenario: Callable[[], Awaitable[Any]], timeout: float = 120.0) -> Any:
    """Run an asyncio scenario of the reference client, bounded in time."""

    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await scenario()

    return asyncio.run(bounded())


def client_for(stack: RunningStack, tokens: Tokens, **options: Any) -> ChatClient:
    """A reference client on the stack, with a short backoff so reconnects stay quick."""
    options.setdefault("backoff", Backoff(base=0.05, max_delay=0.5))
    return ChatClient.for_target(stack.target, tokens, **options)


#: How long to keep reading after the event a check is about, to see what must not come
#: twice: longer than the stack takes to answer the frames still in flight.
AFTER = 1.5


def frames_within(session: ChatSession, seconds: float = AFTER) -> list[dict[str, Any]]:
    """Every frame that arrives in the next ``seconds`` (a bounded window after an event)."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(session.receive(timeout=left))
        except TimeoutError:
            break
    return frames
