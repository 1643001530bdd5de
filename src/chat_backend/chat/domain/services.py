"""Use cases: what happens when a client connects, sends, syncs or disconnects.

Services talk to the outside world only through :mod:`chat.domain.ports`, so they run the
same against DynamoDB and ``@connections`` as against in-memory fakes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from aws_lambda_powertools import Logger

from chat.domain.errors import ConnectionGone, InvalidToken, MessageIdTaken, ValidationFailed
from chat.domain.models import (
    CONNECTION_TTL_SECONDS,
    MAX_POST_BYTES,
    Caller,
    Connection,
    Identity,
    Message,
    MessageStatus,
    PendingPage,
    PendingPosition,
    SendMessageRequest,
    SyncMessagesRequest,
    iso_timestamp,
)
from chat.domain.ports import Clock, ConnectionStore, MessageStore, Notifier, TokenVerifier
from chat.domain.protocol import (
    ack_frame,
    decode_cursor,
    encode_cursor,
    encode_frame,
    message_frame,
    status_frame,
    sync_frame,
)

__all__ = ["AuthService", "ConnectionService", "MessagingService"]

logger = Logger(child=True)

#: Room left in a sync frame for everything but the messages (type, cursor, hasMore).
_SYNC_FRAME_OVERHEAD = 2048


class AuthService:
    """Decides who is connecting (the $connect authorizer)."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def authenticate(self, token: str | None) -> Identity:
        """Raises:
        InvalidToken: no token, or one the verifier refuses.
        """
        if not token:
            raise InvalidToken("no token in the query string")
        return self._verifier.verify(token)


class ConnectionService:
    """Keeps the Connections table in step with the gateway's sockets."""

    def __init__(self, connections: ConnectionStore, clock: Clock) -> None:
        self._connections = connections
        self._clock = clock

    def open(self, connection_id: str, user: Identity) -> Connection:
        now = self._clock()
        connection = Connection(
            connection_id=connection_id,
            user_id=user.user_id,
            user_name=user.user_name,
            connected_at=iso_timestamp(now),
            ttl=int((now + timedelta(seconds=CONNECTION_TTL_SECONDS)).timestamp()),
        )
        self._connections.put(connection)
        return connection

    def close(self, connection_id: str) -> None:
        self._connections.delete(connection_id)


class MessagingService:
    """Sending and syncing messages, and telling senders when they were delivered."""

    def __init__(
        self, *, messages: MessageStore, connections: ConnectionStore, notifier: Notifier, clock: Clock
    ) -> None:
        self._messages = messages
        self._connections = connections
        self._notifier = notifier
        self._clock = clock

    # ------------------------------------------------------------------ sendMessage

    def send(self, caller: Caller, request: SendMessageRequest) -> Message:
        """Store the message, ack it, push it to the recipient's and the sender's other
        devices, and report ``delivered`` when a recipient device got it.

        A retry (same ``messageId`` from the same sender with the same content) gets the
        original ack again and changes nothing.

        Raises:
            ValidationFailed: the ``messageId`` already names a different message.
        """
        message = Message(
            message_id=request.message_id,
            conversation_id=request.conversation_id,
            sender_id=caller.user.user_id,
            sender_name=caller.user.user_name,
            recipient_id=request.recipient_id,
            content=request.content,
            timestamp=iso_timestamp(self._clock()),
            status=MessageStatus.SENT,
            reply_to_message_id=request.reply_to_message_id,
        )
        try:
            self._messages.create(message)
        except MessageIdTaken as taken:
            return self._answer_retry(caller, message, taken.existing)

        self._post(caller.connection_id, ack_frame(message))
        if self._push(caller, message) and self._messages.mark_delivered(message.message_id):
            self._announce_delivered([message])
        return message

    def _answer_retry(self, caller: Caller, attempt: Message, existing: Message) -> Message:
        if existing.sender_id != attempt.sender_id or existing.content != attempt.content:
            raise ValidationFailed(
                "messageId is already used by a different message; send it with a new messageId.",
                message_id=attempt.message_id,
            )
        logger.info("Repeated send acknowledged again", extra={"message_id": existing.message_id})
        self._post(caller.connection_id, ack_frame(existing))
        return existing

    def _push(self, caller: Caller, message: Message) -> bool:
        """Push to the recipient's connections and the sender's other ones.

        Returns:
            True when at least one recipient connection accepted the frame.
        """
        frame = message_frame(message)
        # The sending connection already has the message; a note-to-self must not echo it.
        recipient_ids = [
            cid for cid in self._connections.connection_ids_of(message.recipient_id) if cid != caller.connection_id
        ]
        delivered = False
        for connection_id in recipient_ids:
            if self._post(connection_id, frame):
                delivered = True
        if message.sender_id != message.recipient_id:
            for connection_id in self._connections.connection_ids_of(message.sender_id):
                if connection_id != caller.connection_id:
                    self._post(connection_id, frame)
        return delivered

    # ------------------------------------------------------------------ syncMessages

    def sync(self, caller: Caller, request: SyncMessagesRequest) -> PendingPage:
        """Send the caller a page of their undelivered messages, oldest first, then mark
        them delivered and tell their senders.

        Returns:
            The page as sent (a page may be cut short to fit one ``@connections`` post).

        Raises:
            ValidationFailed: ``since`` is not a cursor issued to this user.
        """
        user_id = caller.user.user_id
        after = decode_cursor(user_id, request.since) if request.since else None
        page = self._messages.pending_for(user_id, request.limit, after)
        shown = _fit_to_one_post(
            [m.model_copy(update={"status": MessageStatus.DELIVERED}) for m in page.messages]
        )
        has_more = page.has_more or len(shown) < len(page.messages)
        cursor = None
        if has_more and shown:
            last = shown[-1]
            cursor = encode_cursor(user_id, PendingPosition(message_id=last.message_id, timestamp=last.timestamp))

        if not self._post(caller.connection_id, sync_frame(shown, cursor, has_more)):
            # The caller left before the page reached it: the messages stay pending.
            return PendingPage(messages=[], has_more=True)
        newly_delivered = [m for m in shown if self._messages.mark_delivered(m.message_id)]
        self._announce_delivered(newly_delivered)
        return PendingPage(messages=shown, has_more=has_more)

    # ------------------------------------------------------------------ shared

    def _announce_delivered(self, messages: list[Message]) -> None:
        """Send ``status: delivered`` to every connection of each message's sender."""
        at = iso_timestamp(self._clock())
        by_sender: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            by_sender[message.sender_id].append(message)
        for sender_id, sent in by_sender.items():
            for connection_id in self._connections.connection_ids_of(sender_id):
                for message in sent:
                    if not self._post(connection_id, status_frame(message, MessageStatus.DELIVERED, at)):
                        break

    def _post(self, connection_id: str, frame: dict[str, object]) -> bool:
        """Post one frame; a gone connection is forgotten and reported as False."""
        try:
            self._notifier.post(connection_id, frame)
        except ConnectionGone:
            # Forget exactly the id that answered 410 and no other: deleting the sender's id
            # instead is a known bug of naive fan-out code.
            logger.info("Connection gone; forgetting it", extra={"gone_connection_id": connection_id})
            self._connections.delete(connection_id)
            return False
        return True


def _fit_to_one_post(messages: list[Message]) -> list[Message]:
    """The leading messages whose sync frame stays under the ``@connections`` post limit.

    Whatever is cut stays pending and comes with the next page; at least one message always
    fits because message content is bounded far below the limit.
    """
    budget = MAX_POST_BYTES - _SYNC_FRAME_OVERHEAD
    used = 0
    for index, message in enumerate(messages):
        used += len(encode_frame(message.to_wire())) + 1  # + the separating comma
        if used > budget:
            return messages[:index]
    return messages
