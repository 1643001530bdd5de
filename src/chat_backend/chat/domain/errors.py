"""Errors the domain raises, and the codes clients see for them.

A :class:`ChatError` is an outcome the client caused or can act on; the handler layer turns
it into an ``error`` frame in one place. Every other exception is a fault on our side and
reaches the client only as ``INTERNAL``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat.domain.models import Message

__all__ = [
    "ChatError",
    "ConnectionGone",
    "ErrorCode",
    "Forbidden",
    "InvalidToken",
    "MessageRefused",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ValidationFailed",
]


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` frame (client protocol v1)."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"


class ChatError(Exception):
    """An expected refusal, shown to the client as an ``error`` frame.

    Args:
        message: one sentence for the client; it must not carry internals.
        message_id: the client's ``messageId`` when the refused frame had one, so the
            client can match the error to what it sent.
    """

    code: ErrorCode = ErrorCode.INTERNAL
    #: What the handler returns to API Gateway (visible in its logs and metrics).
    status_code: int = 500

    def __init__(self, message: str, *, message_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_id = message_id


class ValidationFailed(ChatError):
    """The frame is malformed or breaks a rule the client can fix."""

    code = ErrorCode.VALIDATION_ERROR
    status_code = 400


class Forbidden(ChatError):
    """The caller has no identity or may not do this."""

    code = ErrorCode.FORBIDDEN
    status_code = 403


class NotFound(ChatError):
    """The frame names something that does not exist (a message, a conversation)."""

    code = ErrorCode.NOT_FOUND
    status_code = 404


class PayloadTooLarge(ChatError):
    """The frame carries more than the protocol allows (message ``content`` over its limit)."""

    code = ErrorCode.PAYLOAD_TOO_LARGE
    status_code = 413


class RateLimited(ChatError):
    """The connection sent more frames than its window allows; nothing was done."""

    code = ErrorCode.RATE_LIMITED
    status_code = 429


class ConnectionGone(Exception):
    """The connection no longer exists (``@connections`` answered 410 GoneException)."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id} is gone")
        self.connection_id = connection_id


class MessageRefused(Exception):
    """The store refused a new message and wrote nothing.

    The store checks everything at once (one transaction), so several reasons may hold;
    which one the client hears is the domain's choice.

    Args:
        existing: the stored message when the ``messageId`` is already taken.
        not_a_participant: the conversation exists with other participants.
        reply_not_found: ``replyToMessageId`` names no message of this conversation.
        over_limit: the frame would exceed its connection's rate-limit window.
        no_conversation: the conversation does not exist and the message was not
            allowed to start it.
    """

    def __init__(
        self,
        *,
        existing: Message | None = None,
        not_a_participant: bool = False,
        reply_not_found: bool = False,
        over_limit: bool = False,
        no_conversation: bool = False,
    ) -> None:
        super().__init__("message refused")
        self.existing = existing
        self.not_a_participant = not_a_participant
        self.reply_not_found = reply_not_found
        self.over_limit = over_limit
        self.no_conversation = no_conversation


class InvalidToken(Exception):
    """A token failed verification.

    Args:
        reason: why, for the logs; never contains the token itself.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
