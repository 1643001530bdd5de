"""End-to-end fixtures: a real `wsstack up` process on free ports, real Cognito users.

Set CHAT_E2E_STACK_NAME (and AWS_REGION) to run the same tests against a deployed stack
instead; tests that need the emulator's internals are skipped there.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from chatclient import Backoff, ChatClient, ChatSession, Target, Tokens, ensure_user, remove_user_data, sign_in
from wsstack import pytest_plugin as plugin

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = plugin.READY_LINE
PASSWORD = "Passw0rd-e2e"


@dataclass
class RunningStack:
    target: Target
    state: dict[str, object]
    process: plugin.StackProcess | None
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


class ChildProcess(plugin.ChildProcess):
    """A child process (run in the repository) whose output a thread drains line by line, so
    tests can wait, bounded, for what it prints."""

    def __init__(self, argv: list[str], **popen: Any) -> None:
        popen.setdefault("cwd", ROOT)
        super().__init__(argv, **popen)


class StackProcess(plugin.StackProcess):
    """`wsstack up` on free ports, run in the repository."""

    def __init__(self, state_file: Path, *extra: str, **popen: Any) -> None:
        popen.setdefault("cwd", ROOT)
        super().__init__(state_file, *extra, **popen)


def start_stack(state_file: Path, *extra: str) -> StackProcess:
    """Start `wsstack up` on free ports and return once it says it is ready."""
    stack = StackProcess(state_file, *extra)
    stack.wait_ready()
    return stack


@pytest.fixture(scope="session")
def stack(pytestconfig: pytest.Config, wsstack_stacks: plugin.Stacks) -> Iterator[RunningStack]:
    """The stack the tests share: the pytest plugin's stack of the project's template (the one
    its ``wsstack`` fixture gives), or the deployed stack CHAT_E2E_STACK_NAME names."""
    stack_name = os.environ.get("CHAT_E2E_STACK_NAME")
    if stack_name:
        region = os.environ.get("AWS_REGION", "us-east-1")
        yield RunningStack(
            Target.from_cloudformation(stack_name, region), {}, None, local=False,
            tables=Target.tables_from_cloudformation(stack_name, region),
        )
        return
    # Stopped by the plugin when the run ends; its log is attached to the tests that fail.
    yield _running(wsstack_stacks.get(plugin.stack_config(pytestconfig)))


def _running(local: plugin.Stack) -> RunningStack:
    return RunningStack(
        Target.from_state_file(local.state_file), local.state, local.process, local=True,
        tables=Target.tables_from_state_file(local.state_file),
    )


@pytest.fixture(scope="module")
def own_stack(pytestconfig: pytest.Config, wsstack_stacks: plugin.Stacks) -> Iterator[RunningStack]:
    """A local stack for one module alone: for tests that create and delete fixed names
    (the demo users alice and bob), which must not change the shared stack under others."""
    if os.environ.get("CHAT_E2E_STACK_NAME"):
        pytest.skip("needs a local stack of its own")
    local = wsstack_stacks.start(plugin.stack_config(pytestconfig))
    try:
        yield _running(local)
    finally:
        wsstack_stacks.stop(local)


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
