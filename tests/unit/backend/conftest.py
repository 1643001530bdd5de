"""Unit fixtures: the domain with in-memory stores, a recording notifier and a fake clock.

Nothing here touches the network; handlers run against the same fakes through the
composition root's ``override``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chat_fakes import (
    InMemoryConnectionStore,
    InMemoryConversationStore,
    InMemoryMessageStore,
    InMemoryUserDirectory,
    RecordingNotifier,
)

from chat.config import Container, override
from chat.domain.models import Caller, Identity, SendMessageRequest, UserProfile
from chat.domain.services import ConnectionService, ConversationService, DirectoryService, MessagingService

EVENTS = Path(__file__).resolve().parents[3] / "events"

ALICE = Identity(user_id="0b6c2d0e-alice", user_name="Alice")
BOB = Identity(user_id="5f1e8a3c-bob", user_name="Bob")
CAROL = Identity(user_id="9a7d4b2f-carol", user_name="Carol")
#: What the template gives the message functions (the names are never used by the fakes).
ENVIRON = {
    "CONNECTIONS_TABLE": "Connections_unit",
    "USER_CONNECTIONS_TABLE": "UserConnections_unit",
    "MESSAGES_TABLE": "Messages_unit",
    "CONVERSATIONS_TABLE": "Conversations_unit",
    "USER_POOL_ID": "us-east-1_unit",
}


class TickingClock:
    """Each reading is one second after the previous: timestamps are distinct and ordered."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def build_ws_event(name: str, *, connection_id: str, user: Identity | None, body: Any = None) -> dict[str, Any]:
    """A sample event re-addressed to one connection and user; ``body`` dicts become JSON."""
    event = copy.deepcopy(load_event(name))
    context = event["requestContext"]
    context["connectionId"] = connection_id
    if user is None:
        context.pop("authorizer", None)
    else:
        context["authorizer"] = {"principalId": user.user_id, "userId": user.user_id, "userName": user.user_name}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


class FakeLambdaContext:
    function_name = "chat-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chat-test"
    aws_request_id = "6f1c8a52-0d7e-4b1a-9c3e-2a5b7d9e1f00"


@pytest.fixture
def alice() -> Identity:
    return ALICE


@pytest.fixture
def bob() -> Identity:
    return BOB


@pytest.fixture
def carol() -> Identity:
    return CAROL


@pytest.fixture
def ws_event() -> Callable[..., dict[str, Any]]:
    """``ws_event("send_message", connection_id=..., user=..., body={...})``."""
    return build_ws_event


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def connections() -> InMemoryConnectionStore:
    return InMemoryConnectionStore()


@pytest.fixture
def messages(connections) -> InMemoryMessageStore:
    return InMemoryMessageStore(connections)


@pytest.fixture
def conversations(messages) -> InMemoryConversationStore:
    return InMemoryConversationStore(messages)


@pytest.fixture
def directory() -> InMemoryUserDirectory:
    """The pool holds Alice, Bob and Carol (with usernames and emails)."""
    pool = InMemoryUserDirectory()
    for user in (ALICE, BOB, CAROL):
        username = user.user_name.lower()
        pool.add(UserProfile(user.user_id, user.user_name, username), f"{username}@example.com")
    return pool


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def connect(connections, notifier, clock) -> Callable[[Identity, str], Caller]:
    """Open a connection for a user: stored like $connect does, and reachable by posts."""

    def open_connection(user: Identity, connection_id: str) -> Caller:
        ConnectionService(connections, clock).open(connection_id, user)
        notifier.open(connection_id)
        return Caller(connection_id=connection_id, user=user)

    return open_connection


@pytest.fixture
def messaging(messages, connections, directory, notifier, clock) -> MessagingService:
    return MessagingService(
        messages=messages, connections=connections, directory=directory, notifier=notifier, clock=clock
    )


@pytest.fixture
def listing(conversations, messages, directory, connections, notifier) -> ConversationService:
    return ConversationService(
        conversations=conversations, messages=messages, directory=directory, connections=connections, notifier=notifier
    )


@pytest.fixture
def finder(directory, connections, notifier) -> DirectoryService:
    return DirectoryService(directory=directory, connections=connections, notifier=notifier)


@pytest.fixture
def backend(messages, connections, conversations, directory, notifier, clock) -> Iterator[Container]:
    """Handlers see the fakes (and table names that are never used)."""
    with override(
        environ=ENVIRON,
        connections=connections,
        messages=messages,
        conversations=conversations,
        directory=directory,
        notifier=notifier,
        clock=clock,
    ) as container:
        yield container


#: The conversation the ``chat`` fixture's messages go to.
CONVERSATION = "conv-ab"


@pytest.fixture
def chat(messaging, connect, alice, bob):
    """Alice on two devices, Bob on one; ``say(n)`` sends Alice's n-th message to Bob."""
    phone = connect(alice, "A-phone")
    connect(alice, "A-laptop")
    reader = connect(bob, "B1")

    def say(n: int, sender=phone, recipient=bob, conversation=CONVERSATION) -> str:
        frame = {"messageId": f"m-{n}", "conversationId": conversation, "recipientId": recipient.user_id,
                 "content": f"text {n}"}
        messaging.send(sender, SendMessageRequest.model_validate(frame))
        return f"m-{n}"

    return phone, reader, say
