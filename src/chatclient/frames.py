"""Protocol v1 on the wire: client frames to build, server frames to read.

Everything here is free of I/O so it can be tested, and reused by other clients, without a
socket. Server frames are read leniently: unknown fields are ignored (a newer server may add
some), but a frame missing a field the client needs raises :class:`MalformedFrame`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "ACTIONS",
    "PERMANENT_ERRORS",
    "ChatMessage",
    "ConversationPage",
    "ConversationSummary",
    "ErrorCode",
    "HistoryPage",
    "MalformedFrame",
    "MessageStatus",
    "UserSummary",
    "action_frame",
    "decode_server_frame",
    "encode_client_frame",
    "gateway_error",
]

#: The ``action`` values protocol v1 defines.
ACTIONS = (
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


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` frame."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"


#: Codes that will not change if the same frame is sent again: a message refused with one
#: of these leaves the outbox. INTERNAL and RATE_LIMITED are worth a retry.
PERMANENT_ERRORS = frozenset(
    {ErrorCode.VALIDATION_ERROR, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, ErrorCode.PAYLOAD_TOO_LARGE}
)


class MessageStatus(StrEnum):
    """Where a message is on its way: it only ever moves forward."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"

    @property
    def rank(self) -> int:
        """0, 1, 2: comparing ranks tells whether a status update moves forward."""
        return _STATUS_ORDER.index(self)


_STATUS_ORDER = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


class MalformedFrame(ValueError):
    """A server frame that is not JSON, not an object, or lacks a field the client needs."""


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise MalformedFrame(f"{key} must be a string, got {value!r}")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ChatMessage:
    """A message as ``message`` and ``sync`` frames carry it."""

    message_id: str
    conversation_id: str
    sender_id: str
    sender_name: str
    recipient_id: str
    content: str
    #: Server time the message was stored, ISO-8601 UTC (sorts as a string).
    timestamp: str
    status: str
    is_deleted: bool = False
    reply_to_message_id: str | None = None

    @classmethod
    def from_wire(cls, data: Any) -> ChatMessage:
        """Read the ``message`` object of a frame.

        Raises:
            MalformedFrame: a required field is missing or not a string.
        """
        if not isinstance(data, dict):
            raise MalformedFrame(f"a message must be an object, got {data!r}")
        return cls(
            message_id=_text(data, "messageId"),
            conversation_id=_text(data, "conversationId"),
            sender_id=_text(data, "senderId"),
            sender_name=_optional_text(data, "senderName") or "",
            recipient_id=_text(data, "recipientId"),
            content=_optional_text(data, "content") or "",
            timestamp=_text(data, "timestamp"),
            status=_optional_text(data, "status") or MessageStatus.SENT.value,
            is_deleted=data.get("isDeleted") is True,
            reply_to_message_id=_optional_text(data, "replyToMessageId"),
        )


@dataclass(frozen=True)
class UserSummary:
    """One entry of a ``users`` frame."""

    user_id: str
    name: str
    username: str

    @classmethod
    def from_wire(cls, data: Any) -> UserSummary:
        if not isinstance(data, dict):
            raise MalformedFrame(f"a user must be an object, got {data!r}")
        return cls(_text(data, "userId"), _optional_text(data, "name") or "", _optional_text(data, "username") or "")


@dataclass(frozen=True)
class ConversationSummary:
    """One entry of a ``conversations`` frame."""

    conversation_id: str
    participants: tuple[str, ...]
    other_user_id: str
    other_user_name: str
    last_message: ChatMessage | None
    unread_count: int
    updated_at: str

    @classmethod
    def from_wire(cls, data: Any) -> ConversationSummary:
        if not isinstance(data, dict):
            raise MalformedFrame(f"a conversation must be an object, got {data!r}")
        other = data.get("otherUser")
        if not isinstance(other, dict):
            raise MalformedFrame("otherUser must be an object")
        last = data.get("lastMessage")
        unread = data.get("unreadCount", 0)
        return cls(
            conversation_id=_text(data, "conversationId"),
            participants=tuple(p for p in data.get("participants", []) if isinstance(p, str)),
            other_user_id=_text(other, "userId"),
            other_user_name=_optional_text(other, "name") or "",
            last_message=ChatMessage.from_wire(last) if last is not None else None,
            unread_count=unread if isinstance(unread, int) else 0,
            updated_at=_optional_text(data, "updatedAt") or "",
        )


@dataclass(frozen=True)
class ConversationPage:
    """A ``conversations`` frame: pass ``cursor`` back to get the next page while ``has_more``."""

    conversations: tuple[ConversationSummary, ...]
    cursor: str | None
    has_more: bool


@dataclass(frozen=True)
class HistoryPage:
    """A ``history`` frame: one conversation's messages, newest first (deleted ones as
    tombstones). Pass ``cursor`` back to get older ones while ``has_more``."""

    conversation_id: str
    messages: tuple[ChatMessage, ...]
    cursor: str | None
    has_more: bool

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> HistoryPage:
        cursor = data.get("cursor")
        return cls(
            conversation_id=_text(data, "conversationId"),
            messages=tuple(ChatMessage.from_wire(m) for m in data.get("messages", [])),
            cursor=cursor if isinstance(cursor, str) else None,
            has_more=data.get("hasMore") is True,
        )


def gateway_error(frame: dict[str, Any]) -> bool:
    """True for API Gateway's own frames (``{"message": "Forbidden", "connectionId": ...}``).

    They have no ``type``; the protocol says to treat them as ``INTERNAL``.
    """
    return "type" not in frame and isinstance(frame.get("message"), str)


def decode_server_frame(text: str | bytes) -> dict[str, Any]:
    """Parse one server frame, mapping API Gateway's own frames to ``error``/``INTERNAL``.

    Raises:
        MalformedFrame: not a JSON object, or neither a typed frame nor a gateway frame.
    """
    try:
        frame = json.loads(text)
    except ValueError:
        raise MalformedFrame("not JSON") from None
    if not isinstance(frame, dict):
        raise MalformedFrame("not a JSON object")
    if gateway_error(frame):
        # Its requestId is API Gateway's own, not one a client chose: kept under another
        # name so it is never taken for the answer to a request.
        return {
            "type": "error",
            "code": ErrorCode.INTERNAL.value,
            "message": frame["message"],
            "gatewayRequestId": frame.get("requestId"),
        }
    if not isinstance(frame.get("type"), str):
        raise MalformedFrame("no type")
    return frame


def action_frame(action: str, **fields: Any) -> dict[str, Any]:
    """A client frame: ``{"action": action, **fields}`` without the fields that are None."""
    return {"action": action, **{key: value for key, value in fields.items() if value is not None}}


def encode_client_frame(frame: dict[str, Any]) -> str:
    """The text a client frame goes out as (compact; UTF-8 kept, it is a text frame anyway)."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
