"""The seed script leaves the demo users and a conversation with one message waiting for bob, once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chatclient import ChatSession, sign_in

from .conftest import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(own_stack):
    """Its own stack: the seed creates and removes the demo users, whom others may use."""
    return own_stack


def test_seed_creates_alice_and_bob_and_a_message_waiting_for_bob(stack, tmp_path):
    if not stack.local:
        pytest.skip("seeds the local stack only here")
    state_file = tmp_path / "stack.json"
    # As `make up` runs it, with the web chat: the seed names where to open it.
    state_file.write_text(json.dumps({**stack.state, "site_url": "http://127.0.0.1:3999/"}))

    def seed(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "scripts/seed.py", "--state-file", str(state_file), "--password", "Passw0rd-seed",
             *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )

    result = seed()
    assert result.returncode == 0, result.stderr
    assert "alice" in result.stdout and "bob" in result.stdout
    assert "Web chat   http://127.0.0.1:3999/  (open it in two windows" in result.stdout
    try:
        # `make up` seeds on every start, and a restarted stack still holds the conversation.
        again = seed()
        assert again.returncode == 0, again.stderr
        assert "(kept from the last run)" in again.stdout
        bob = sign_in(stack.target, "bob", "Passw0rd-seed")
        with ChatSession(stack.target, bob.id_token, confirm=False) as b:
            b.send("syncMessages")
            sync = b.receive_until("sync")
        contents = [m["content"] for m in sync["messages"]]
        assert contents == ["Sent while you were away: sync to see me."]
    finally:
        # The demo users go again, with their conversation: no test data remains.
        removed = seed("--remove")
    assert removed.returncode == 0, removed.stderr
    cognito = stack.target.cognito()
    for username in ("alice", "bob"):
        with pytest.raises(cognito.exceptions.UserNotFoundException):
            cognito.admin_get_user(UserPoolId=stack.target.user_pool_id, Username=username)
