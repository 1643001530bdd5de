"""What the domain needs from the outside world. Adapters implement these.

Implementations live in :mod:`chat.adapters`: DynamoDB and ``@connections`` for Lambda,
in-memory ones for tests and tools. Both must behave alike (the contract tests check it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from chat.domain.models import Connection, Identity, Message, PendingPage, PendingPosition

__all__ = ["Clock", "ConnectionStore", "MessageStore", "Notifier", "TokenVerifier"]

#: Returns the current time, timezone-aware.
Clock = Callable[[], datetime]


class ConnectionStore(Protocol):
    """Open WebSocket connections and whose they are."""

    def put(self, connection: Connection) -> None: ...

    def delete(self, connection_id: str) -> None:
        """Forget a connection; forgetting an unknown one is not an error."""
        ...

    def connection_ids_of(self, user_id: str) -> list[str]:
        """Every connection id stored for ``user_id`` (any order, possibly stale)."""
        ...


class MessageStore(Protocol):
    """Messages, keyed by the client's ``messageId``."""

    def create(self, message: Message) -> None:
        """Store a new message; while its status is ``sent`` it is pending for the recipient.

        Raises:
            MessageIdTaken: a message with this id exists; it carries the stored one.
        """
        ...

    def mark_delivered(self, message_id: str) -> bool:
        """Move a ``sent`` message to ``delivered`` and out of the recipient's pending set.

        Returns:
            False when the message was not ``sent`` any more (someone else got there
            first), so callers announce each delivery once.
        """
        ...

    def pending_for(self, user_id: str, limit: int, after: PendingPosition | None = None) -> PendingPage:
        """Up to ``limit`` of ``user_id``'s undelivered messages, oldest first, after ``after``."""
        ...


class Notifier(Protocol):
    """Pushes frames to connected clients (``@connections`` POST)."""

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        """Send one JSON frame.

        Raises:
            ConnectionGone: the connection is closed or never existed (HTTP 410).
        """
        ...


class TokenVerifier(Protocol):
    """Checks a bearer token and says whose it is."""

    def verify(self, token: str) -> Identity:
        """Raises:
        InvalidToken: with the reason, for any token we must not accept.
        """
        ...
