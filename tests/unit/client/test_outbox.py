"""The outbox: unacknowledged messages are resent with the same messageId until an ack."""

from __future__ import annotations

import asyncio

import pytest

from chatclient import ChatClient, MessageAcked, OutgoingMessage, RequestFailed, SendFailed
from chatclient.outbox import Outbox

from .conftest import BOB, WAIT


def outgoing(message_id: str = "m-1", content: str = "hello", conversation: str = "dm_a_b") -> OutgoingMessage:
    return OutgoingMessage(message_id, conversation, BOB, content)


# ------------------------------------------------------------------ the outbox alone


def test_every_attempt_sends_the_same_frame():
    box = Outbox()
    entry = box.add(outgoing())
    first = entry.frame()
    box.mark_sent("m-1", at=1.0)
    box.mark_sent("m-1", at=2.0)
    assert entry.frame() == first
    assert first == {"action": "sendMessage", "messageId": "m-1", "conversationId": "dm_a_b",
                     "recipientId": BOB, "content": "hello"}
    assert entry.attempts == 2


def test_queuing_the_same_message_twice_keeps_one_and_a_clashing_one_is_refused():
    box = Outbox()
    box.add(outgoing())
    box.add(outgoing())
    assert len(box) == 1
    with pytest.raises(ValueError):
        box.add(outgoing(content="something else"))


def test_an_ack_removes_the_message_and_a_repeated_ack_is_recognised():
    box = Outbox([outgoing("m-1"), outgoing("m-2")])
    assert box.acknowledge("m-1") is not None
    assert box.acknowledge("m-1") is None
    assert [m.message_id for m in box.pending()] == ["m-2"]


def test_due_lists_unsent_and_stale_heads_only():
    box = Outbox([outgoing("never", conversation="c1"), outgoing("fresh", conversation="c2"),
                  outgoing("stale", conversation="c3"), outgoing("queued behind stale", conversation="c3")])
    box.mark_sent("fresh", at=100.0)
    box.mark_sent("stale", at=90.0)
    assert [m.message_id for m in box.due(now=101.0, ack_timeout=10.0)] == ["never", "stale"]


def test_each_conversation_has_one_head_the_oldest_unacknowledged():
    box = Outbox([outgoing("a1", conversation="a"), outgoing("b1", conversation="b"),
                  outgoing("a2", conversation="a")])
    assert [m.message_id for m in box.heads()] == ["a1", "b1"]
    assert not box.is_head("a2")
    box.acknowledge("a1")
    assert box.is_head("a2")


# ------------------------------------------------------------------ the client's outbox


def test_unacked_send_is_resent_after_reconnect_with_the_same_message_id_and_stops_on_ack(chat_server, new_client):
    async def scenario() -> tuple[list[dict], list, ChatClient]:
        async with chat_server() as server:
            # GIVEN a server that stores the first send but drops the connection before the ack
            server.drop_on_send = 1
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                message_id = await client.send_message(BOB, "hello")
                # WHEN the client reconnects, THEN it resends and gets the ack
                ack = await client.wait_acked(message_id, WAIT)
                assert ack.message_id == message_id
                # AND after one more drop and reconnect it does not send the message again
                server.kill_connections()
                await server.wait_for(lambda: len(server.sent("syncMessages")) == 3)
                await client.wait_online(WAIT)
                sends = server.sent("sendMessage")
            return sends, [e async for e in events], client

    sends, events, client = asyncio.run(scenario())
    assert len(sends) == 2
    assert sends[0] == sends[1]  # same messageId, same everything: the server dedupes it
    assert [e for e in events if isinstance(e, MessageAcked)] == [MessageAcked(sends[0]["messageId"], ack_ts(events))]
    assert client.outbox == []


def ack_ts(events: list) -> str:
    return next(e.timestamp for e in events if isinstance(e, MessageAcked))


def test_message_without_ack_is_resent_on_the_same_connection_after_the_ack_timeout(chat_server, new_client):
    async def scenario() -> tuple[list[int], int]:
        async with chat_server() as server:
            server.ignore_sends = 1
            async with new_client(server, ack_timeout=0.1) as client:
                await client.wait_online(WAIT)
                message_id = await client.send_message(BOB, "hello")
                await client.wait_acked(message_id, WAIT)
                return [index for index, frame in server.frames if frame["action"] == "sendMessage"], server.handshakes

    connections, handshakes = asyncio.run(scenario())
    assert connections == [1, 1]
    assert handshakes == 1


def test_a_repeated_ack_is_reported_once(chat_server, new_client):
    async def scenario() -> list:
        async with chat_server() as server:
            server.double_ack = True
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                await client.wait_acked(await client.send_message(BOB, "hello"), WAIT)
                await client.ping(timeout=WAIT)  # answered after both acks: they were both read
            return [e async for e in events if isinstance(e, MessageAcked)]

    assert len(asyncio.run(scenario())) == 1


def test_a_refused_message_leaves_the_outbox_and_is_not_resent(chat_server, new_client):
    async def scenario() -> tuple[RequestFailed, list, list, list]:
        async with chat_server() as server:
            server.refuse_content = "bad"
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                message_id = await client.send_message(BOB, "bad")
                with pytest.raises(RequestFailed) as refused:
                    await client.wait_acked(message_id, WAIT)
                outbox = client.outbox
                server.kill_connections()
                await server.wait_for(lambda: len(server.sent("syncMessages")) == 2)
                sends = server.sent("sendMessage")
            return refused.value, outbox, sends, [e async for e in events if isinstance(e, SendFailed)]

    refused, outbox, sends, failures = asyncio.run(scenario())
    assert (refused.code, refused.message_id) == ("VALIDATION_ERROR", sends[0]["messageId"])
    assert outbox == []
    assert len(sends) == 1
    assert [f.code for f in failures] == ["VALIDATION_ERROR"]


def test_a_restored_outbox_is_sent_on_connect_before_the_sync(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            async with new_client(server, outbox=[outgoing("from-last-run")]) as client:
                await client.wait_acked("from-last-run", WAIT)
                await client.wait_online(WAIT)
            return [frame["action"] for _, frame in server.frames]

    assert asyncio.run(scenario()) == ["sendMessage", "syncMessages"]


def test_messages_queued_while_offline_go_out_once_connected(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            server.refuse_handshakes = 2
            client = new_client(server)
            message_id = await client.send_message(BOB, "written offline")
            async with client:
                await client.wait_acked(message_id, WAIT)
            return [frame["messageId"] for frame in server.sent("sendMessage")]

    assert len(asyncio.run(scenario())) == 1


@pytest.mark.parametrize("content", ["", "   ", "x" * 4001])
def test_content_the_server_would_refuse_is_refused_before_sending(chat_server, new_client, content):
    async def scenario() -> None:
        async with chat_server() as server:
            client = new_client(server)
            with pytest.raises(ValueError):
                await client.send_message(BOB, content)
            assert client.outbox == []

    asyncio.run(scenario())


def test_within_a_conversation_the_next_message_waits_for_the_previous_ack(chat_server, new_client):
    async def scenario() -> tuple[list[str], list[str]]:
        async with chat_server() as server:
            server.ignore_sends = 1  # the first attempt of the first message gets no ack
            async with new_client(server, ack_timeout=0.2) as client:
                await client.wait_online(WAIT)
                first = await client.send_message(BOB, "first")
                second = await client.send_message(BOB, "second")
                await client.ping(timeout=WAIT)  # the server has read all the client sent so far
                before_ack = [f["messageId"] for f in server.sent("sendMessage")]
                await client.wait_acked(second, WAIT)
                order = [f["messageId"] for f in server.sent("sendMessage")]
            assert before_ack == [first]
            return order, [first, first, second]

    order, expected = asyncio.run(scenario())
    assert order == expected


def test_an_unacknowledged_message_does_not_hold_up_other_conversations(chat_server, new_client):
    async def scenario() -> None:
        async with chat_server() as server:
            server.ignore_sends = 1
            async with new_client(server) as client:
                await client.wait_online(WAIT)
                await client.send_message(BOB, "stuck for now", conversation_id="dm_one")
                other = await client.send_message(BOB, "goes out", conversation_id="dm_two")
                assert (await client.wait_acked(other, WAIT)).message_id == other

    asyncio.run(scenario())
