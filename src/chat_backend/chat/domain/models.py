"""The records the backend works with: identities, connections, messages and frames in.

Wire names are camelCase (client protocol v1 and the table attributes); Python names are
snake_case, mapped by pydantic aliases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "CONNECTION_TTL_SECONDS",
    "DEFAULT_CONVERSATIONS_LIMIT",
    "DEFAULT_FIND_USERS_LIMIT",
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_SYNC_LIMIT",
    "FRAME_LIMIT",
    "FRAME_WINDOW_SECONDS",
    "ID_PATTERN",
    "KNOWN_ACTIONS",
    "MAX_ACK_IDS",
    "MAX_CONTENT_LENGTH",
    "MAX_CONVERSATIONS_LIMIT",
    "MAX_FIND_USERS_LIMIT",
    "MAX_HISTORY_LIMIT",
    "MAX_ID_LENGTH",
    "MAX_MARK_READ_IDS",
    "MAX_POST_BYTES",
    "MAX_QUERY_LENGTH",
    "MAX_SYNC_LIMIT",
    "AckMessagesRequest",
    "Caller",
    "Connection",
    "Conversation",
    "ConversationPosition",
    "DeleteMessageRequest",
    "FindUsersRequest",
    "FrameTicket",
    "GetHistoryRequest",
    "HistoryPage",
    "HistoryPosition",
    "Identity",
    "ListConversationsRequest",
    "MarkReadRequest",
    "Membership",
    "MembershipPage",
    "Message",
    "MessageStatus",
    "PendingPage",
    "PendingPosition",
    "SendMessageRequest",
    "SyncMessagesRequest",
    "UserProfile",
    "iso_timestamp",
    "participants_of",
]

#: Longest message text, in characters. Keeps one ``message`` frame far below the
#: 128 KB ``@connections`` post limit whatever the script (4 bytes per character at most).
MAX_CONTENT_LENGTH = 4000
#: Longest client-chosen id (messageId, conversationId, recipientId, replyToMessageId).
MAX_ID_LENGTH = 128
#: The one shape of every id a frame names: 1 to MAX_ID_LENGTH ASCII letters, digits, "-"
#: and "_". UUIDs (Cognito subs, client message ids) and ``dm_<id>_<id>`` fit; "#" (the
#: conversation item's key), other separators, spaces and control characters do not.
ID_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}")
_ID_SHAPE = "letters, digits, - and _ only"
#: Conversation ids of this form name the 1:1 conversation of two users.
DIRECT_PREFIX = "dm_"


def direct_conversation_id(user_a: str, user_b: str) -> str:
    """The id of two users' 1:1 conversation: ``dm_<smaller id>_<larger id>``, the same from both sides."""
    return DIRECT_PREFIX + "_".join(sorted((user_a, user_b)))
#: API Gateway's cap on one ``@connections`` POST body (larger posts get 413).
MAX_POST_BYTES = 128 * 1024
DEFAULT_SYNC_LIMIT = 50
MAX_SYNC_LIMIT = 100
#: Connections outlive API Gateway's 2-hour cap by far; the TTL only sweeps rows whose
#: $disconnect never ran.
CONNECTION_TTL_SECONDS = 24 * 60 * 60
DEFAULT_CONVERSATIONS_LIMIT = 20
MAX_CONVERSATIONS_LIMIT = 50
#: One markRead names at most this many messages.
MAX_MARK_READ_IDS = 100
#: One ackMessages confirms at most this many messages.
MAX_ACK_IDS = 100
#: Longest findUsers query, in characters.
MAX_QUERY_LENGTH = 64
DEFAULT_FIND_USERS_LIMIT = 10
MAX_FIND_USERS_LIMIT = 20
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 100
#: Per-connection rate limit: at most FRAME_LIMIT frames in each fixed window of
#: FRAME_WINDOW_SECONDS. A chat app sends far less; a runaway client loop sends far more.
#: The stage's throttling (template) caps the whole API; this caps one socket.
FRAME_LIMIT = 30
FRAME_WINDOW_SECONDS = 10
#: The routes the template declares besides $connect/$disconnect/$default.
KNOWN_ACTIONS = (
    "sendMessage",
    "syncMessages",
    "markRead",
    "ackMessages",
    "listConversations",
    "findUsers",
    "deleteMessage",
    "getHistory",
    "ping",
)


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


@dataclass
class FrameTicket:
    """One incoming frame's claim on its connection's rate-limit window.

    Every frame is counted once: ``counted`` records that it was, so a refusal path does
    not count it a second time.
    """

    connection_id: str
    #: Which fixed window the frame falls in (epoch seconds // FRAME_WINDOW_SECONDS).
    window: int
    limit: int
    #: Epoch seconds after which the window's counter may be swept (DynamoDB TTL).
    expires_at: int
    counted: bool = False


def participants_of(user_a: str, user_b: str) -> tuple[str, str]:
    """The participants of a 1:1 conversation in their stored (sorted) order."""
    low, high = sorted((user_a, user_b))
    return low, high


@dataclass(frozen=True)
class Conversation:
    """A 1:1 conversation; its participants are fixed by its first message."""

    conversation_id: str
    #: Sorted; the same user twice for a note-to-self.
    participants: tuple[str, str]


@dataclass(frozen=True)
class Membership:
    """One user's view of one conversation: what the conversation list shows."""

    conversation_id: str
    user_id: str
    other_user_id: str
    #: Known once the other participant has sent a message here (their token names them).
    other_user_name: str | None
    last_message_id: str
    #: The last message's timestamp: the conversation list is ordered by it, newest first.
    updated_at: str
    #: Messages the other participant sent here that this user has not marked read.
    unread_count: int


@dataclass(frozen=True)
class ConversationPosition:
    """Where a page of a user's conversation list ended (exclusive start of the next)."""

    conversation_id: str
    updated_at: str


@dataclass(frozen=True)
class MembershipPage:
    """A user's conversations, most recent activity first."""

    memberships: list[Membership]
    has_more: bool


@dataclass(frozen=True)
class UserProfile:
    """A user as findUsers shows them."""

    user_id: str
    name: str
    username: str


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


@dataclass(frozen=True)
class HistoryPosition:
    """Where a page of a conversation's history ended (exclusive start of the next, older one)."""

    message_id: str
    timestamp: str


@dataclass(frozen=True)
class HistoryPage:
    """A conversation's messages, newest first."""

    messages: list[Message]
    #: True when the store holds older messages after the last one here.
    has_more: bool


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _an_id(value: str | None) -> str | None:
    if value is not None and not ID_PATTERN.fullmatch(value):
        raise ValueError(f"must be an id: {_ID_SHAPE}")
    return value


def _ids(ids: list[str]) -> list[str]:
    """Ids of a list, each of the one id shape, without repeats (first occurrence kept)."""
    if any(not 1 <= len(i) <= MAX_ID_LENGTH for i in ids):
        raise ValueError(f"must hold ids of 1 to {MAX_ID_LENGTH} characters")
    if not all(ID_PATTERN.fullmatch(i) for i in ids):
        raise ValueError(f"must hold ids: {_ID_SHAPE}")
    return list(dict.fromkeys(ids))


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
    ids = field_validator("message_id", "conversation_id", "recipient_id", "reply_to_message_id")(_an_id)

    @model_validator(mode="after")
    def _reply_to_another(self) -> SendMessageRequest:
        if self.reply_to_message_id == self.message_id:
            raise ValueError("replyToMessageId must name another message")
        return self


class SyncMessagesRequest(_ClientFrame):
    """``syncMessages``: a page of what the user has not received yet."""

    since: StrictStr | None = Field(default=None, alias="since", min_length=1, max_length=2048)
    limit: StrictInt = Field(default=DEFAULT_SYNC_LIMIT, alias="limit", ge=1, le=MAX_SYNC_LIMIT)


def _no_filter_quotes(value: str) -> str:
    # Cognito's filter syntax quotes the value; refusing quotes and backslashes is simpler
    # and safer than escaping them, and no name, username or email prefix needs them.
    if '"' in value or "\\" in value:
        raise ValueError('must not contain " or \\')
    return value


class MarkReadRequest(_ClientFrame):
    """``markRead``: either the listed messages, or everything received up to one."""

    conversation_id: StrictStr = Field(alias="conversationId", min_length=1, max_length=MAX_ID_LENGTH)
    message_ids: list[StrictStr] | None = Field(
        default=None, alias="messageIds", min_length=1, max_length=MAX_MARK_READ_IDS
    )
    up_to: StrictStr | None = Field(default=None, alias="upTo", min_length=1, max_length=MAX_ID_LENGTH)

    not_blank = field_validator("conversation_id")(_not_blank)
    ids = field_validator("conversation_id", "up_to")(_an_id)

    @field_validator("message_ids")
    @classmethod
    def _ids_are_ids(cls, ids: list[str] | None) -> list[str] | None:
        # A repeated id would be counted twice against the unread counter.
        return None if ids is None else _ids(ids)

    @model_validator(mode="after")
    def _one_selector(self) -> MarkReadRequest:
        if (self.message_ids is None) == (self.up_to is None):
            raise ValueError("Give exactly one of messageIds and upTo")
        return self


class AckMessagesRequest(_ClientFrame):
    """``ackMessages``: the recipient's device holds these messages (they may leave its
    pending set)."""

    message_ids: list[StrictStr] = Field(alias="messageIds", min_length=1, max_length=MAX_ACK_IDS)

    @field_validator("message_ids")
    @classmethod
    def _ids_are_ids(cls, ids: list[str]) -> list[str]:
        return _ids(ids)


class ListConversationsRequest(_ClientFrame):
    """``listConversations``: a page of the caller's conversations."""

    cursor: StrictStr | None = Field(default=None, alias="cursor", min_length=1, max_length=2048)
    limit: StrictInt = Field(
        default=DEFAULT_CONVERSATIONS_LIMIT, alias="limit", ge=1, le=MAX_CONVERSATIONS_LIMIT
    )


class FindUsersRequest(_ClientFrame):
    """``findUsers``: people to start a conversation with."""

    query: StrictStr = Field(alias="query", min_length=1, max_length=MAX_QUERY_LENGTH)
    limit: StrictInt = Field(default=DEFAULT_FIND_USERS_LIMIT, alias="limit", ge=1, le=MAX_FIND_USERS_LIMIT)

    not_blank = field_validator("query")(_not_blank)
    no_quotes = field_validator("query")(_no_filter_quotes)


class DeleteMessageRequest(_ClientFrame):
    """``deleteMessage``: the sender takes a message back."""

    message_id: StrictStr = Field(alias="messageId", min_length=1, max_length=MAX_ID_LENGTH)

    not_blank = field_validator("message_id")(_not_blank)
    ids = field_validator("message_id")(_an_id)


class GetHistoryRequest(_ClientFrame):
    """``getHistory``: a page of one conversation's messages, newest first."""

    conversation_id: StrictStr = Field(alias="conversationId", min_length=1, max_length=MAX_ID_LENGTH)
    cursor: StrictStr | None = Field(default=None, alias="cursor", min_length=1, max_length=2048)
    limit: StrictInt = Field(default=DEFAULT_HISTORY_LIMIT, alias="limit", ge=1, le=MAX_HISTORY_LIMIT)

    ids = field_validator("conversation_id")(_an_id)
