"""Disabling a user: their open connections close and they cannot connect again, although
the ID token they hold stays valid (Cognito does not revoke it)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatclient import ChatClient, Target
from chatclient.events import ConnectionState, ConnectionStateChanged

from .conftest import ROOT, RunningStack, client_for, run, start_stack

pytestmark = pytest.mark.e2e

SCRIPT = ROOT / "scripts" / "disable_user.py"
#: This test's stack keeps the authorizer's answers 1 s (USER_STATUS_CACHE_SECONDS), so the
#: grace period the script waits out is short. A deployed stack keeps them 60 s.
CACHE_SECONDS = 1
WAIT = 30.0


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("disable") / "stack.json"


@pytest.fixture(scope="module")
def stack(state_file: Path) -> Iterator[RunningStack]:
    """A stack of its own, with the authorizer's cache shortened (overrides the session one)."""
    stack_name = os.environ.get("CHAT_E2E_STACK_NAME")
    if stack_name:
        region = os.environ.get("AWS_REGION", "us-east-1")
        yield RunningStack(Target.from_cloudformation(stack_name, region), {}, None, local=False,
                           tables=Target.tables_from_cloudformation(stack_name, region))
        return
    directory = state_file.parent
    env_vars = json.loads((ROOT / "env.local.json").read_text())
    env_vars["AuthorizerFunction"] = {"USER_STATUS_CACHE_SECONDS": str(CACHE_SECONDS)}
    (directory / "env.json").write_text(json.dumps(env_vars))
    proc = start_stack(state_file, "--env-vars", str(directory / "env.json"), "--no-persist")
    try:
        yield RunningStack(Target.from_state_file(state_file), json.loads(state_file.read_text()), proc,
                           local=True, tables=Target.tables_from_state_file(state_file))
    finally:
        proc.stop()
        sys.stderr.write("".join(proc.output)[-20000:])


def disable_user(stack: RunningStack, state_file: Path, username: str) -> subprocess.CompletedProcess[str]:
    """Run the admin command as an operator would."""
    where = ["--state-file", str(state_file)] if stack.local else ["--stack-name", os.environ["CHAT_E2E_STACK_NAME"]]
    grace = str(CACHE_SECONDS + 2) if stack.local else "65"
    return subprocess.run([sys.executable, str(SCRIPT), username, *where, "--grace", grace],
                          capture_output=True, text=True, timeout=120, check=False)


async def handshake_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=10):
            pass
    return refused.value.response.status_code


def test_disabling_a_user_closes_their_connections_and_refuses_them_from_then_on(stack, state_file, named_user):
    username, tokens = named_user("mallory")
    _, bystander_tokens = named_user("bob")
    url = f"{stack.target.websocket_url}?token={tokens.id_token}"

    async def scenario() -> tuple[subprocess.CompletedProcess[str], int | None, str | None, int, ConnectionState]:
        stopped = asyncio.Event()
        client: ChatClient = client_for(stack, tokens)
        bystander = client_for(stack, bystander_tokens)

        def on_event(event: object) -> None:
            if isinstance(event, ConnectionStateChanged) and event.state is ConnectionState.CLOSED:
                stopped.set()

        client.subscribe(on_event)
        async with client, bystander, connect(url) as second_device:
            await client.wait_online(WAIT)
            await bystander.wait_online(WAIT)

            done = await asyncio.to_thread(disable_user, stack, state_file, username)

            # The second device's socket was closed by the @connections DELETE (1000).
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(second_device.recv(), WAIT)
            # The app's client reconnects at once, is refused (403) even with a refreshed token,
            # and stops: the user must sign in again, which Cognito no longer allows.
            await asyncio.wait_for(stopped.wait(), WAIT)
            refused = await handshake_status(url)
            return done, second_device.close_code, client.stop_reason, refused, bystander.state

    done, close_code, stop_reason, refused, bystander_state = run(scenario)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Closed 2 open connection(s)" in done.stdout
    assert close_code == 1000
    assert stop_reason is not None and stop_reason.startswith("sign in again")
    assert refused == 403
    assert bystander_state is ConnectionState.ONLINE  # nobody else is touched
    user = stack.target.cognito().admin_get_user(UserPoolId=stack.target.user_pool_id, Username=username)
    assert user["Enabled"] is False


def test_an_unknown_user_is_a_one_line_error(stack, state_file):
    done = disable_user(stack, state_file, "nobody-by-this-name")

    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"scripts/disable_user.py: no user 'nobody-by-this-name' in user pool {stack.target.user_pool_id}."
    )
    assert "Traceback" not in done.stderr
