"""Every sample event in events/ replayed through the real `wsstack invoke`, as a developer would.

Most events are replayed against one running `wsstack up` (what a developer with `make up`
open gets): in the order of the conversation they tell, each sees what the ones before it
stored. A few run on a stack of their own (`--fresh`, or no state file), where each event
finds empty tables. The events name an AWS host as their domainName; `invoke` points them at
the local gateway, so the frames the functions post reach it and get its answers (410 for
the recorded connections, which are not open here).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from .conftest import ROOT, start_stack

pytestmark = pytest.mark.e2e

EVENTS = ROOT / "events"
#: The message events/send_message.json sends; the later events act on it.
SAMPLE_MESSAGE_ID = "5b1f0c1e-8a9d-4c41-9f4e-2d7a3c6b8e10"
#: What a function logs when @connections answers 410 for the connection it posts to: the
#: recorded connection ids are not open on the local gateway, so that is the frame's fate.
GONE = '"message":"Connection gone; forgetting it"'


@dataclass(frozen=True)
class Replay:
    """What replaying one event gives against the running stack, after the events before it."""

    #: The function, by logical id.
    function: str
    #: The result's statusCode; None for the authorizer, whose result is a policy.
    status: int | None
    #: Text the printed result or the log shows (empty: nothing beyond the status).
    shows: str = ""
    #: The sample message's state in the stack's Messages table afterwards, if it changes.
    message: dict[str, Any] | None = None


#: Every sample event, in the order of the conversation they tell. A new file in events/
#: without an entry here fails test_every_sample_event_has_a_documented_replay.
REPLAYS: dict[str, Replay] = {
    # The sample token is not signed by the local pool: denied, as AWS's authorizer would.
    "authorizer.json": Replay("AuthorizerFunction", None, '"Effect": "Deny"'),
    "connect.json": Replay("ConnectFunction", 200),
    # Alice's sync page goes to her recorded connection: 410, and the function forgets it.
    "sync_messages.json": Replay("SyncMessagesFunction", 200, GONE),
    "send_message.json": Replay("SendMessageFunction", 200, GONE, {"status": "sent", "isDeleted": False}),
    # Bob's device confirms the message (ackMessages answers nothing to the caller).
    "ack_messages.json": Replay("AckMessagesFunction", 200, "", {"status": "delivered"}),
    "mark_read.json": Replay("MarkReadFunction", 200, GONE, {"status": "read"}),
    "list_conversations.json": Replay("ListConversationsFunction", 200, GONE),
    "find_users.json": Replay("FindUsersFunction", 200, GONE),
    # An unknown action: the VALIDATION_ERROR frame, statusCode 400.
    "default.json": Replay("DefaultFunction", 400, "Unknown action 'typing'"),
    # Two-way: the pong is the result's body, no @connections post.
    "ping.json": Replay("PingFunction", 200, '\\"type\\":\\"pong\\"'),
    "delete_message.json": Replay("DeleteMessageFunction", 200, "", {"isDeleted": True, "content": ""}),
    # Alice reads the conversation back (its tombstone); the page goes to her recorded connection.
    "get_history.json": Replay("GetHistoryFunction", 200, GONE, {"isDeleted": True, "status": "read"}),
    "disconnect.json": Replay("DisconnectFunction", 200),
}


@dataclass
class Invoked:
    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Any:
        return json.loads(self.stdout)


def invoke(function: str, event: str, *options: str, stdin: str | None = None) -> Invoked:
    done = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "invoke", function, "-e", event, *options],
        cwd=ROOT, capture_output=True, text=True, timeout=120, input=stdin,
    )
    return Invoked(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`wsstack up` on free ports; its state file."""
    state_file = tmp_path_factory.mktemp("replay") / "stack.json"
    proc = start_stack(state_file)
    try:
        yield state_file
    finally:
        proc.stop()


def sample_message(state_file: Path) -> dict[str, Any] | None:
    """The sample message as the running stack's Messages table holds it (plain values)."""
    state = json.loads(state_file.read_text())
    client = boto3.client(
        "dynamodb", region_name=state["region"], endpoint_url=state["aws_endpoint"],
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    item = client.get_item(TableName=state["resources"]["MessagesTable"], Key={"messageId": {"S": SAMPLE_MESSAGE_ID}})
    if "Item" not in item:
        return None
    return {key: value.get("S", value.get("BOOL")) for key, value in item["Item"].items()}


def test_every_sample_event_has_a_documented_replay():
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(REPLAYS)


def replay(name: str, state_file: Path) -> list[str]:
    """Replay one event against the running stack; what differs from its documented result."""
    expected = REPLAYS[name]
    done = invoke(expected.function, f"events/{name}", "--state-file", str(state_file))
    where = f"{name} ({expected.function}), exit {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}"
    result = done.result if done.stdout.strip() else None
    status = result.get("statusCode") if isinstance(result, dict) else None
    if done.returncode != 0 or status != expected.status:
        return [f"expected statusCode {expected.status}, exit 0: {where}"]
    problems = []
    if expected.shows not in done.stdout + done.stderr:
        problems.append(f"expected {expected.shows!r} in the result or the log: {where}")
    # The function used the running stack, and the event was pointed at its gateway.
    if "using the running stack" not in done.stderr or "it now names the local gateway" not in done.stderr:
        problems.append(f"expected the running stack and its gateway: {where}")
    # Refusals and 410s are not errors: nothing is logged at ERROR.
    if re.search(r"^\S+ ERROR ", done.stderr, re.MULTILINE) or "Traceback" in done.stderr:
        problems.append(f"expected no ERROR line: {where}")
    if expected.message is not None:
        stored = sample_message(state_file) or {}
        if {key: stored.get(key) for key in expected.message} != expected.message:
            problems.append(f"expected the sample message to hold {expected.message}, it holds {stored}: {where}")
    return problems


def test_every_sample_event_replays_against_a_running_stack_with_its_documented_result(running):
    # The sample events' users are alice and bob of users.local.json, which the stack created
    # with the subs the events name. In the table's order: each event sees what the ones before it stored.
    problems = [problem for name in REPLAYS for problem in replay(name, running)]

    assert not problems, "\n\n".join(problems)


def test_a_failing_function_exits_1_and_its_error_lines_are_errors(running, tmp_path):
    state_file = running
    # A table that does not exist: the write fails, the function answers statusCode 500.
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"Parameters": {"MESSAGES_TABLE": "Messages_missing"}}))

    failed = invoke("SendMessageFunction", "events/send_message.json", "--state-file", str(state_file),
                    "--env-vars", str(env_vars))
    # No requestContext at all: the handler raises.
    raised = invoke("PingFunction", "-", "--state-file", str(state_file), stdin="{}")

    assert failed.returncode == 1
    assert failed.result == {"statusCode": 500}
    assert re.search(r"^\S+ ERROR wsstack\.fn\.SendMessageFunction: .*\"message\":\"Unhandled error\"",
                     failed.stderr, re.MULTILINE)
    assert "answered statusCode 500" in failed.stderr
    assert raised.returncode == 1
    assert raised.result["errorType"] == "KeyError"
    assert re.search(r"^\S+ ERROR wsstack\.fn\.PingFunction: \[ERROR\] KeyError", raised.stderr, re.MULTILINE)


def test_the_readme_example_runs_alone_on_a_stack_of_its_own(tmp_path):
    # No state file: what a newcomer gets before `make up`. The stack made for the run has the
    # users of users.local.json, so the sample's sender and recipient exist.
    done = invoke("SendMessageFunction", "events/send_message.json", "--state-file", str(tmp_path / "none.json"))

    assert done.returncode == 0, done.stderr
    assert done.result == {"statusCode": 200}
    assert "starting an emulator and a gateway for this run" in done.stderr
    assert "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev, which is not served here" in done.stderr
    # The ack goes to alice's recorded connection, which is not open here.
    assert GONE in done.stderr
    assert not re.search(r"^\S+ ERROR ", done.stderr, re.MULTILINE)


@pytest.mark.parametrize(("function", "name", "refusal"), [
    # Alone, the message these events name does not exist: the NOT_FOUND frame, statusCode 404.
    ("websocket-markRead_dev", "mark_read.json", "upTo names no message of this conversation."),
    ("DeleteMessageFunction", "delete_message.json", "No message with this messageId."),
])
def test_an_event_naming_a_message_that_does_not_exist_gets_not_found(running, function, name, refusal):
    state_file = running
    # --fresh: a stack of its own even though one is running, so the tables are empty.
    done = invoke(function, f"events/{name}", "--fresh", "--state-file", str(state_file))

    assert done.returncode == 0, done.stderr
    assert done.result == {"statusCode": 404}
    assert "using the running stack" not in done.stderr
    assert '"code":"NOT_FOUND"' in done.stderr and refusal in done.stderr
    # The error frame goes to the caller's connection, which is not open here.
    assert "Caller left before its error frame could be sent" in done.stderr
