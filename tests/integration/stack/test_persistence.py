"""The stack's data survives a restart: users keep their subs, the pool and app client their
ids, tables their items; --fresh forgets them; an unreadable snapshot is set aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatclient import ChatSession, Target, conversation_id, sign_in
from wsstack.emulator import Emulator, InUse, aws_client
from wsstack.stack import StackInfo

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "Passw0rd-demo"  # users.local.json's


def chat_stack(data_dir: Path, **options: Any) -> dict[str, Any]:
    """LocalStack options for the chat template with its demo users, keeping data in ``data_dir``."""
    return {"template": ROOT / "template.yaml", "users": ROOT / "users.local.json",
            "env_vars": ROOT / "env.local.json", "code_check_interval": None, "data_dir": data_dir, **options}


def target_of(info: StackInfo) -> Target:
    assert info.user_pool_id and info.user_pool_client_id
    return Target(info.websocket_url, info.region, info.user_pool_id, info.user_pool_client_id, info.aws_endpoint)


def pending_for_bob(target: Target) -> list[str]:
    bob = sign_in(target, "bob", PASSWORD)
    with ChatSession(target, bob.id_token, confirm=False) as session:
        session.send("syncMessages")
        return [m["content"] for m in session.receive_until("sync")["messages"]]


def alice_sends_bob(info, text: str):
    """alice signs in and sends ``text`` to bob, who is offline; her tokens, once it is acked."""
    target = target_of(info)
    alice = sign_in(target, "alice", PASSWORD)
    bob_sub = info.users["bob"]
    with ChatSession(target, alice.id_token) as chat:
        chat.send_message(conversation_id(alice.sub, bob_sub), bob_sub, text)
        assert chat.receive_until("ack")["status"] == "sent"
    return alice


def test_a_restart_keeps_subs_ids_and_messages_and_a_token_from_before_still_connects(run_stack, tmp_path):
    data = tmp_path / "data"
    with run_stack(**chat_stack(data)) as first:
        alice = alice_sends_bob(first.info, "kept across a restart")

    with run_stack(**chat_stack(data)) as second:
        assert second.info.data_dir == str(data)
        assert (second.info.user_pool_id, second.info.user_pool_client_id) == (
            first.info.user_pool_id, first.info.user_pool_client_id)
        assert second.info.users == first.info.users
        assert second.info.resources == first.info.resources
        target = target_of(second.info)
        # A client signed in before the restart reconnects with the token it holds.
        with ChatSession(target, alice.id_token) as chat:
            chat.send("ping")
            assert chat.receive_until("pong")
        assert pending_for_bob(target) == ["kept across a restart"]


def test_fresh_starts_empty(run_stack, tmp_path):
    data = tmp_path / "data"
    with run_stack(**chat_stack(data)) as first:
        alice_sends_bob(first.info, "forgotten")

    with run_stack(**chat_stack(data, fresh=True)) as second:
        assert second.stack.emulator.data == {"data": "empty"}
        assert second.info.user_pool_id != first.info.user_pool_id
        # alice is made again, with the sub users.local.json gives her; her message is gone.
        assert second.info.users == first.info.users
        assert pending_for_bob(target_of(second.info)) == []


def test_an_unreadable_snapshot_is_set_aside_in_one_line_and_the_stack_starts_empty(run_stack, tmp_path, log_lines):
    data = tmp_path / "data"
    data.mkdir()
    (data / "moto.pickle").write_bytes(b"not a snapshot")

    with run_stack(**chat_stack(data)) as stack:
        assert sorted(stack.info.users) == ["alice", "bob"]
        sign_in(target_of(stack.info), "alice", PASSWORD)

    [aside] = data.glob("moto.pickle.unreadable-*")
    assert aside.read_bytes() == b"not a snapshot"
    [said] = [m for m in log_lines.messages("wsstack.emulator") if "could not be read" in m]
    assert said.startswith(f"data in {data / 'moto.pickle'} could not be read (not a snapshot: ")
    assert said.endswith(f"); set it aside as {aside} and started empty")
    # The stack wrote its own snapshot when it stopped; the next start restores it.
    with run_stack(**chat_stack(data)) as again:
        assert again.stack.emulator.data["data"] == "restored"
        assert again.info.users == stack.info.users


def test_a_snapshot_of_another_moto_version_is_set_aside(tmp_path):
    import pickle

    data = tmp_path / "data"
    data.mkdir()
    with (data / "moto.pickle").open("wb") as file:
        pickle.dump({"format": 1, "moto": "0.0.1"}, file)
        pickle.dump({}, file)
    emulator = Emulator(data_dir=data)
    try:
        emulator.start(announce=False)
        assert emulator.data["data"] == "set_aside"
        assert emulator.data["reason"].startswith("written by moto 0.0.1, this is moto ")
    finally:
        emulator.stop()


def test_the_emulator_saves_when_its_parent_goes_away(tmp_path):
    # Closing its stdin is what the parent's death does (kill -9 included).
    data = tmp_path / "data"
    emulator = Emulator(data_dir=data)
    url = emulator.start(announce=False)
    try:
        aws_client("cognito-idp", url).create_user_pool(PoolName="kept")
        proc = emulator._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        assert json.loads(proc.stdout.read().splitlines()[-1])["data"] == "saved"
    finally:
        emulator.stop()

    again = Emulator(data_dir=data)
    try:
        url = again.start(announce=False)
        pools = aws_client("cognito-idp", url).list_user_pools(MaxResults=10)["UserPools"]
        assert [p["Name"] for p in pools] == ["kept"]
    finally:
        again.stop()


def test_one_emulator_per_data_folder(tmp_path):
    first = Emulator(data_dir=tmp_path)
    first.start(announce=False)
    try:
        with pytest.raises(InUse) as refused:
            Emulator(data_dir=tmp_path).start(announce=False)
        assert str(refused.value).startswith(f"The data folder {tmp_path} is in use by another running stack")
    finally:
        first.stop()
    # Free again once the first has stopped.
    second = Emulator(data_dir=tmp_path)
    second.start(announce=False)
    second.stop()
