"""docs/asyncapi.yaml, the client and docs/protocol.md describe the same protocol."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatclient import ChatClient, RequestFailed
from chatclient.frames import ACTIONS
from chatclient.outbox import OutgoingMessage

from .conftest import BOB, WAIT, wire_message

jsonschema = pytest.importorskip("jsonschema")

DOCS = Path(__file__).resolve().parents[3] / "docs"
SPEC = yaml.safe_load((DOCS / "asyncapi.yaml").read_text(encoding="utf-8"))
MESSAGES = SPEC["components"]["messages"]


def payload_schema(message: dict[str, Any]) -> dict[str, Any]:
    # Refs inside are document-relative ("#/components/schemas/..."): validate against a root
    # that carries the components.
    return {"$ref": message["payload"]["$ref"], "components": SPEC["components"]}


def validator(name: str) -> Any:
    return jsonschema.Draft7Validator(payload_schema(MESSAGES[name]))


def properties(name: str) -> dict[str, Any]:
    schema_name = MESSAGES[name]["payload"]["$ref"].rsplit("/", 1)[1]
    return SPEC["components"]["schemas"][schema_name].get("properties", {})


def client_actions() -> set[str]:
    return {name for name in MESSAGES if "action" in properties(name)}


def server_types() -> set[str]:
    return {name for name in MESSAGES if "type" in properties(name)}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_example_in_the_document_matches_its_own_schema(name):
    examples = MESSAGES[name].get("examples", [])
    assert examples, f"{name} has no example"
    for example in examples:
        validator(name).validate(example["payload"])


def test_the_document_lists_the_actions_the_client_knows_and_protocol_md_names():
    documented = set(re.findall(r"^\| `(\w+)` \|", (DOCS / "protocol.md").read_text(encoding="utf-8"), re.M))
    assert client_actions() == set(ACTIONS)
    assert set(ACTIONS) <= documented


def test_the_document_lists_every_server_frame_the_client_reads():
    assert server_types() == set(ChatClient._handlers)


def test_every_frame_the_client_sends_matches_the_document(chat_server, new_client):
    async def scenario() -> list[dict[str, Any]]:
        async with chat_server() as server:
            restored = OutgoingMessage("m-0", "dm_a_b", BOB, "reply", reply_to_message_id="m-prev")
            server.pending = [wire_message("m-9")]  # confirmed with ackMessages
            async with new_client(server, outbox=[restored], sync_page_size=10) as client:
                await client.wait_online(WAIT)
                await server.wait_for(lambda: bool(server.sent("ackMessages")))
                await client.wait_acked(await client.send_message(BOB, "héllo"), WAIT)
                calls = [
                    client.mark_read("dm_a_b", message_ids=["m-1", "m-2"]),
                    client.mark_read("dm_a_b", up_to="m-2"),
                    client.list_conversations(cursor="c", limit=5),
                    client.find_users("bo", limit=3),
                    client.delete_message("m-0"),
                    client.history("dm_a_b", cursor="c", limit=10),
                    client.ping(),
                ]
                for call in calls:
                    # The fake server knows only some actions: the frame sent is what matters.
                    with contextlib.suppress(RequestFailed):
                        await asyncio.wait_for(call, WAIT)
            return [frame for _, frame in server.frames]

    frames = asyncio.run(scenario())
    assert {f["action"] for f in frames} == set(ACTIONS)
    for frame in frames:
        validator(frame["action"]).validate(frame)
    # Calls name their request; messages and confirmations are matched by messageId.
    calls = [f for f in frames if f["action"] not in ("sendMessage", "ackMessages")]
    assert all(isinstance(f.get("requestId"), str) for f in calls)
    assert len({f["requestId"] for f in calls}) == len(calls)


@pytest.mark.parametrize("frame", [
    {"action": "markRead", "conversationId": "c", "messageIds": ["a"], "upTo": "a"},
    {"action": "markRead", "conversationId": "c"},
    {"action": "sendMessage", "messageId": "m", "conversationId": "c", "recipientId": "r", "content": ""},
    {"action": "findUsers", "query": 'x"y'},
])
def test_the_document_refuses_frames_the_server_refuses(frame):
    assert not validator(frame["action"]).is_valid(frame)
