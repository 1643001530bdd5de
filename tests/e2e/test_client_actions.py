"""The asyncio client's calls against the real stack: markRead, listConversations,
findUsers, deleteMessage, getHistory and ping, each matched to its answer by requestId.

These actions came after sendMessage/syncMessages; the tests skip on a stack that does not
answer ``ping`` with ``pong`` (the five were added together).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from chatclient import (
    ChatSession,
    MessageDeleted,
    MessageReceived,
    MessagesMarkedRead,
    MessageStatus,
    MessageStatusChanged,
    RequestFailed,
)

from .conftest import PASSWORD, client_for, run
from .test_client_cli import Terminal, where

pytestmark = pytest.mark.e2e

WAIT = 30.0


async def first(events, predicate: Callable[[Any], bool]) -> Any:
    async with asyncio.timeout(WAIT):
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError("the client closed before the event came")


def test_find_users_finds_the_other_user_and_never_the_caller(stack, named_user):
    alice_name, alice = named_user("alice")
    bob_name, bob = named_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice) as client:
            found = await client.find_users(bob_name, timeout=WAIT)
            assert [(u.user_id, u.username, u.name) for u in found] == [(bob.sub, bob_name, "Bob")]
            assert await client.find_users(alice_name, timeout=WAIT) == []

    run(scenario)


def test_reading_a_message_turns_the_senders_ticks_to_read(stack, named_user):
    _, alice_tokens = named_user("alice")
    _, bob_tokens = named_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice, client_for(stack, bob_tokens) as bob:
            alice_events, bob_events = alice.events(), bob.events()
            await asyncio.gather(alice.wait_online(WAIT), bob.wait_online(WAIT))
            message_id = await alice.send_message(bob.user_id, "read me")
            got = await first(bob_events, lambda e: isinstance(e, MessageReceived))

            moved = await bob.mark_read(got.message.conversation_id, message_ids=[message_id], timeout=WAIT)
            assert moved == (message_id,)
            marked = await first(bob_events, lambda e: isinstance(e, MessagesMarkedRead))
            assert marked.message_ids == (message_id,)
            read = await first(alice_events, lambda e: isinstance(e, MessageStatusChanged)
                               and e.status is MessageStatus.READ)
            assert read.message_id == message_id
            # Already read: nothing moves, and read never goes back.
            assert await bob.mark_read(got.message.conversation_id, up_to=message_id, timeout=WAIT) == ()

    run(scenario)


def test_only_the_recipient_may_mark_a_message_read(stack, named_user):
    _, alice_tokens = named_user("alice")
    _, bob_tokens = named_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice:
            message_id = await alice.send_message(bob_tokens.sub, "mine")
            await alice.wait_acked(message_id, WAIT)
            with pytest.raises(RequestFailed) as refused:
                await alice.mark_read(alice.conversation_with(bob_tokens.sub), message_ids=[message_id], timeout=WAIT)
            assert refused.value.code in {"FORBIDDEN", "VALIDATION_ERROR", "NOT_FOUND"}

    run(scenario)


def test_the_conversation_list_shows_the_other_user_the_last_message_and_unread_count(stack, named_user):
    _, alice_tokens = named_user("alice")
    _, bob_tokens = named_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice:
            for text in ("one", "two"):
                await alice.wait_acked(await alice.send_message(bob_tokens.sub, text), WAIT)
        async with client_for(stack, bob_tokens) as bob:
            page = await bob.list_conversations(timeout=WAIT)
            assert [c.conversation_id for c in page.conversations] == [bob.conversation_with(alice_tokens.sub)]
            entry = page.conversations[0]
            assert (entry.other_user_id, entry.other_user_name) == (alice_tokens.sub, "Alice")
            assert entry.last_message is not None and entry.last_message.content == "two"
            assert entry.unread_count == 2
            assert page.has_more is False

    run(scenario)


def test_deleting_a_message_tells_both_participants(stack, named_user):
    _, alice_tokens = named_user("alice")
    _, bob_tokens = named_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice, client_for(stack, bob_tokens) as bob:
            bob_events = bob.events()
            await asyncio.gather(alice.wait_online(WAIT), bob.wait_online(WAIT))
            message_id = await alice.send_message(bob.user_id, "oops")
            await first(bob_events, lambda e: isinstance(e, MessageReceived))
            deleted = await alice.delete_message(message_id, timeout=WAIT)
            assert deleted.message_id == message_id
            seen = await first(bob_events, lambda e: isinstance(e, MessageDeleted))
            assert seen.message_id == message_id
            with pytest.raises(RequestFailed):
                await bob.delete_message(message_id, timeout=WAIT)  # not the sender

    run(scenario)


def test_a_new_device_fills_a_conversation_from_history_page_by_page(stack, named_user):
    _, alice_tokens = named_user("alice")
    _, bob_tokens = named_user("bob")
    _, carol_tokens = named_user("carol")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice, client_for(stack, bob_tokens) as bob:
            await asyncio.gather(alice.wait_online(WAIT), bob.wait_online(WAIT))
            sent = []
            for n in range(3):
                writer, other = (alice, bob) if n % 2 == 0 else (bob, alice)
                sent.append(await writer.send_message(other.user_id, f"line {n}"))
                await writer.wait_acked(sent[-1], WAIT)
        conversation = alice.conversation_with(bob_tokens.sub)
        # Alice's new phone: a fresh client, nothing pending for her any more.
        async with client_for(stack, alice_tokens) as phone:
            pages = [await phone.history(conversation, limit=2, timeout=WAIT)]
            while pages[-1].has_more and len(pages) < 3:
                pages.append(await phone.history(conversation, pages[-1].cursor, 2, timeout=WAIT))
            assert [[m.message_id for m in p.messages] for p in pages] == [[sent[2], sent[1]], [sent[0]]]
            assert [m.sender_id for m in pages[0].messages] == [alice_tokens.sub, bob_tokens.sub]
        async with client_for(stack, carol_tokens) as carol:
            with pytest.raises(RequestFailed) as refused:
                await carol.history(conversation, timeout=WAIT)
            assert refused.value.code == "FORBIDDEN"

    run(scenario)


def test_calls_of_the_same_kind_in_flight_together_each_get_their_own_answer(stack, named_user):
    _, alice_tokens = named_user("alice")
    _, bob_tokens = named_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice:
            found_bob, found_alice = await asyncio.gather(
                alice.find_users("Bob", timeout=WAIT), alice.find_users("Alice", timeout=WAIT)
            )
            assert bob_tokens.sub in [u.user_id for u in found_bob]
            assert alice_tokens.sub not in [u.user_id for u in found_alice]  # never the caller

    run(scenario)


def test_ping_is_answered_with_the_server_time(stack, named_user):
    _, tokens = named_user("alice")

    async def scenario() -> str:
        async with client_for(stack, tokens) as client:
            return await client.ping(timeout=WAIT)

    at = run(scenario)
    assert len(at) == 24 and at.endswith("Z")


def test_terminal_opens_a_conversation_by_username_and_shows_the_read_tick(stack, named_user, tmp_path):
    alice_name, _ = named_user("alice")
    bob_name, bob = named_user("bob")
    with ChatSession(stack.target, bob.id_token) as bob_phone:
        terminal = Terminal(*where(stack, tmp_path), "--username", alice_name, "--password", PASSWORD,
                            "--to", bob_name)
        try:
            terminal.expect("conversation with Bob")
            terminal.type("did you read this?")
            message = bob_phone.receive_until("message")["message"]
            bob_phone.send("markRead", conversationId=message["conversationId"], messageIds=[message["messageId"]])
            assert bob_phone.receive_until("marked")["messageIds"] == [message["messageId"]]
            terminal.expect("#1 ✓✓ read")
        finally:
            status = terminal.finish()
    assert status == 0
