"""Use cases: what happens when a client connects, sends, syncs, reads, deletes or looks around.

Services talk to the outside world only through :mod:`chat.domain.ports`, so they run the
same against DynamoDB, ``@connections`` and Cognito as against in-memory fakes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger

from chat.domain.errors import (
    ConnectionGone,
    Forbidden,
    InvalidToken,
    MessageRefused,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from chat.domain.models import (
    CONNECTION_TTL_SECONDS,
    DIRECT_PREFIX,
    FRAME_LIMIT,
    FRAME_WINDOW_SECONDS,
    MAX_POST_BYTES,
    AckMessagesRequest,
    Caller,
    Connection,
    ConversationPosition,
    DeleteMessageRequest,
    FindUsersRequest,
    FrameTicket,
    GetHistoryRequest,
    HistoryPage,
    HistoryPosition,
    Identity,
    ListConversationsRequest,
    MarkReadRequest,
    Message,
    MessageStatus,
    PendingPage,
    PendingPosition,
    SendMessageRequest,
    SyncMessagesRequest,
    UserProfile,
    direct_conversation_id,
    iso_timestamp,
)
from chat.domain.ports import (
    Clock,
    ConnectionStore,
    ConversationStore,
    MessageStore,
    Notifier,
    TokenVerifier,
    UserDirectory,
)
from chat.domain.protocol import (
    ack_frame,
    conversation_entry,
    conversations_frame,
    decode_conversation_cursor,
    decode_cursor,
    decode_history_cursor,
    encode_conversation_cursor,
    encode_cursor,
    encode_frame,
    encode_history_cursor,
    history_frame,
    marked_frame,
    message_deleted_frame,
    message_frame,
    pong_frame,
    status_frame,
    sync_frame,
    users_frame,
)

__all__ = [
    "AuthService",
    "ConnectionService",
    "ConversationService",
    "DirectoryService",
    "FrameLimiter",
    "MessagingService",
    "PingService",
]

logger = Logger(child=True)

#: Room left in a paged frame for everything but its items (type, cursor, hasMore).
_PAGE_FRAME_OVERHEAD = 2048
#: How long a window's frame counter outlives its window before the TTL may sweep it.
_COUNTER_GRACE_SECONDS = 60

RATE_LIMITED_TEXT = "Too many frames on this connection; wait a few seconds and retry."


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
    """Keeps the connection store in step with the gateway's sockets."""

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

    def close(self, connection_id: str, user: Identity | None = None) -> None:
        self._connections.delete(connection_id, user.user_id if user else None)


class FrameLimiter:
    """The per-connection rate limit: at most ``limit`` frames per fixed window.

    Every frame a connection sends is counted once, whatever its route and whether it is
    refused: a client stuck in a loop of invalid frames is slowed down like any other.

    Args:
        connections: where the counters live.
        clock: the current time.
        limit: frames allowed per window.
        window_seconds: the window's length.
    """

    def __init__(
        self,
        connections: ConnectionStore,
        clock: Clock,
        *,
        limit: int = FRAME_LIMIT,
        window_seconds: int = FRAME_WINDOW_SECONDS,
    ) -> None:
        self._connections = connections
        self._clock = clock
        self._limit = limit
        self._window_seconds = window_seconds

    def ticket(self, connection_id: str) -> FrameTicket:
        """The claim of one frame arriving now; nothing is counted yet."""
        window = int(self._clock().timestamp()) // self._window_seconds
        return FrameTicket(
            connection_id=connection_id,
            window=window,
            limit=self._limit,
            expires_at=(window + 1) * self._window_seconds + _COUNTER_GRACE_SECONDS,
        )

    def admit(self, ticket: FrameTicket, message_id: str | None = None) -> None:
        """Count the frame unless it was counted already.

        Raises:
            RateLimited: the window was full; the frame must not be acted on.
        """
        if ticket.counted:
            return
        ticket.counted = True
        if not self._connections.count_frame(ticket):
            raise RateLimited(RATE_LIMITED_TEXT, message_id=message_id)

    def count_refused(self, ticket: FrameTicket) -> None:
        """Count a frame that was refused before it was counted (its answer stands)."""
        if ticket.counted:
            return
        ticket.counted = True
        self._connections.count_frame(ticket)


class _Pusher:
    """Posting frames for one invocation, and forgetting connections that are gone."""

    def __init__(self, connections: ConnectionStore, notifier: Notifier) -> None:
        self._connections = connections
        self._notifier = notifier
        #: Connections that answered 410 during this invocation: never posted to again.
        self._gone: set[str] = set()

    def post(self, connection_id: str, frame: dict[str, Any], user_id: str | None = None) -> bool:
        """Post one frame; a gone connection is forgotten and reported as False."""
        if connection_id in self._gone:
            return False
        try:
            self._notifier.post(connection_id, frame)
        except ConnectionGone:
            # Forget exactly the id that answered 410 and no other: deleting the sender's id
            # instead is a known bug of naive fan-out code.
            logger.info("Connection gone; forgetting it", extra={"gone_connection_id": connection_id})
            self._gone.add(connection_id)
            self._connections.delete(connection_id, user_id)
            return False
        return True

    def to_users(self, frames_by_user: dict[str, list[dict[str, Any]]]) -> None:
        """Every frame for a user to each of that user's connections (one lookup for all)."""
        self.to_connections(self._connections.connection_ids_by_user(frames_by_user), frames_by_user)

    def to_connections(
        self, connection_ids: dict[str, list[str]], frames_by_user: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Like :meth:`to_users`, with the connections already looked up."""
        for user_id, frames in frames_by_user.items():
            for connection_id in connection_ids.get(user_id, []):
                for frame in frames:
                    if not self.post(connection_id, frame, user_id):
                        break


class MessagingService:
    """Sending, syncing, reading and deleting messages, and telling senders what happened."""

    def __init__(
        self,
        *,
        messages: MessageStore,
        connections: ConnectionStore,
        directory: UserDirectory,
        notifier: Notifier,
        clock: Clock,
        limiter: FrameLimiter | None = None,
    ) -> None:
        self._messages = messages
        self._connections = connections
        self._directory = directory
        self._clock = clock
        self._limiter = limiter or FrameLimiter(connections, clock)
        self._push = _Pusher(connections, notifier)

    # ------------------------------------------------------------------ sendMessage

    def send(self, caller: Caller, request: SendMessageRequest, ticket: FrameTicket | None = None) -> Message:
        """Store the message, push it to the recipient's and the sender's other devices, and
        ack it.

        The message stays pending for its recipient after the push: ``@connections``
        accepts posts to a connection whose network died silently, so only the recipient
        device's ``ackMessages`` (see :meth:`confirm`) makes it ``delivered``.

        A retry (same ``messageId`` from the same sender with the same content) gets the
        original ack again and stores nothing; while the message is pending it pushes it
        again to the devices (the first attempt may have stopped before it did).

        Args:
            ticket: the frame's rate-limit claim, counted in the same write as the message.

        Raises:
            ValidationFailed: the ``messageId`` already names a different message, or
                ``replyToMessageId`` names no message of this conversation.
            Forbidden: the conversation belongs to other participants.
            NotFound: the conversation is new and ``recipientId`` is no user of the pool.
            RateLimited: the connection's window is full; nothing was stored.
        """
        conversation = request.conversation_id
        if conversation.startswith(DIRECT_PREFIX) and conversation != direct_conversation_id(
            caller.user.user_id, request.recipient_id
        ):
            # Otherwise a third user who wrote first under two others' dm_ id would own it.
            raise Forbidden(
                "A dm_ conversation id must name you and the recipient: dm_<smaller id>_<larger id>.",
                message_id=request.message_id,
            )
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
            self._create(message, ticket)
        except MessageRefused as refused:
            return self._refused(caller, message, refused, ticket)
        if ticket is not None:
            ticket.counted = True

        # One lookup serves the push to both users' devices. Whatever the push does, the
        # message stays pending, so a device connecting at any moment finds it in its sync.
        connection_ids = self._connections.connection_ids_by_user({message.recipient_id, message.sender_id})
        # The ack goes last: a sender that has it never sends the frame again, so an
        # invocation that died between an ack and the pushes would leave them undone until
        # the recipient's next sync. Dying before the ack, it is retried (see _answer_retry).
        self._push_to_devices(caller, message, connection_ids)
        self._push.post(caller.connection_id, ack_frame(message), message.sender_id)
        return message

    def _create(self, message: Message, ticket: FrameTicket | None) -> None:
        """Store ``message``; the first message of a conversation checks its recipient first.

        The conversation records its participants, so only the message that creates it
        asks the user pool; every later one is checked against them in the same write.

        Raises:
            MessageRefused: as :meth:`MessageStore.create`.
            NotFound: the conversation is new and its recipient is no user of the pool.
        """
        to_self = message.recipient_id == message.sender_id
        try:
            # Optimistic: most messages go to a conversation that exists (one write).
            self._messages.create(message, ticket, start_conversation=to_self)
            return
        except MessageRefused as refused:
            if not refused.no_conversation or refused.over_limit or refused.existing is not None:
                raise
        if not self._directory.exists(message.recipient_id):
            raise NotFound(
                "recipientId names no user; pick the recipient from findUsers.", message_id=message.message_id
            )
        self._messages.create(message, ticket, start_conversation=True)

    def _refused(
        self, caller: Caller, attempt: Message, refused: MessageRefused, ticket: FrameTicket | None
    ) -> Message:
        message_id = attempt.message_id
        if refused.over_limit:
            if ticket is not None:
                ticket.counted = True
            raise RateLimited(RATE_LIMITED_TEXT, message_id=message_id)
        if refused.existing is not None:
            # The write carried the frame's count and was refused: count it on its own.
            if ticket is not None:
                self._limiter.admit(ticket, message_id)
            return self._answer_retry(caller, attempt, refused.existing)
        if refused.not_a_participant:
            raise Forbidden(
                "This conversation is between other users; start a new conversation to message this user.",
                message_id=message_id,
            )
        if refused.reply_not_found:
            raise ValidationFailed("replyToMessageId must name a message of this conversation.", message_id=message_id)
        raise RuntimeError("the message store refused a message without saying why")

    def _answer_retry(self, caller: Caller, attempt: Message, existing: Message) -> Message:
        if existing.sender_id != attempt.sender_id or existing.content != attempt.content:
            raise ValidationFailed(
                "messageId is already used by a different message; send it with a new messageId.",
                message_id=attempt.message_id,
            )
        logger.info("Repeated send acknowledged again", extra={"message_id": existing.message_id})
        # The first attempt may have died between the store and its pushes (a crashed or
        # timed-out invocation), and nothing else would ever push this message: do the
        # pushes again. A device may get the message twice; clients keep one per messageId.
        # Once confirmed, a device of the recipient holds it and the confirmation told the
        # sender's connections: nothing is left to do, and a status is never told twice.
        if existing.status is MessageStatus.SENT:
            connection_ids = self._connections.connection_ids_by_user({existing.recipient_id, existing.sender_id})
            self._push_to_devices(caller, existing, connection_ids)
        self._push.post(caller.connection_id, ack_frame(existing), existing.sender_id)  # last, as in send
        return existing

    def _push_to_devices(self, caller: Caller, message: Message, connection_ids: dict[str, list[str]]) -> None:
        """Push to the recipient's connections and the sender's other ones (best effort:
        an accepted post proves nothing, the recipient confirms with ``ackMessages``)."""
        frame = message_frame(message)
        # The sending connection already has the message; a note-to-self must not echo it.
        for connection_id in connection_ids.get(message.recipient_id, []):
            if connection_id != caller.connection_id:
                self._push.post(connection_id, frame, message.recipient_id)
        if message.sender_id != message.recipient_id:
            for connection_id in connection_ids.get(message.sender_id, []):
                if connection_id != caller.connection_id:
                    self._push.post(connection_id, frame, message.sender_id)

    # ------------------------------------------------------------------ syncMessages

    def sync(self, caller: Caller, request: SyncMessagesRequest) -> PendingPage:
        """Send the caller a page of the messages no device of theirs has confirmed yet,
        oldest first.

        Reading changes nothing: a message leaves the pending set only when the recipient
        confirms it (``ackMessages`` or ``markRead``). So a page lost on the way (a socket
        that died silently) costs nothing, the next sync carries the same messages, and
        syncs of several devices at once may each carry a message (clients keep one copy
        by ``messageId``). A message stored while a sync runs is pushed live (the
        connection is registered before any frame can arrive) or comes with the next sync.

        Returns:
            The page as sent (it may be cut short to fit one ``@connections`` post).

        Raises:
            ValidationFailed: ``since`` is not a cursor issued to this user.
        """
        user_id = caller.user.user_id
        after = decode_cursor(user_id, request.since) if request.since else None
        page = self._messages.pending_for(user_id, request.limit, after)
        shown = page.messages[: _fitting_count([m.to_wire() for m in page.messages])]
        has_more = page.has_more or len(shown) < len(page.messages)
        cursor = None
        if has_more and shown:
            last = shown[-1]
            cursor = encode_cursor(user_id, PendingPosition(message_id=last.message_id, timestamp=last.timestamp))
        self._push.post(caller.connection_id, sync_frame(shown, cursor, has_more), user_id)
        return PendingPage(messages=shown, has_more=has_more)

    # ------------------------------------------------------------------ ackMessages

    def confirm(self, caller: Caller, request: AckMessagesRequest) -> list[Message]:
        """The caller's device holds these messages: they leave the caller's pending set,
        become ``delivered`` (unless read already) and their senders get ``status:
        delivered``, once per message.

        Ids of messages not sent to the caller, unknown or already confirmed are ignored
        rather than refused: a client confirms everything it was shown, batched, and one
        stale id must not cost the rest of the batch. Nothing is answered to the caller.

        Returns:
            The messages this call moved to ``delivered``.
        """
        moved = self._messages.confirm_received(caller.user.user_id, request.message_ids)
        # For a note-to-self the sender is the caller: their devices hear it like any sender's.
        self._tell_senders(moved, MessageStatus.DELIVERED)
        return moved

    # ------------------------------------------------------------------ markRead

    def mark_read(self, caller: Caller, request: MarkReadRequest) -> list[Message]:
        """Move messages the caller received to ``read``, answer ``marked``, and tell their
        senders with ``status: read``.

        Everything is checked before anything changes, so a refusal changes nothing.

        Returns:
            The messages this call moved to ``read``.

        Raises:
            Forbidden: a named message was not sent to the caller, or (``upTo``) the
                caller is not a participant of the conversation.
            NotFound: a named message does not exist in this conversation.
        """
        reader = caller.user.user_id
        conversation_id = request.conversation_id
        if request.up_to is not None:
            candidates = self._unread_up_to(reader, conversation_id, request.up_to)
        else:
            candidates = self._named_for_reading(reader, conversation_id, request.message_ids or [])
        at = iso_timestamp(self._clock())
        moved = self._messages.mark_read(reader, candidates, at) if candidates else []
        self._push.post(caller.connection_id, marked_frame(conversation_id, (m.message_id for m in moved)), reader)
        self._tell_senders(moved, MessageStatus.READ, at)
        return moved

    def _unread_up_to(self, reader: str, conversation_id: str, up_to: str) -> list[Message]:
        anchor = self._messages.get_many([up_to]).get(up_to)
        if anchor is None or anchor.conversation_id != conversation_id:
            raise NotFound("upTo names no message of this conversation.", message_id=up_to)
        if reader not in (anchor.sender_id, anchor.recipient_id):
            raise Forbidden("This conversation is between other users.", message_id=up_to)
        return self._messages.unread_up_to(reader, conversation_id, anchor.timestamp)

    def _named_for_reading(self, reader: str, conversation_id: str, message_ids: list[str]) -> list[Message]:
        found = self._messages.get_many(message_ids)
        for message_id in message_ids:
            message = found.get(message_id)
            if message is not None and message.recipient_id != reader:
                raise Forbidden("Only the recipient of a message can mark it read.", message_id=message_id)
        for message_id in message_ids:
            message = found.get(message_id)
            if message is None or message.conversation_id != conversation_id:
                raise NotFound("No message with this messageId in this conversation.", message_id=message_id)
        return [found[i] for i in message_ids if found[i].status is not MessageStatus.READ]

    # ------------------------------------------------------------------ deleteMessage

    def delete(self, caller: Caller, request: DeleteMessageRequest) -> Message:
        """Erase a message's content (the sender only) and tell both participants.

        Deleting again is harmless and tells them again.

        Raises:
            NotFound: no message has this id.
            Forbidden: the caller did not send it.
        """
        message_id = request.message_id
        found = self._messages.get_many([message_id]).get(message_id)
        if found is None:
            raise NotFound("No message with this messageId.", message_id=message_id)
        if found.sender_id != caller.user.user_id:
            raise Forbidden("Only the sender of a message can delete it.", message_id=message_id)
        at = iso_timestamp(self._clock())
        erased = self._messages.erase(message_id, found.sender_id, at)
        frame = message_deleted_frame(erased, at)
        self._push.to_users({erased.sender_id: [frame], erased.recipient_id: [frame]})
        return erased

    # ------------------------------------------------------------------ shared

    def _tell_senders(self, messages: list[Message], status: MessageStatus, at: str | None = None) -> None:
        """Send ``status`` for each message to every connection of its sender."""
        if not messages:
            return
        at = at or iso_timestamp(self._clock())
        frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in messages:
            frames[message.sender_id].append(status_frame(message, status, at))
        self._push.to_users(frames)


class ConversationService:
    """The conversation list."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        messages: MessageStore,
        directory: UserDirectory,
        connections: ConnectionStore,
        notifier: Notifier,
    ) -> None:
        self._conversations = conversations
        self._messages = messages
        self._directory = directory
        self._push = _Pusher(connections, notifier)

    def list(self, caller: Caller, request: ListConversationsRequest) -> list[dict[str, Any]]:
        """Send the caller a page of their conversations, latest activity first, each with
        the other participant, the last message as it is now and the caller's unread count.

        Returns:
            The entries as sent.

        Raises:
            ValidationFailed: ``cursor`` is not a cursor issued to this user.
        """
        user_id = caller.user.user_id
        after = decode_conversation_cursor(user_id, request.cursor) if request.cursor else None
        page = self._conversations.memberships_of(user_id, request.limit, after)
        memberships = page.memberships
        # Read the last messages rather than copies kept on the memberships: their status,
        # deletion and content are then always current.
        last = self._messages.get_many(m.last_message_id for m in memberships)
        unnamed = {m.other_user_id for m in memberships if m.other_user_name is None}
        names = self._directory.names_of(unnamed) if unnamed else {}
        entries = []
        for membership in memberships:
            if membership.other_user_name is None and membership.other_user_id in names:
                membership = replace(membership, other_user_name=names[membership.other_user_id])
            entries.append(conversation_entry(membership, last.get(membership.last_message_id)))
        shown = entries[: _fitting_count(entries)]
        has_more = page.has_more or len(shown) < len(entries)
        cursor = None
        if has_more and shown:
            end = memberships[len(shown) - 1]
            cursor = encode_conversation_cursor(user_id, ConversationPosition(end.conversation_id, end.updated_at))
        self._push.post(caller.connection_id, conversations_frame(shown, cursor, has_more), user_id)
        return shown

    def history(self, caller: Caller, request: GetHistoryRequest) -> HistoryPage:
        """Send the caller a page of one conversation's messages, newest first: both
        directions, the caller's own included, deleted ones as the tombstones they are.

        Reading changes nothing (no confirmation, no read mark): a new device fills a
        conversation from here and still confirms what ``syncMessages`` brings.

        Costs one read of the conversation (its participants) and one Query of its index.

        Returns:
            The page as sent (it may be cut short to fit one ``@connections`` post).

        Raises:
            ValidationFailed: ``cursor`` is not a history cursor issued to this user for
                this conversation.
            Forbidden: the conversation is between other users.
            NotFound: no conversation has this id (and it is no ``dm_`` id of the caller's).
        """
        user_id = caller.user.user_id
        conversation_id = request.conversation_id
        before = decode_history_cursor(user_id, conversation_id, request.cursor) if request.cursor else None
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            if not _names_caller_dm(conversation_id, user_id):
                raise NotFound("No conversation with this conversationId; its first message creates it.")
            # The caller's 1:1 conversation with someone, before its first message: empty.
            page = HistoryPage(messages=[], has_more=False)
        elif user_id not in conversation.participants:
            raise Forbidden("This conversation is between other users.")
        else:
            page = self._messages.history(conversation_id, request.limit, before)
        shown = page.messages[: _fitting_count([m.to_wire() for m in page.messages])]
        has_more = page.has_more or len(shown) < len(page.messages)
        cursor = None
        if has_more and shown:
            last = shown[-1]
            position = HistoryPosition(message_id=last.message_id, timestamp=last.timestamp)
            cursor = encode_history_cursor(user_id, conversation_id, position)
        self._push.post(caller.connection_id, history_frame(conversation_id, shown, cursor, has_more), user_id)
        return HistoryPage(messages=shown, has_more=has_more)


def _names_caller_dm(conversation_id: str, user_id: str) -> bool:
    """Whether ``conversation_id`` is the ``dm_`` id of ``user_id`` and someone (or themselves).

    User ids may contain ``_``, so the other user is what remains beside the caller's id,
    and the id must be exactly the one :func:`direct_conversation_id` gives the two.
    """
    rest = conversation_id.removeprefix(DIRECT_PREFIX)
    if rest == conversation_id:
        return False
    others = []
    if rest.startswith(user_id + "_"):
        others.append(rest[len(user_id) + 1:])
    if rest.endswith("_" + user_id):
        others.append(rest[: -len(user_id) - 1])
    return any(other and direct_conversation_id(user_id, other) == conversation_id for other in others)


class DirectoryService:
    """Finding people to talk to."""

    def __init__(self, *, directory: UserDirectory, connections: ConnectionStore, notifier: Notifier) -> None:
        self._directory = directory
        self._push = _Pusher(connections, notifier)

    def find(self, caller: Caller, request: FindUsersRequest) -> list[UserProfile]:
        """Send the caller the users matching the query, never the caller themselves."""
        # One more than asked, so dropping the caller still leaves a full page.
        found = self._directory.search(request.query.strip(), request.limit + 1)
        users = [u for u in found if u.user_id != caller.user.user_id][: request.limit]
        self._push.post(caller.connection_id, users_frame(users), caller.user.user_id)
        return users


class PingService:
    """Keep-alive: answers at once (through the route response, so no ``@connections`` post)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def pong(self) -> dict[str, Any]:
        return pong_frame(iso_timestamp(self._clock()))


def _fitting_count(items: Iterable[dict[str, Any]]) -> int:
    """How many leading items fit in one frame under the ``@connections`` post limit.

    Whatever is cut comes with the next page; at least one item always fits because
    message content is bounded far below the limit.
    """
    budget = MAX_POST_BYTES - _PAGE_FRAME_OVERHEAD
    used = 0
    count = 0
    for item in items:
        used += len(encode_frame(item)) + 1  # + the separating comma
        if used > budget:
            break
        count += 1
    return count
