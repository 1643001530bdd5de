"""Each incoming message and each status step is reported once, whichever way it came."""

from __future__ import annotations

import asyncio

from chatclient import MessageReceived, MessageStatus, MessageStatusChanged, SyncCompleted
from chatclient.dedupe import RecentIds, StatusLedger

from .conftest import ALICE, BOB, WAIT, wire_message


def test_recent_ids_recognise_a_repeat_and_forget_the_oldest_past_capacity():
    ids = RecentIds(capacity=2)
    assert ids.add("a") and ids.add("b")
    assert not ids.add("a")
    assert ids.add("c")  # evicts b, the least recently seen
    assert "a" in ids and "b" not in ids and len(ids) == 2


def test_status_ledger_only_moves_forward():
    ledger = StatusLedger()
    assert ledger.advance("m", MessageStatus.SENT)
    assert ledger.advance("m", MessageStatus.READ)
    assert not ledger.advance("m", MessageStatus.DELIVERED)
    assert not ledger.advance("m", MessageStatus.READ)
    assert ledger.get("m") is MessageStatus.READ


def test_a_message_seen_live_and_again_in_the_next_sync_is_reported_once(chat_server, new_client):
    async def scenario() -> list[tuple[str, str]]:
        async with chat_server() as server:
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                # GIVEN m-1 arrives live
                await server.push({"type": "message", "message": wire_message("m-1")})
                # AND the next sync hands it out again (a push that crossed the sync), with m-2
                server.pending = [wire_message("m-1"), wire_message("m-2")]
                # WHEN the connection drops and the client reconnects and syncs
                server.kill_connections()
                await server.wait_for(lambda: len(server.sent("syncMessages")) == 2)
                await client.wait_online(WAIT)
            return [(e.message.message_id, e.via) async for e in events if isinstance(e, MessageReceived)]

    # THEN m-1 is reported once (live) and m-2 once (sync)
    assert asyncio.run(scenario()) == [("m-1", "live"), ("m-2", "sync")]


def test_sync_pages_with_the_cursor_until_has_more_is_false(chat_server, new_client):
    async def scenario() -> tuple[list[dict], list[str]]:
        async with chat_server() as server:
            server.pending = [wire_message(f"m-{i}") for i in range(5)]
            client = new_client(server, sync_page_size=2)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
            received = [e.message.message_id async for e in events if isinstance(e, MessageReceived)]
            return server.sent("syncMessages"), received

    syncs, received = asyncio.run(scenario())
    assert len({s.pop("requestId") for s in syncs}) == 3  # each page its own request
    assert syncs == [
        {"action": "syncMessages", "limit": 2},
        {"action": "syncMessages", "since": "after-m-1", "limit": 2},
        {"action": "syncMessages", "since": "after-m-3", "limit": 2},
    ]
    assert received == [f"m-{i}" for i in range(5)]


def test_sync_completion_reports_how_many_new_messages_came(chat_server, new_client):
    async def scenario() -> list[SyncCompleted]:
        async with chat_server() as server:
            server.pending = [wire_message("m-1"), wire_message("m-1"), wire_message("m-2")]
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
            return [e async for e in events if isinstance(e, SyncCompleted)]

    assert asyncio.run(scenario()) == [SyncCompleted(messages=2, pages=1)]


def test_status_steps_are_reported_once_and_never_backwards(chat_server, new_client):
    def status(value: str) -> dict:
        return {"type": "status", "messageId": "m-9", "conversationId": f"dm_{ALICE}_{BOB}", "status": value,
                "at": "2026-01-01T00:00:01.000Z"}

    async def scenario() -> list[MessageStatus]:
        async with chat_server() as server:
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                for value in ("delivered", "delivered", "read", "delivered"):
                    await server.push(status(value))
                await client.ping(timeout=WAIT)  # the pong comes after all four
            return [e.status async for e in events if isinstance(e, MessageStatusChanged)]

    assert asyncio.run(scenario()) == [MessageStatus.DELIVERED, MessageStatus.READ]
