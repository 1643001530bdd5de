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
    "MessageIdTaken",
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


class ConnectionGone(Exception):
    """The connection no longer exists (``@connections`` answered 410 GoneException)."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id} is gone")
        self.connection_id = connection_id


class MessageIdTaken(Exception):
    """A message with this id is already stored.

    Args:
        existing: the stored message, so the caller can tell a retry from a clash.
    """

    def __init__(self, existing: Message) -> None:
        super().__init__("message id already stored")
        self.existing = existing


class InvalidToken(Exception):
    """A token failed verification.

    Args:
        reason: why, for the logs; never contains the token itself.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
