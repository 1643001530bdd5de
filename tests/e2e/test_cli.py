"""The `wsstack up` process itself: state file, clean Ctrl-C, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, start_stack

pytestmark = pytest.mark.e2e


def test_up_writes_its_state_and_ctrl_c_stops_everything(tmp_path):
    state_file = tmp_path / "stack.json"
    proc = start_stack(state_file)
    state = json.loads(state_file.read_text())
    assert state["websocket_url"].startswith("ws://127.0.0.1:")
    assert state["user_pool_id"] and state["user_pool_client_id"]
    assert set(state["resources"]) >= {"ConnectionsTable", "MessagesTable", "UserPool"}

    assert proc.stop() == 0
    assert not state_file.exists()


def test_a_missing_template_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "up", "--template", str(tmp_path / "nope.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_invoke_runs_one_function_on_a_sample_event_without_docker():
    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "invoke", "AuthorizerFunction", "-e", "events/authorizer.json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)
    # The sample token is not signed by this pool: the authorizer denies it.
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "AuthorizerFunction" in result.stderr  # the invocation's log line


def test_invoke_names_the_known_functions_when_given_an_unknown_one():
    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "invoke", "NopeFunction"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "SendMessageFunction" in result.stderr
    assert "Traceback" not in result.stderr
