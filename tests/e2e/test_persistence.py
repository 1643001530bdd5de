"""`wsstack up` keeps its data across restarts, and one stack owns one state file and one data folder."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from chatclient import ChatSession, Target, conversation_id, sign_in

from .conftest import ROOT, start_stack

pytestmark = pytest.mark.e2e

PASSWORD = "Passw0rd-demo"  # users.local.json's, which `wsstack up` creates
#: Each sender stays under the chat backend's per-connection limit (30 frames per 10 s).
SENDERS, PER_SENDER = 4, 25


def up(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wsstack.cli", "up", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_ctrl_c_while_clients_send_loses_no_acknowledged_message(tmp_path):
    state_file = tmp_path / "stack.json"
    stack = start_stack(state_file)
    target = Target.from_state_file(state_file)
    alice = sign_in(target, "alice", PASSWORD)
    bob_sub = json.loads(state_file.read_text())["users"]["bob"]
    conversation = conversation_id(alice.sub, bob_sub)
    acked: list[str] = []
    enough = threading.Event()

    def send(sender: int) -> None:
        # Sends until the stack goes away: some messages are in flight when it does.
        try:
            with ChatSession(target, alice.id_token, confirm=False) as chat:
                for n in range(PER_SENDER):
                    chat.send_message(conversation, bob_sub, f"sender {sender} message {n}")
                    frame = chat.receive_until("ack")
                    acked.append(frame["messageId"])
                    if len(acked) >= SENDERS * 3:
                        enough.set()
        except (ConnectionClosed, TimeoutError, OSError):
            pass

    senders = [threading.Thread(target=send, args=(n,), daemon=True) for n in range(SENDERS)]
    for thread in senders:
        thread.start()
    try:
        assert enough.wait(60), "the clients got no acks"
    finally:
        assert stack.stop() == 0  # SIGINT while they send
    for thread in senders:
        thread.join(30)
    stopped_with = list(acked)
    assert stopped_with

    again = start_stack(state_file)
    try:
        messages = json.loads(state_file.read_text())["resources"]["MessagesTable"]
        dynamodb = Target.from_state_file(state_file).dynamodb()
        missing = [m for m in stopped_with
                   if "Item" not in dynamodb.get_item(TableName=messages, Key={"messageId": {"S": m}})]
        assert missing == []
    finally:
        again.stop()


def test_a_second_up_on_a_running_stacks_state_file_is_refused_and_leaves_it_alone(tmp_path):
    state_file = tmp_path / "stack.json"
    stack = start_stack(state_file)
    try:
        before = state_file.read_text()

        result = up("--port", "0", "--tls-port", "0", "--emulator-port", "0", "--state-file", str(state_file))

        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"wsstack: The state file {state_file} belongs to a running stack (pid {stack.proc.pid}); to run "
            "another beside it, pass --state-file with another file (and --port 0 --tls-port 0 --emulator-port 0)."
        )
        assert state_file.read_text() == before
        # The first stack still serves.
        with ChatSession(Target.from_state_file(state_file),
                         sign_in(Target.from_state_file(state_file), "bob", PASSWORD).id_token) as chat:
            chat.send("ping")
            assert chat.receive_until("pong")
    finally:
        assert stack.stop() == 0
    assert not state_file.exists()


def test_a_second_up_on_a_running_stacks_data_folder_is_refused(tmp_path):
    stack = start_stack(tmp_path / "a.json")
    try:
        data_dir = json.loads((tmp_path / "a.json").read_text())["data_dir"]

        result = up("--port", "0", "--tls-port", "0", "--emulator-port", "0",
                    "--state-file", str(tmp_path / "b.json"), "--data-dir", data_dir)

        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"wsstack: The data folder {data_dir} is in use by another running stack (pid {stack.proc.pid}); "
            "pass --data-dir with another folder, or stop that stack."
        )
        assert not (tmp_path / "b.json").exists()
    finally:
        assert stack.stop() == 0


def test_two_stacks_side_by_side_each_keep_their_own_state_file_and_data(tmp_path):
    first, second = tmp_path / "stack.json", tmp_path / "b.json"
    stacks = [start_stack(first)]
    try:
        stacks.append(start_stack(second))
        a, b = (json.loads(path.read_text()) for path in (first, second))
        assert a["data_dir"] == str(tmp_path / "data" / "stack")
        assert b["data_dir"] == str(tmp_path / "data" / "b")
        assert a["websocket_url"] != b["websocket_url"] and a["aws_endpoint"] != b["aws_endpoint"]
        # Something only the first stack holds.
        Target.from_state_file(first).cognito().admin_create_user(
            UserPoolId=a["user_pool_id"], Username="only-in-a", MessageAction="SUPPRESS")
    finally:
        for stack in stacks:
            assert stack.stop() == 0
    assert not first.exists() and not second.exists()

    for path, state, has_user in ((first, a, True), (second, b, False)):
        stack = start_stack(path)
        try:
            again = json.loads(path.read_text())
            assert (again["user_pool_id"], again["users"]) == (state["user_pool_id"], state["users"])
            cognito = Target.from_state_file(path).cognito()
            usernames = {u["Username"] for u in cognito.list_users(UserPoolId=again["user_pool_id"])["Users"]}
            assert ("only-in-a" in usernames) is has_user
        finally:
            assert stack.stop() == 0


def test_fresh_and_no_persist_start_empty(tmp_path):
    state_file = tmp_path / "stack.json"
    stack = start_stack(state_file)
    assert stack.stop() == 0
    kept = Path(tmp_path / "data" / "stack" / "moto.pickle")
    assert kept.exists()

    stack = start_stack(state_file, "--fresh")
    try:
        assert any(line.startswith("  Data              ") and "(started empty;" in line for line in stack.output)
    finally:
        assert stack.stop() == 0

    memory = tmp_path / "memory.json"
    stack = start_stack(memory, "--no-persist")
    try:
        assert json.loads(memory.read_text())["data_dir"] == ""
        assert "  Data              in memory only (--no-persist): nothing is kept\n" in stack.output
    finally:
        assert stack.stop() == 0
    assert not (tmp_path / "data" / "memory").exists()


def test_every_busy_port_is_named_at_once(tmp_path):
    with socket.socket() as gateway, socket.socket() as emulator:
        for taken in (gateway, emulator):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        port, emulator_port = gateway.getsockname()[1], emulator.getsockname()[1]

        result = up("--port", str(port), "--tls-port", "0", "--emulator-port", str(emulator_port),
                    "--state-file", str(tmp_path / "stack.json"))

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"wsstack: Ports {port} (--port) and {emulator_port} (--emulator-port) are in use on 127.0.0.1; stop what "
        "uses them, or pass --port 0 --emulator-port 0 for free ports."
    )
    assert not (tmp_path / "stack.json").exists()
    assert not (tmp_path / "data").exists()
