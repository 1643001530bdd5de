"""The records the backend works with: identities, connections, messages and frames in.

Wire names are camelCase (client protocol v1 and the table attributes); Python names are
snake_case, mapped by pydantic aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "CONNECTION_TTL_SECONDS",
    "DEFAULT_SYNC_LIMIT",
    "KNOWN_ACTIONS",
    "MAX_CONTENT_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_POST_BYTES",
    "MAX_SYNC_LIMIT",
    "Caller",
    "Connection",
    "Identity",
    "Message",
    "MessageStatus",
    "PendingPage",
    "PendingPosition",
    "SendMessageRequest",
    "SyncMessagesRequest",
    "iso_timestamp",
]

#: Longest message text, in characters. Keeps one ``message`` frame far below the
#: 128 KB ``@connections`` post limit whatever the script (4 bytes per character at most).
MAX_CONTENT_LENGTH = 4000
#: Longest client-chosen id (messageId, conversationId, recipientId, replyToMessageId).
MAX_ID_LENGTH = 128
#: API Gateway's cap on one ``@connections`` POST body (larger posts get 413).
MAX_POST_BYTES = 128 * 1024
DEFAULT_SYNC_LIMIT = 50
MAX_SYNC_LIMIT = 100
#: Connections outlive API Gateway's 2-hour cap by far; the TTL only sweeps rows whose
#: $disconnect never ran.
CONNECTION_TTL_SECONDS = 24 * 60 * 60
#: The routes the template declares besides $connect/$disconnect/$default.
KNOWN_ACTIONS = ("sendMessage", "syncMessages")


def iso_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``, e.g. ``2026-01-01T12:00:00.123Z``.

    Fixed width, so timestamps sort as strings (the tables' range keys rely on it).
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class MessageStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"


class Identity(BaseModel):
    """Who a connection belongs to, as the authorizer established it."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    user_name: str


@dataclass(frozen=True)
class Caller:
    """The connection a frame came in on, and its user."""

    connection_id: str
    user: Identity


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    user_name: str
    connected_at: str
    #: Epoch seconds after which DynamoDB may delete the row.
    ttl: int


class _WireModel(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


class Message(_WireModel):
    """A stored message, shaped as the ``message`` frame carries it."""

    message_id: str
    conversation_id: str
    sender_id: str
    sender_name: str
    recipient_id: str
    content: str
    timestamp: str
    status: MessageStatus = MessageStatus.SENT
    is_deleted: bool = False
    reply_to_message_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


@dataclass(frozen=True)
class PendingPosition:
    """Where a page of a user's pending messages ended (exclusive start of the next)."""

    message_id: str
    timestamp: str


@dataclass(frozen=True)
class PendingPage:
    """Oldest-first undelivered messages for one user."""

    messages: list[Message]
    #: True when the store holds more pending messages after the last one here.
    has_more: bool


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class _ClientFrame(BaseModel):
    # Unknown fields are ignored on purpose: a forged "senderId" must have no effect, and
    # newer clients may add fields older servers do not know yet.
    model_config = ConfigDict(extra="ignore", frozen=True)


class SendMessageRequest(_ClientFrame):
    """``sendMessage``. The sender is never read from here: it comes from the authorizer."""

    message_id: StrictStr = Field(alias="messageId", min_length=1, max_length=MAX_ID_LENGTH)
    conversation_id: StrictStr = Field(alias="conversationId", min_length=1, max_length=MAX_ID_LENGTH)
    recipient_id: StrictStr = Field(alias="recipientId", min_length=1, max_length=MAX_ID_LENGTH)
    content: StrictStr = Field(alias="content", min_length=1, max_length=MAX_CONTENT_LENGTH)
    reply_to_message_id: StrictStr | None = Field(
        default=None, alias="replyToMessageId", min_length=1, max_length=MAX_ID_LENGTH
    )

    not_blank = field_validator("message_id", "conversation_id", "recipient_id", "content")(_not_blank)


class SyncMessagesRequest(_ClientFrame):
    """``syncMessages``: a page of what the user has not received yet."""

    since: StrictStr | None = Field(default=None, alias="since", min_length=1, max_length=2048)
    limit: StrictInt = Field(default=DEFAULT_SYNC_LIMIT, alias="limit", ge=1, le=MAX_SYNC_LIMIT)
