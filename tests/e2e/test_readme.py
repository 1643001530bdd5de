"""The README's examples, run as a reader would run them against a running stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatclient import Tokens, ensure_user, remove_user_data, sign_in

from .conftest import ROOT, ChildProcess

pytestmark = pytest.mark.e2e

README = (ROOT / "README.md").read_text(encoding="utf-8")
#: The demo users' password, as the README shows it.
DEMO_PASSWORD = "Passw0rd-demo"
#: Where the README's examples expect the stack: `make up`'s default port.
README_URL = "ws://127.0.0.1:3001/dev"
BIN = Path(sys.executable).parent


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


@pytest.fixture
def stack(own_stack):
    """Its own stack: the examples need the demo users by name, created and removed here."""
    return own_stack


@pytest.fixture
def demo_users(stack) -> Iterator[dict[str, Tokens]]:
    """alice and bob with the README's password, removed with their data afterwards."""
    if not stack.local:
        pytest.skip("the README's examples use the local stack")
    users = {}
    try:
        for name in ("alice", "bob"):
            ensure_user(stack.target, name, DEMO_PASSWORD, name=name.title(), email=f"{name}@example.com")
            users[name] = sign_in(stack.target, name, DEMO_PASSWORD)
        yield users
    finally:
        for name in ("alice", "bob"):
            remove_user_data(stack.target, stack.tables, users[name].sub if name in users else None, name)


def test_the_python_example_sends_to_bob_and_reads_the_ack_and_the_sync(stack, demo_users, tmp_path):
    [example] = [block for block in code_blocks("python") if "ChatSession" in block]
    # The example names bob by the sub users.local.json gives him.
    [readme_sub] = re.findall(r'bob_sub = "([0-9a-f-]{36})"', example)
    users = json.loads((ROOT / "users.local.json").read_text())["UserPool"]
    assert readme_sub == next(user["sub"] for user in users if user["username"] == "bob")
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "stack.json").write_text(json.dumps(stack.state))

    result = subprocess.run(
        [sys.executable, "-c", example.replace(readme_sub, demo_users["bob"].sub)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stderr
    ack, sync, history = result.stdout.splitlines()
    assert "'type': 'ack'" in ack and "'status': 'sent'" in ack
    assert "'type': 'sync'" in sync
    assert "'type': 'history'" in history and "'content': 'hi bob'" in history


def test_the_printed_token_opens_a_session_in_websockets_own_client(stack, demo_users, tmp_path):
    [example] = [block for block in code_blocks("sh") if "--print-token" in block]
    assert f'"{README_URL}?token=$TOKEN"' in example
    state_file = tmp_path / "stack.json"
    state_file.write_text(json.dumps(stack.state))
    token = subprocess.run(
        [str(BIN / "chat"), "--state-file", str(state_file), "-u", "alice", "-p", DEMO_PASSWORD, "--print-token"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    assert token.count(".") == 2  # a JWT

    client = ChildProcess([str(BIN / "websockets"), f"{stack.state['websocket_url']}?token={token}"],
                          stdin=subprocess.PIPE)
    try:
        client.expect(lambda line: line.startswith("Connected to"), 30, "the client did not connect")
        assert client.proc.stdin is not None
        client.proc.stdin.write('{"action": "ping"}\n')
        client.proc.stdin.flush()
        client.expect(lambda line: '"type":"pong"' in line, 30, "no pong came back")
    finally:
        client.proc.kill()
        client.proc.wait(timeout=10)
