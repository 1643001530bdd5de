"""Client protocol v1: reading client frames and building server frames.

Every server frame has a ``type``. Reading a client frame either returns a validated
request model or raises :class:`ValidationFailed` with one sentence naming the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from chat.domain.errors import ErrorCode, PayloadTooLarge, ValidationFailed
from chat.domain.models import (
    ID_PATTERN,
    KNOWN_ACTIONS,
    MAX_ID_LENGTH,
    ConversationPosition,
    HistoryPosition,
    Membership,
    Message,
    MessageStatus,
    PendingPosition,
    UserProfile,
)

__all__ = [
    "ANSWER_TYPES",
    "ack_frame",
    "conversation_entry",
    "conversations_frame",
    "decode_conversation_cursor",
    "decode_cursor",
    "decode_history_cursor",
    "encode_conversation_cursor",
    "encode_cursor",
    "encode_frame",
    "encode_history_cursor",
    "error_frame",
    "history_frame",
    "marked_frame",
    "message_deleted_frame",
    "message_frame",
    "parse_frame",
    "pong_frame",
    "reject_unknown_action",
    "request_id_of",
    "status_frame",
    "sync_frame",
    "users_frame",
    "with_request_id",
]

RequestT = TypeVar("RequestT", bound=BaseModel)

_NOT_AN_OBJECT = 'The frame must be a JSON object with an "action" field.'
_BAD_CURSOR = "since is not a cursor this server issued; omit it to start from the oldest message."
_BAD_LIST_CURSOR = "cursor is not a cursor this server issued; omit it to start from the newest conversation."
_BAD_HISTORY_CURSOR = (
    "cursor is not a history cursor this server issued to you for this conversation; "
    "omit it to start from the newest message."
)


# ------------------------------------------------------------------ client -> server


def _json_object(body: str | None) -> dict[str, Any]:
    try:
        value = json.loads(body) if body else None
    except (ValueError, RecursionError):
        # RecursionError: nesting deeper than the parser's stack (e.g. 2000 "[").
        value = None
    if not isinstance(value, dict):
        raise ValidationFailed(_NOT_AN_OBJECT)
    return value


#: Pydantic's error types, as one sentence each; ``{field}`` is the field as sent, the rest
#: comes from the error's context.
_SENTENCES = {
    "missing": "{field} is required.",
    "string_type": "{field} must be a string.",
    # e.g. a lone surrogate ("\\ud800"): valid JSON, but not storable or sendable as UTF-8.
    "string_unicode": "{field} must be valid Unicode text.",
    "int_type": "{field} must be an integer.",
    "int_parsing": "{field} must be an integer.",
    "string_too_short": "{field} must not be empty.",
    "string_too_long": "{field} must be at most {max_length} characters.",
    "list_type": "{field} must be a list.",
    "too_short": "{field} must not be empty.",
    "too_long": "{field} must have at most {max_length} items.",
    "greater_than_equal": "{field} must be at least {ge}.",
    "less_than_equal": "{field} must be at most {le}.",
    "value_error": "{field} {error}.",
}


#: The field whose length is the frame's payload: over its limit is PAYLOAD_TOO_LARGE.
_PAYLOAD = ("content",)


def _sentence(error: ValidationError) -> str:
    """One sentence for the first problem pydantic found, naming the field as sent."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "frame"
    kind = first["type"]
    ctx = first.get("ctx", {})
    if kind == "value_error" and not first["loc"]:
        # A rule across fields: its sentence names the fields itself.
        return f"{ctx['error']}."
    return _SENTENCES.get(kind, "{field} is invalid.").format(field=field, **ctx)


def parse_frame(model: type[RequestT], body: str | None) -> RequestT:
    """Validate a client frame (the WebSocket message body) against ``model``.

    Raises:
        ValidationFailed: naming the first bad field; carries the frame's ``messageId``
            when it had a usable one, so the client can match the error to its message.
        PayloadTooLarge: the same, when the first problem is ``content`` over its limit.
    """
    data = _json_object(body)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message_id = data.get("messageId")
        usable_id = message_id if isinstance(message_id, str) and message_id else None
        first = exc.errors()[0]
        if first["type"] == "string_too_long" and first["loc"] == _PAYLOAD:
            raise PayloadTooLarge(_sentence(exc), message_id=usable_id) from None
        raise ValidationFailed(_sentence(exc), message_id=usable_id) from None


def request_id_of(body: str | None) -> str | None:
    """The frame's optional ``requestId`` (None when absent, null, or the body is no JSON
    object: the frame's own parsing refuses that).

    Raises:
        ValidationFailed: ``requestId`` is not an id (a string of 1 to 128 letters, digits,
            ``-`` and ``_``); the error cannot echo it, so it carries the ``messageId``
            when the frame has a usable one.
    """
    try:
        data = _json_object(body)
    except ValidationFailed:
        return None
    request_id = data.get("requestId")
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not ID_PATTERN.fullmatch(request_id):
        message_id = data.get("messageId")
        usable_id = message_id if isinstance(message_id, str) and message_id else None
        raise ValidationFailed(
            f"requestId must be a string of 1 to {MAX_ID_LENGTH} letters, digits, - and _.", message_id=usable_id
        )
    return request_id


def reject_unknown_action(body: str | None) -> NoReturn:
    """Answer a frame no route matched (the ``$default`` route).

    Raises:
        ValidationFailed: always, naming the action and the ones we know.
    """
    action = _json_object(body).get("action")
    if not isinstance(action, str):
        raise ValidationFailed(_NOT_AN_OBJECT)
    known = ", ".join(KNOWN_ACTIONS)
    raise ValidationFailed(f"Unknown action '{action}'. Known actions: {known}.")


# Cursors are opaque to clients: url-safe base64 of the JSON key where the page ended,
# the same shape as DynamoDB's LastEvaluatedKey on the index being paged.


def _encode_key(key: dict[str, str]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_key(cursor: str, fields: set[str], owner: tuple[str, str], refusal: str) -> dict[str, str]:
    """The key inside a cursor, checked to have exactly ``fields`` and to belong to
    ``owner`` (attribute, user id): a cursor issued to one user is useless to another."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ValidationFailed(refusal) from None
    if not isinstance(key, dict) or set(key) != fields:
        raise ValidationFailed(refusal)
    if not all(isinstance(value, str) and value for value in key.values()) or key[owner[0]] != owner[1]:
        raise ValidationFailed(refusal)
    return key


def encode_cursor(user_id: str, position: PendingPosition) -> str:
    """A ``sync`` cursor (a position in the user's pending messages)."""
    return _encode_key({"messageId": position.message_id, "pendingFor": user_id, "timestamp": position.timestamp})


def decode_cursor(user_id: str, cursor: str) -> PendingPosition:
    """Read a ``sync`` cursor back; it must have been issued to this same user.

    Raises:
        ValidationFailed: when the cursor is not one we issued to ``user_id``.
    """
    key = _decode_key(cursor, {"messageId", "pendingFor", "timestamp"}, ("pendingFor", user_id), _BAD_CURSOR)
    return PendingPosition(message_id=key["messageId"], timestamp=key["timestamp"])


def encode_conversation_cursor(user_id: str, position: ConversationPosition) -> str:
    """A ``conversations`` cursor (a position in the user's conversation list)."""
    return _encode_key(
        {"conversationId": position.conversation_id, "userId": user_id, "updatedAt": position.updated_at}
    )


def decode_conversation_cursor(user_id: str, cursor: str) -> ConversationPosition:
    """Read a ``conversations`` cursor back; it must have been issued to this same user.

    Raises:
        ValidationFailed: when the cursor is not one we issued to ``user_id``.
    """
    key = _decode_key(cursor, {"conversationId", "userId", "updatedAt"}, ("userId", user_id), _BAD_LIST_CURSOR)
    return ConversationPosition(conversation_id=key["conversationId"], updated_at=key["updatedAt"])


def encode_history_cursor(user_id: str, conversation_id: str, position: HistoryPosition) -> str:
    """A ``history`` cursor (a position in one conversation, for one reader)."""
    return _encode_key(
        {
            "conversationId": conversation_id,
            "messageId": position.message_id,
            "readerId": user_id,
            "timestamp": position.timestamp,
        }
    )


def decode_history_cursor(user_id: str, conversation_id: str, cursor: str) -> HistoryPosition:
    """Read a ``history`` cursor back; it must have been issued to this user for this
    conversation.

    Raises:
        ValidationFailed: when the cursor is not one we issued to ``user_id`` for
            ``conversation_id``.
    """
    fields = {"conversationId", "messageId", "readerId", "timestamp"}
    key = _decode_key(cursor, fields, ("readerId", user_id), _BAD_HISTORY_CURSOR)
    if key["conversationId"] != conversation_id:
        raise ValidationFailed(_BAD_HISTORY_CURSOR)
    return HistoryPosition(message_id=key["messageId"], timestamp=key["timestamp"])


# ------------------------------------------------------------------ server -> client

#: The frame types that answer a client's request; they echo its ``requestId``. Pushes
#: (``message``, ``status``, ``messageDeleted``) answer no request and never carry one.
ANSWER_TYPES = frozenset({"ack", "error", "sync", "marked", "conversations", "users", "pong", "history"})


def with_request_id(frame: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    """``frame`` carrying ``request_id`` when it answers a request that had one; otherwise
    ``frame`` unchanged (old clients that send none get no new field)."""
    if request_id is None or frame.get("type") not in ANSWER_TYPES:
        return frame
    return {**frame, "requestId": request_id}


def encode_frame(frame: dict[str, Any]) -> bytes:
    """The bytes a frame goes out as. UTF-8 rather than ``\\u`` escapes: up to 3x smaller for
    non-Latin text, which matters against the 128 KB post limit."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()


def ack_frame(message: Message) -> dict[str, Any]:
    return {"type": "ack", "messageId": message.message_id, "status": "sent", "timestamp": message.timestamp}


def message_frame(message: Message) -> dict[str, Any]:
    return {"type": "message", "message": message.to_wire()}


def status_frame(message: Message, status: MessageStatus, at: str) -> dict[str, Any]:
    """``delivered`` or ``read``, for the message's sender."""
    return {
        "type": "status",
        "messageId": message.message_id,
        "conversationId": message.conversation_id,
        "status": status.value,
        "at": at,
    }


def sync_frame(messages: Iterable[Message], cursor: str | None, has_more: bool) -> dict[str, Any]:
    return {
        "type": "sync",
        "messages": [message.to_wire() for message in messages],
        "cursor": cursor,
        "hasMore": has_more,
    }


def history_frame(
    conversation_id: str, messages: Iterable[Message], cursor: str | None, has_more: bool
) -> dict[str, Any]:
    return {
        "type": "history",
        "conversationId": conversation_id,
        "messages": [message.to_wire() for message in messages],
        "cursor": cursor,
        "hasMore": has_more,
    }


def marked_frame(conversation_id: str, message_ids: Iterable[str]) -> dict[str, Any]:
    return {"type": "marked", "conversationId": conversation_id, "messageIds": list(message_ids), "status": "read"}


def conversation_entry(membership: Membership, last_message: Message | None) -> dict[str, Any]:
    """One conversation of a ``conversations`` frame, as the member sees it."""
    return {
        "conversationId": membership.conversation_id,
        "participants": sorted((membership.user_id, membership.other_user_id)),
        "otherUser": {"userId": membership.other_user_id, "name": membership.other_user_name},
        "lastMessage": last_message.to_wire() if last_message is not None else None,
        "unreadCount": membership.unread_count,
        "updatedAt": membership.updated_at,
    }


def conversations_frame(entries: Iterable[dict[str, Any]], cursor: str | None, has_more: bool) -> dict[str, Any]:
    return {"type": "conversations", "conversations": list(entries), "cursor": cursor, "hasMore": has_more}


def users_frame(users: Iterable[UserProfile]) -> dict[str, Any]:
    return {
        "type": "users",
        "users": [{"userId": u.user_id, "name": u.name, "username": u.username} for u in users],
    }


def message_deleted_frame(message: Message, at: str) -> dict[str, Any]:
    return {"type": "messageDeleted", "messageId": message.message_id, "conversationId": message.conversation_id,
            "at": at}


def pong_frame(at: str) -> dict[str, Any]:
    return {"type": "pong", "at": at}


#: UTF-16 surrogate code points: valid in a JSON string ("\\ud800"), never in UTF-8.
_SURROGATES = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so the frame encodes as UTF-8."""
    return _SURROGATES.sub("\ufffd", text)


def error_frame(code: ErrorCode, message: str, message_id: str | None = None) -> dict[str, Any]:
    """An ``error`` frame. Whatever it echoes of the client's frame (the ``messageId``, an
    unknown action in the sentence) is made encodable here, the one place errors become
    frames: a value that cannot be encoded must not cost the client its answer."""
    frame: dict[str, Any] = {"type": "error", "code": code.value, "message": _encodable(message)}
    if message_id is not None:
        frame["messageId"] = _encodable(message_id)
    return frame
