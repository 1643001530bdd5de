"""The asyncio client against the real stack: chat, a killed socket, a lost ack, a stale token.

Only ``sendMessage`` and ``syncMessages`` are used here; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import boto3
import pytest

from chatclient import (
    Backoff,
    ChatClient,
    ChatSession,
    CognitoTokenSource,
    ConnectionState,
    ConnectionStateChanged,
    Event,
    EventStream,
    MessageAcked,
    MessageReceived,
    MessageStatus,
    MessageStatusChanged,
    OutgoingMessage,
    SyncCompleted,
    conversation_id,
)

from .conftest import client_for, run

pytestmark = pytest.mark.e2e

WAIT = 30.0


async def next_matching(events: EventStream, predicate: Callable[[Event], bool], timeout: float = WAIT) -> Event:
    """The next event for which ``predicate`` holds, skipping others (bounded by ``timeout``)."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if predicate(event):
                return event
    raise AssertionError("the client closed before the event came")


def received(event: Event, message_id: str | None = None) -> bool:
    return isinstance(event, MessageReceived) and message_id in (None, event.message.message_id)


def in_state(state: ConnectionState) -> Callable[[Event], bool]:
    return lambda event: isinstance(event, ConnectionStateChanged) and event.state is state


def status_of(message_id: str, status: MessageStatus) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, MessageStatusChanged) and (e.message_id, e.status) == (message_id, status)


def connections_table(stack) -> str:
    if stack.local:
        return stack.table("ConnectionsTable")
    cloudformation = boto3.client("cloudformation", region_name=stack.target.region)
    outputs = cloudformation.describe_stacks(StackName=os.environ["CHAT_E2E_STACK_NAME"])["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "ConnectionsTableName")


async def until_server_forgot_connections_of(stack, user_id: str, timeout: float = WAIT) -> None:
    """Wait for ``$disconnect`` to remove the user's connections (nothing to await but the table)."""
    dynamodb, table = stack.dynamodb(), connections_table(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await asyncio.to_thread(
            dynamodb.query, TableName=table, IndexName="UserIdIndex",
            KeyConditionExpression="userId = :u", ExpressionAttributeValues={":u": {"S": user_id}},
        )
        if answer["Count"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server still lists a connection of {user_id}")


class Gate:
    """A reconnect delay that lasts until the test opens the gate."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.waiting = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.waiting.set()
        await self.opened.wait()


def test_two_clients_chat_and_the_sender_sees_sent_then_delivered(stack, new_user):
    alice_tokens, bob_tokens = new_user("alice"), new_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice, client_for(stack, bob_tokens) as bob:
            alice_events, bob_events = alice.events(), bob.events()
            await asyncio.gather(alice.wait_online(WAIT), bob.wait_online(WAIT))

            hello = await alice.send_message(bob.user_id, "hello bob")
            ack = await alice.wait_acked(hello, WAIT)
            assert ack.message_id == hello
            got = await next_matching(bob_events, received)
            assert isinstance(got, MessageReceived)
            assert (got.message.message_id, got.message.content, got.via) == (hello, "hello bob", "live")
            assert got.message.sender_id == alice.user_id
            assert got.message.conversation_id == conversation_id(alice.user_id, bob.user_id)
            await next_matching(alice_events, status_of(hello, MessageStatus.DELIVERED))

            reply = await bob.send_message(alice.user_id, "hi alice", reply_to_message_id=hello)
            got = await next_matching(alice_events, received)
            assert isinstance(got, MessageReceived)
            assert (got.message.message_id, got.message.reply_to_message_id) == (reply, hello)
            await next_matching(bob_events, status_of(reply, MessageStatus.DELIVERED))

    run(scenario)


def test_recipient_whose_socket_dies_reconnects_syncs_and_reports_every_message_once(stack, new_user):
    alice_tokens, bob_tokens = new_user("alice"), new_user("bob")

    async def scenario() -> None:
        gate = Gate()
        async with client_for(stack, alice_tokens) as alice, client_for(stack, bob_tokens, sleep=gate) as bob:
            bob_events = bob.events()
            seen: list[MessageReceived] = []
            bob.subscribe(lambda e: seen.append(e) if isinstance(e, MessageReceived) else None)
            await asyncio.gather(alice.wait_online(WAIT), bob.wait_online(WAIT))

            first = await alice.send_message(bob.user_id, "one")
            await next_matching(bob_events, lambda e: received(e, first))

            # GIVEN bob's socket dies without a close frame (the network went away)
            connection = bob.connection
            assert connection is not None
            connection.transport.abort()
            await next_matching(bob_events, in_state(ConnectionState.RECONNECTING))
            await until_server_forgot_connections_of(stack, bob.user_id)

            # WHEN alice keeps writing while bob is away
            while_away = [await alice.send_message(bob.user_id, f"while away {i}") for i in range(3)]
            for message_id in while_away:
                await alice.wait_acked(message_id, WAIT)

            # AND bob comes back
            gate.opened.set()
            await next_matching(bob_events, lambda e: isinstance(e, SyncCompleted))
            await bob.wait_online(WAIT)
            last = await alice.send_message(bob.user_id, "welcome back")
            await next_matching(bob_events, lambda e: received(e, last))

            # THEN bob reported every message exactly once. The missed ones came with the
            # sync, or live when a push raced with the reconnect (the server acks the sender
            # before it looks for the recipient's connections): either way once.
            ids = [e.message.message_id for e in seen]
            assert sorted(ids) == sorted([first, *while_away, last])
            assert (ids[0], ids[-1]) == (first, last)
            assert {e.via for e in seen[1:-1]} <= {"live", "sync"}

    run(scenario)


def test_a_send_whose_ack_was_lost_is_resent_from_the_outbox_and_stored_once(stack, new_user):
    alice_tokens, bob_tokens = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice_tokens.sub, bob_tokens.sub)

    # GIVEN the server stored a message but the app stopped before it recorded the ack
    with ChatSession(stack.target, alice_tokens.id_token) as session:
        message_id = session.send_message(conversation, bob_tokens.sub, "did this arrive?")
        assert session.receive_until("ack")["messageId"] == message_id
    persisted = OutgoingMessage(message_id, conversation, bob_tokens.sub, "did this arrive?")

    async def scenario() -> None:
        # WHEN the app starts again with its persisted outbox
        alice = client_for(stack, alice_tokens, outbox=[persisted])
        alice_events = alice.events()
        async with alice:
            ack = await alice.wait_acked(message_id, WAIT)
            assert ack.message_id == message_id
            assert alice.outbox == []
            await alice.wait_online(WAIT)
        # THEN it reported the ack once (the server acked the resend as a repeat)
        assert [e async for e in alice_events if isinstance(e, MessageAcked)] == [ack]

    run(scenario)

    # AND bob finds the message once
    with ChatSession(stack.target, bob_tokens.id_token) as bob:
        bob.send("syncMessages")
        sync = bob.receive_until("sync")
    assert [m["messageId"] for m in sync["messages"]] == [message_id]


def test_a_send_cut_off_by_a_dead_socket_is_retried_after_reconnect_and_delivered_once(stack, new_user):
    alice_tokens, bob_tokens = new_user("alice"), new_user("bob")

    async def scenario() -> None:
        async with client_for(stack, alice_tokens) as alice, client_for(stack, bob_tokens) as bob:
            alice_events, bob_events = alice.events(), bob.events()
            seen: list[str] = []
            acks: list[str] = []
            bob.subscribe(lambda e: seen.append(e.message.message_id) if isinstance(e, MessageReceived) else None)
            alice.subscribe(lambda e: acks.append(e.message_id) if isinstance(e, MessageAcked) else None)
            await asyncio.gather(alice.wait_online(WAIT), bob.wait_online(WAIT))

            # GIVEN alice's socket dies right after the frame went out, before any ack
            connection = alice.connection
            assert connection is not None
            message_id = await alice.send_message(bob.user_id, "through a dying socket")
            connection.transport.abort()

            # WHEN the client reconnects, THEN the outbox resends it and it is acked once
            await alice.wait_acked(message_id, WAIT)
            await next_matching(alice_events, in_state(ConnectionState.ONLINE))
            await next_matching(bob_events, lambda e: received(e, message_id))
            # A round trip on bob's side after the message: any duplicate push would be here by now.
            marker = await alice.send_message(bob.user_id, "marker")
            await next_matching(bob_events, lambda e: received(e, marker))
            await alice.wait_acked(marker, WAIT)
            assert seen == [message_id, marker]
            assert acks == [message_id, marker]

    run(scenario)


def test_an_expired_token_is_refreshed_with_cognito_and_the_client_connects(stack, new_user):
    tokens = new_user("alice")

    class StaleFirst(CognitoTokenSource):
        """Hands out a token the authorizer refuses until asked to refresh."""

        async def id_token(self, *, force_refresh: bool = False) -> str:
            if not force_refresh and self.refreshes == 0:
                return tokens.id_token[:-4] + "AAAA"  # signature broken: 403
            return await super().id_token(force_refresh=force_refresh)

    async def scenario() -> None:
        source = StaleFirst.for_target(stack.target, tokens)
        async with ChatClient(stack.target.websocket_url, source, backoff=Backoff(base=0.05, max_delay=0.5)) as alice:
            await alice.wait_online(WAIT)
            assert source.refreshes == 1
            assert source.tokens.sub == tokens.sub

    run(scenario)
