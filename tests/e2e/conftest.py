"""End-to-end fixtures: a real `wsstack up` process on free ports, real Cognito users.

Set CHAT_E2E_STACK_NAME (and AWS_REGION) to run the same tests against a deployed stack
instead; tests that need the emulator's internals are skipped there.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from chatclient import Target, Tokens, ensure_user, sign_in

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "wsstack: ready"
PASSWORD = "Passw0rd-e2e"


@dataclass
class RunningStack:
    target: Target
    state: dict[str, object]
    process: subprocess.Popen[str] | None
    local: bool

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


def start_stack(state_file: Path, *extra: str, timeout: float = 60.0) -> subprocess.Popen[str]:
    """Start `wsstack up` on free ports and return once it prints its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsstack.cli", "up", "--port", "0", "--management-port", "0",
         "--emulator-port", "0", "--state-file", str(state_file), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and proc.poll() is None:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith(READY_LINE):
                return proc
    proc.kill()
    raise AssertionError("the stack did not become ready:\n" + "".join(seen))


def stop_stack(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack_name = os.environ.get("CHAT_E2E_STACK_NAME")
    if stack_name:
        region = os.environ.get("AWS_REGION", "us-east-1")
        yield RunningStack(Target.from_cloudformation(stack_name, region), {}, None, local=False)
        return
    state_file = tmp_path_factory.mktemp("stack") / "stack.json"
    proc = start_stack(state_file)
    state = json.loads(state_file.read_text())
    try:
        yield RunningStack(Target.from_state_file(state_file), state, proc, local=True)
    finally:
        stop_stack(proc)
        # Drain what the stack logged so a failure shows it.
        if proc.stdout is not None:
            sys.stderr.write(proc.stdout.read()[-20000:])


@pytest.fixture
def new_user(stack: RunningStack) -> Callable[[str], Tokens]:
    """Create a fresh user (unique name) and sign them in."""

    def make(label: str) -> Tokens:
        username = f"{label}-{uuid.uuid4().hex[:8]}"
        ensure_user(stack.target, username, PASSWORD, name=label.title(), email=f"{username}@example.com")
        return sign_in(stack.target, username, PASSWORD)

    return make
