"""The client confirms every message it receives (ackMessages), batched, and again when a
copy comes back: until the server hears it, the message stays pending for this user."""

from __future__ import annotations

import asyncio

from chatclient import MessageReceived

from .conftest import ALICE, BOB, WAIT, wire_message


def _confirmed(server) -> list[str]:
    return [i for frame in server.sent("ackMessages") for i in frame["messageIds"]]


def test_messages_of_a_sync_are_confirmed_together_in_one_frame(chat_server, new_client):
    async def scenario() -> list[dict]:
        async with chat_server() as server:
            server.pending = [wire_message(f"m-{i}") for i in range(3)]
            client = new_client(server)
            async with client:
                await client.wait_online(WAIT)
                await server.wait_for(lambda: len(_confirmed(server)) == 3)
            return server.sent("ackMessages")

    assert asyncio.run(scenario()) == [{"action": "ackMessages", "messageIds": ["m-0", "m-1", "m-2"]}]


def test_live_messages_arriving_close_together_wait_for_the_interval_and_go_in_one_frame(
    chat_server, new_client
):
    async def scenario() -> list[dict]:
        async with chat_server() as server:
            client = new_client(server, confirm_interval=0.3)
            async with client:
                await client.wait_online(WAIT)
                await server.push({"type": "message", "message": wire_message("m-1")})
                await server.wait_for(lambda: len(_confirmed(server)) == 1)
                # WHEN two more arrive right after the first confirmation went out
                await server.push({"type": "message", "message": wire_message("m-2")})
                await server.push({"type": "message", "message": wire_message("m-3")})
                await server.wait_for(lambda: len(_confirmed(server)) == 3)
            return server.sent("ackMessages")

    # THEN they wait out the interval and share one frame
    assert [f["messageIds"] for f in asyncio.run(scenario())] == [["m-1"], ["m-2", "m-3"]]


def test_a_copy_already_reported_is_confirmed_again_but_reported_once(chat_server, new_client):
    async def scenario() -> tuple[list[str], list[str]]:
        async with chat_server() as server:
            client = new_client(server, confirm_interval=0.01)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                await server.push({"type": "message", "message": wire_message("m-1")})
                await server.wait_for(lambda: _confirmed(server) == ["m-1"])
                # GIVEN the confirmation was lost: the next sync hands m-1 out again
                server.pending = [wire_message("m-1")]
                server.kill_connections()
                await server.wait_for(lambda: _confirmed(server) == ["m-1", "m-1"])
            received = [e.message.message_id async for e in events if isinstance(e, MessageReceived)]
            return received, _confirmed(server)

    received, confirmed = asyncio.run(scenario())
    assert received == ["m-1"]
    assert confirmed == ["m-1", "m-1"]


def test_the_users_own_messages_echoed_from_another_device_are_not_confirmed(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            client = new_client(server, confirm_interval=0.01)
            async with client:
                await client.wait_online(WAIT)
                mine = wire_message("m-mine", sender=ALICE, recipient=BOB)
                await server.push({"type": "message", "message": mine})
                await server.push({"type": "message", "message": wire_message("m-theirs")})
                await server.wait_for(lambda: "m-theirs" in _confirmed(server))
            return _confirmed(server)

    assert asyncio.run(scenario()) == ["m-theirs"]


def test_more_than_a_hundred_messages_are_confirmed_in_frames_of_at_most_a_hundred(chat_server, new_client):
    async def scenario() -> list[int]:
        async with chat_server() as server:
            server.pending = [wire_message(f"m-{i:03d}") for i in range(150)]
            client = new_client(server, sync_page_size=100, confirm_interval=0.01)
            async with client:
                await client.wait_online(WAIT)
                await server.wait_for(lambda: len(_confirmed(server)) == 150)
            return [len(f["messageIds"]) for f in server.sent("ackMessages")]

    sizes = asyncio.run(scenario())
    assert max(sizes) <= 100 and sum(sizes) == 150


def test_closing_confirms_what_was_received_but_not_confirmed_yet(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            # A long interval: the second message waits in the queue when the client closes.
            client = new_client(server, confirm_interval=60.0)
            async with client:
                await client.wait_online(WAIT)
                await server.push({"type": "message", "message": wire_message("m-1")})
                await server.wait_for(lambda: _confirmed(server) == ["m-1"])
                events = client.events()
                await server.push({"type": "message", "message": wire_message("m-2")})
                await events.next(WAIT)  # m-2 was received
            await server.wait_for(lambda: "m-2" in _confirmed(server))
            return _confirmed(server)

    assert asyncio.run(scenario()) == ["m-1", "m-2"]
