"""A Python client for the chat backend: find a stack, sign in, talk over WebSocket.

* :class:`ChatSession`: a blocking, frame-by-frame session for scripts and tests.
* :class:`ChatClient`: an asyncio client that stays connected (reconnect with backoff, sync
  on every connect, outbox with retries, dedupe, keep-alive), as a mobile app would be.
* :func:`remove_user_data`: delete a test or demo user and everything stored about them.
"""

from chatclient.auth import SignInRequired, Tokens, ensure_user, refresh_session, sign_in
from chatclient.backoff import Backoff
from chatclient.cleanup import Removed, remove_user_data, user_sub_of
from chatclient.client import AuthenticationRefused, ChatClient, EventStream
from chatclient.events import (
    ChatClientError,
    ClientClosed,
    ConnectionLost,
    ConnectionState,
    ConnectionStateChanged,
    Event,
    MessageAcked,
    MessageDeleted,
    MessageReceived,
    MessagesMarkedRead,
    MessageStatusChanged,
    NotConnected,
    RequestFailed,
    SendFailed,
    ServerError,
    SyncCompleted,
)
from chatclient.frames import (
    ChatMessage,
    ConversationPage,
    ConversationSummary,
    ErrorCode,
    HistoryPage,
    MessageStatus,
    UserSummary,
)
from chatclient.outbox import OutgoingMessage
from chatclient.session import ChatSession, conversation_id
from chatclient.target import Target
from chatclient.tokens import CognitoTokenSource, StaticTokenSource, TokenSource

__all__ = [
    "AuthenticationRefused",
    "Backoff",
    "ChatClient",
    "ChatClientError",
    "ChatMessage",
    "ChatSession",
    "ClientClosed",
    "CognitoTokenSource",
    "ConnectionLost",
    "ConnectionState",
    "ConnectionStateChanged",
    "ConversationPage",
    "ConversationSummary",
    "ErrorCode",
    "Event",
    "EventStream",
    "HistoryPage",
    "MessageAcked",
    "MessageDeleted",
    "MessageReceived",
    "MessageStatus",
    "MessageStatusChanged",
    "MessagesMarkedRead",
    "NotConnected",
    "OutgoingMessage",
    "Removed",
    "RequestFailed",
    "SendFailed",
    "ServerError",
    "SignInRequired",
    "StaticTokenSource",
    "SyncCompleted",
    "Target",
    "TokenSource",
    "Tokens",
    "UserSummary",
    "conversation_id",
    "ensure_user",
    "refresh_session",
    "remove_user_data",
    "sign_in",
    "user_sub_of",
]
