"""What :class:`~chatclient.client.ChatClient` reports to the app, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from chatclient.frames import ChatMessage, MessageStatus

__all__ = [
    "ChatClientError",
    "ClientClosed",
    "ConnectionLost",
    "ConnectionState",
    "ConnectionStateChanged",
    "Event",
    "MessageAcked",
    "MessageDeleted",
    "MessageReceived",
    "MessageStatusChanged",
    "MessagesMarkedRead",
    "NotConnected",
    "RequestFailed",
    "SendFailed",
    "ServerError",
    "SyncCompleted",
]


class ConnectionState(StrEnum):
    """Where the client is in its connection life cycle."""

    #: Opening the socket (handshake with the token).
    CONNECTING = "connecting"
    #: Open; resending the outbox and paging through ``syncMessages``.
    SYNCING = "syncing"
    #: Open and caught up: everything sent while offline has been received.
    ONLINE = "online"
    #: The connection dropped or could not be opened; waiting ``retry_in`` seconds.
    RECONNECTING = "reconnecting"
    #: Stopped for good: :meth:`~chatclient.client.ChatClient.close` was called, or the
    #: user must sign in again (``error`` says why).
    CLOSED = "closed"


@dataclass(frozen=True)
class ConnectionStateChanged:
    state: ConnectionState
    #: Failed attempts in a row (0 once a connection worked).
    attempt: int = 0
    #: For RECONNECTING: the delay before the next attempt.
    retry_in: float | None = None
    #: Why the connection ended or was refused, when it was not asked for.
    error: str | None = None


@dataclass(frozen=True)
class MessageReceived:
    """A message for this user (or sent by this user from another device), reported once."""

    message: ChatMessage
    #: "live" when pushed, "sync" when it came in a sync page.
    via: Literal["live", "sync"]


@dataclass(frozen=True)
class MessageAcked:
    """The server stored a message this client sent (status ``sent``)."""

    message_id: str
    timestamp: str


@dataclass(frozen=True)
class SendFailed:
    """The server refused a message for good; it left the outbox."""

    message_id: str
    code: str
    message: str


@dataclass(frozen=True)
class MessageStatusChanged:
    """A message this user sent moved forward (``delivered``, then ``read``); reported once per step."""

    message_id: str
    conversation_id: str
    status: MessageStatus
    at: str


@dataclass(frozen=True)
class MessagesMarkedRead:
    """A ``marked`` frame: these messages received by this user moved to ``read``."""

    conversation_id: str
    message_ids: tuple[str, ...]


@dataclass(frozen=True)
class MessageDeleted:
    message_id: str
    conversation_id: str
    at: str


@dataclass(frozen=True)
class SyncCompleted:
    """The sync that follows every (re)connect finished: the client is caught up."""

    #: New messages it brought (duplicates of live ones not counted).
    messages: int
    pages: int


@dataclass(frozen=True)
class ServerError:
    """An ``error`` frame (or API Gateway's own error frame) that answered no pending call."""

    code: str
    message: str
    message_id: str | None = None


Event = (
    ConnectionStateChanged
    | MessageReceived
    | MessageAcked
    | SendFailed
    | MessageStatusChanged
    | MessagesMarkedRead
    | MessageDeleted
    | SyncCompleted
    | ServerError
)


class ChatClientError(Exception):
    """Base of the errors the client raises."""


class RequestFailed(ChatClientError):
    """The server answered a call with an ``error`` frame.

    Attributes:
        code: the protocol error code (``VALIDATION_ERROR``, ``FORBIDDEN``, ...).
        message_id: the ``messageId`` the error is about, when it names one.
    """

    def __init__(self, code: str, message: str, message_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.message_id = message_id


class ConnectionLost(ChatClientError):
    """The connection dropped before the answer came; the call may be retried."""


class NotConnected(ChatClientError):
    """No connection opened within the time allowed."""


class ClientClosed(ChatClientError):
    """The client is closed (or stopped because the user must sign in again)."""
