"""An asyncio chat client that stays connected and never loses or repeats a message.

It plays the part of the iOS app's ``WebSocketService`` + ``MessageSync``:

* connects with a Cognito ID token, refreshed ahead of expiry;
* reconnects after any drop with capped exponential backoff and full jitter;
* on every (re)connect resends the outbox (same ``messageId``, so the server stores each
  message once) and pages through ``syncMessages`` until ``hasMore`` is false;
* reports each incoming message once, whether it came live, in a sync page, or both;
* confirms every message it receives (``ackMessages``, batched): until then the server
  keeps it pending and sends it again with the next sync;
* reports each status step (``sent`` → ``delivered`` → ``read``) once, never backwards;
* sends ``ping`` when it has been quiet, to stay under API Gateway's 10-minute idle timeout;
* gives every call a ``requestId`` and matches answers by it (by frame type against a
  server that does not echo it);
* reads a conversation's history page by page (:meth:`ChatClient.history`).

Events reach the app through callbacks (:meth:`ChatClient.subscribe`) or an async iterator
(:meth:`ChatClient.events`). The client is a library: it logs through :mod:`logging` and
never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatclient.auth import SignInRequired, Tokens
from chatclient.backoff import Backoff
from chatclient.dedupe import RecentIds, StatusLedger
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
    PERMANENT_ERRORS,
    ChatMessage,
    ConversationPage,
    ConversationSummary,
    ErrorCode,
    HistoryPage,
    MalformedFrame,
    MessageStatus,
    UserSummary,
    action_frame,
    decode_server_frame,
    encode_client_frame,
)
from chatclient.outbox import Outbox, OutgoingMessage
from chatclient.session import conversation_id as _conversation_id
from chatclient.target import Target
from chatclient.tokens import CognitoTokenSource, TokenSource

__all__ = ["MAX_CONFIRM_IDS", "MAX_CONTENT_LENGTH", "AuthenticationRefused", "ChatClient", "EventStream"]

logger = logging.getLogger(__name__)

#: Longest message text the server accepts, in characters.
MAX_CONTENT_LENGTH = 4000

#: Most message ids one ``ackMessages`` may carry.
MAX_CONFIRM_IDS = 100

#: How many message outcomes (acks, refusals) are remembered for :meth:`ChatClient.wait_acked`.
_OUTCOME_MEMORY = 1000

_END = object()


class AuthenticationRefused(ChatClientError):
    """The server refused the handshake (401/403) even with a freshly refreshed token."""


@dataclass(eq=False)
class _Waiter:
    """A call waiting for the server frame that answers it.

    The call's frame carries ``request_id`` and the server echoes it on the answer, which is
    how answers are matched. A server that does not echo it (older ones) is still
    understood: then answers are matched by frame type (and a key where the answer carries
    one), first come first served.
    """

    kind: str
    key: str | None
    future: asyncio.Future[dict[str, Any]] = field(repr=False)
    #: Message ids the call is about: an ``error`` naming one of them answers this call.
    concerns: frozenset[str] = frozenset()
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class EventStream:
    """An async iterator over the client's events from the moment it was created.

    It ends when the client closes. Use it as ``async for event in client.events(): ...``,
    and :meth:`close` it (or leave the loop) to stop receiving.
    """

    def __init__(self, detach: Callable[[EventStream], None]) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._detach = detach
        self._ended = False

    def _push(self, item: object) -> None:
        self._queue.put_nowait(item)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._ended:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self.close()
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def next(self, timeout: float) -> Event:
        """The next event, or TimeoutError after ``timeout`` seconds.

        Raises:
            ClientClosed: the client closed before another event came.
        """
        try:
            async with asyncio.timeout(timeout):
                return await self.__anext__()
        except StopAsyncIteration:
            raise ClientClosed("the client is closed") from None

    def close(self) -> None:
        """Stop receiving events."""
        if not self._ended:
            self._ended = True
            self._detach(self)


class ChatClient:
    """One signed-in user's live connection to the chat backend.

    Args:
        url: the WebSocket URL (``wss://.../<stage>``); the token is added as ``?token=``.
        tokens: where ID tokens come from (:class:`~chatclient.tokens.CognitoTokenSource`).
        backoff: reconnect delays; capped exponential with full jitter by default.
        sleep: how to wait between attempts; inject a fake one in tests.
        outbox: unacknowledged messages persisted by an earlier run, resent on connect.
        keepalive_interval: send ``ping`` after this many seconds without sending
            anything; must stay under API Gateway's 10-minute idle timeout.
        ack_timeout: resend a message still unacknowledged after this many seconds.
        request_timeout: default wait for the answer to a call, and for each sync page.
        open_timeout: handshake timeout (the server runs its authorizer meanwhile).
        sync_page_size: ``limit`` of each ``syncMessages`` (1 to 100).
        max_sync_pages: stop paging after this many pages in one sync (a bound against a
            server that always says ``hasMore``; the rest comes with the next sync).
        dedupe_capacity: how many message ids and statuses are remembered for dedupe.
        transport_ping_interval: WebSocket-level pings that detect a dead peer (a network
            gone without a FIN); None to disable. They do not count as activity for API
            Gateway's idle timeout: ``keepalive_interval`` takes care of that.
        transport_ping_timeout: how long to wait for the WebSocket pong.
        close_timeout: how long a clean close waits for the server's close frame.
        confirm_interval: at least this many seconds between two ``ackMessages`` frames
            (the first goes at once). Confirmations arriving meanwhile wait and go
            together, so a busy conversation costs at most one frame per interval
            against the server's 30-frames-per-10-seconds limit.
    """

    def __init__(
        self,
        url: str,
        tokens: TokenSource,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        outbox: Iterable[OutgoingMessage] = (),
        keepalive_interval: float = 300.0,
        ack_timeout: float = 10.0,
        request_timeout: float = 15.0,
        open_timeout: float = 15.0,
        sync_page_size: int = 50,
        max_sync_pages: int = 1000,
        dedupe_capacity: int = 10_000,
        transport_ping_interval: float | None = 20.0,
        transport_ping_timeout: float | None = 20.0,
        close_timeout: float = 5.0,
        confirm_interval: float = 1.0,
    ) -> None:
        if not 1 <= sync_page_size <= 100:
            raise ValueError("sync_page_size must be between 1 and 100")
        if keepalive_interval <= 0 or ack_timeout <= 0 or request_timeout <= 0:
            raise ValueError("intervals and timeouts must be positive")
        self.url = url
        self._tokens = tokens
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._outbox = Outbox(outbox)
        self.keepalive_interval = keepalive_interval
        self.ack_timeout = ack_timeout
        self.request_timeout = request_timeout
        self.open_timeout = open_timeout
        self.sync_page_size = sync_page_size
        self.max_sync_pages = max_sync_pages
        self._transport_ping = (transport_ping_interval, transport_ping_timeout)
        self.close_timeout = close_timeout
        self.confirm_interval = confirm_interval

        self._seen = RecentIds(dedupe_capacity)
        self._ledger = StatusLedger(dedupe_capacity)
        #: Received messages whose receipt the server has not been told yet (kept across
        #: reconnects; confirming one twice is harmless).
        self._unconfirmed: dict[str, None] = {}
        self._confirm_wanted = asyncio.Event()
        self._outcomes: OrderedDict[str, MessageAcked | RequestFailed] = OrderedDict()
        self._outcome_waiters: dict[str, list[asyncio.Future[MessageAcked]]] = {}
        self._waiters: list[_Waiter] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._callbacks: list[Callable[[Event], object]] = []
        self._streams: list[EventStream] = []

        self._state = ConnectionState.CLOSED
        self._ws: ClientConnection | None = None
        # The connection whose outbox flush has started: a message queued after that point
        # is sent directly, one queued before goes out with the flush (never both).
        self._flushed: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._online = asyncio.Event()
        self._closed = asyncio.Event()
        self._last_sent = time.monotonic()
        self._runner: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closing = False
        #: Why the client stopped by itself (sign-in required), None otherwise.
        self.stop_reason: str | None = None

    @classmethod
    def for_target(cls, target: Target, tokens: Tokens, **options: Any) -> ChatClient:
        """A client for ``target`` whose tokens refresh against its Cognito user pool."""
        return cls(target.websocket_url, CognitoTokenSource.for_target(target, tokens), **options)

    # ------------------------------------------------------------------ properties

    @property
    def user_id(self) -> str:
        """The signed-in user's ``sub``."""
        return self._tokens.user_id

    @property
    def state(self) -> ConnectionState:
        """Where the connection is now (every change is also a ConnectionStateChanged event)."""
        return self._state

    @property
    def connection(self) -> ClientConnection | None:
        """The open WebSocket, or None between connections (for diagnostics)."""
        return self._ws

    @property
    def outbox(self) -> list[OutgoingMessage]:
        """Messages waiting for their ack, oldest first: what an app persists on exit."""
        return self._outbox.pending()

    def conversation_with(self, other_user_id: str) -> str:
        """The id of the 1:1 conversation with another user (the same from both sides)."""
        return _conversation_id(self.user_id, other_user_id)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Start connecting in the background; returns at once (see :meth:`wait_online`)."""
        if self._runner is not None:
            raise RuntimeError("the client was already started")
        self._runner = asyncio.create_task(self._run(), name="chatclient-connection")
        self._refresher = asyncio.create_task(self._keep_tokens_fresh(), name="chatclient-tokens")

    async def close(self) -> None:
        """Close the connection cleanly (code 1000) and stop. Idempotent.

        Unacknowledged messages stay in :attr:`outbox`; calls still waiting fail with
        :class:`ClientClosed`.
        """
        ws = self._ws
        if ws is not None and self._unconfirmed and not self._closing:
            # Confirm what was received but not confirmed yet, so the next run does not get
            # it again; best effort (a lost confirmation only means the message comes again).
            batch = list(itertools.islice(self._unconfirmed, MAX_CONFIRM_IDS))
            with contextlib.suppress(ConnectionLost):
                await self._send(ws, action_frame("ackMessages", messageIds=batch))
        self._closing = True
        tasks = [task for task in (self._runner, self._refresher) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: the runner's last step is a clean close that waits close_timeout at most.
            await asyncio.wait(tasks, timeout=self.close_timeout + 1.0)
        self._finish()

    async def __aenter__(self) -> ChatClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until connected and caught up (the first sync finished).

        Raises:
            NotConnected: not online within ``timeout`` seconds.
            ClientClosed: the client closed (or must sign in again) meanwhile.
        """
        await self._wait_flag(self._online, timeout)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection is open (it may still be syncing).

        Raises:
            NotConnected: no connection within ``timeout`` seconds.
            ClientClosed: the client closed meanwhile.
        """
        await self._wait_flag(self._connected, timeout)

    async def _wait_flag(self, flag: asyncio.Event, timeout: float | None) -> None:
        if self._closed.is_set():
            raise ClientClosed(self.stop_reason or "the client is closed")
        if flag.is_set():
            return
        waits = {asyncio.ensure_future(flag.wait()), asyncio.ensure_future(self._closed.wait())}
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self._closed.is_set():
            raise ClientClosed(self.stop_reason or "the client is closed")
        if not flag.is_set():
            raise NotConnected(f"not connected after {timeout} s (state: {self._state})")

    # ------------------------------------------------------------------ events

    def subscribe(self, callback: Callable[[Event], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (from the event loop; keep it quick).

        Returns:
            A function that unsubscribes.
        """
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def events(self) -> EventStream:
        """An async iterator over events from now on; it ends when the client closes."""
        stream = EventStream(lambda s: self._streams.remove(s) if s in self._streams else None)
        if self._closed.is_set():
            stream._push(_END)
        else:
            self._streams.append(stream)
        return stream

    def _emit(self, event: Event) -> None:
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:  # an app bug must not break the connection
                logger.exception("event callback failed for %r", event)
        for stream in list(self._streams):
            stream._push(event)

    def _set_state(self, state: ConnectionState, *, retry_in: float | None = None, error: str | None = None) -> None:
        self._state = state
        self._emit(ConnectionStateChanged(state, self._backoff.attempt, retry_in, error))

    # ------------------------------------------------------------------ sending

    async def send_message(
        self,
        recipient_id: str,
        content: str,
        *,
        conversation_id: str | None = None,
        reply_to_message_id: str | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queue a message and send it now if connected; it is resent until acknowledged.

        Args:
            recipient_id: the other participant's ``sub``.
            content: 1 to 4000 characters, not only whitespace.
            conversation_id: by default the 1:1 conversation with ``recipient_id``.
            reply_to_message_id: the message this one answers.
            message_id: the idempotency key; a new UUID by default.

        Returns:
            The ``messageId`` (see :meth:`wait_acked`).

        Raises:
            ValueError: the content is empty or too long (the server would refuse it).
            ClientClosed: the client is closed.
        """
        if self._closing:
            raise ClientClosed("the client is closed")
        if not content.strip():
            raise ValueError("a message must have some text")
        if len(content) > MAX_CONTENT_LENGTH:
            raise ValueError(f"a message has at most {MAX_CONTENT_LENGTH} characters")
        entry = self._outbox.add(
            OutgoingMessage(
                message_id=message_id or str(uuid.uuid4()),
                conversation_id=conversation_id or self.conversation_with(recipient_id),
                recipient_id=recipient_id,
                content=content,
                reply_to_message_id=reply_to_message_id,
            )
        )
        ws = self._ws
        if ws is not None and self._flushed is ws and entry.attempts == 0 and self._outbox.is_head(entry.message_id):
            # A drop here is fine: the message stays in the outbox for the next connection.
            with contextlib.suppress(ConnectionLost):
                await self._send_outgoing(ws, entry)
        return entry.message_id

    async def wait_acked(self, message_id: str, timeout: float | None = None) -> MessageAcked:
        """Wait for the server to store a message (across reconnects).

        Raises:
            RequestFailed: the server refused the message for good.
            TimeoutError: no ack within ``timeout`` seconds (the message stays queued).
            ClientClosed: the client closed first.
            KeyError: the client never sent a message with this id.
        """
        outcome = self._outcomes.get(message_id)
        if outcome is None and message_id not in self._outbox:
            raise KeyError(message_id)
        if isinstance(outcome, RequestFailed):
            raise outcome
        if outcome is not None:
            return outcome
        if self._closed.is_set():
            raise ClientClosed(self.stop_reason or "the client is closed")
        future: asyncio.Future[MessageAcked] = asyncio.get_running_loop().create_future()
        self._outcome_waiters.setdefault(message_id, []).append(future)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            waiting = self._outcome_waiters.get(message_id, [])
            if future in waiting:
                waiting.remove(future)

    def _settle(self, message_id: str, outcome: MessageAcked | RequestFailed) -> None:
        self._outcomes[message_id] = outcome
        while len(self._outcomes) > _OUTCOME_MEMORY:
            self._outcomes.popitem(last=False)
        for future in self._outcome_waiters.pop(message_id, []):
            if future.done():
                continue
            if isinstance(outcome, RequestFailed):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    # ------------------------------------------------------------------ calls

    async def mark_read(
        self,
        conversation_id: str,
        *,
        message_ids: Iterable[str] | None = None,
        up_to: str | None = None,
        timeout: float | None = None,
    ) -> tuple[str, ...]:
        """Mark received messages read (give ``message_ids`` or ``up_to``, not both).

        Returns:
            The ids that moved to ``read`` (already-read ones are left out).

        Raises:
            RequestFailed, ConnectionLost, NotConnected, TimeoutError.
        """
        ids = list(message_ids) if message_ids is not None else None
        if (ids is None) == (up_to is None):
            raise ValueError("give either message_ids or up_to")
        answer = await self._call(
            action_frame("markRead", conversationId=conversation_id, messageIds=ids, upTo=up_to),
            "marked", conversation_id, timeout, concerns=frozenset(ids or [up_to or ""]),
        )
        return tuple(str(i) for i in answer.get("messageIds", []))

    async def list_conversations(
        self, *, cursor: str | None = None, limit: int | None = None, timeout: float | None = None
    ) -> ConversationPage:
        """A page of the user's conversations, newest activity first.

        Raises:
            RequestFailed, ConnectionLost, NotConnected, TimeoutError, MalformedFrame.
        """
        answer = await self._call(
            action_frame("listConversations", cursor=cursor, limit=limit), "conversations", None, timeout
        )
        return ConversationPage(
            conversations=tuple(ConversationSummary.from_wire(c) for c in answer.get("conversations", [])),
            cursor=answer.get("cursor") if isinstance(answer.get("cursor"), str) else None,
            has_more=answer.get("hasMore") is True,
        )

    async def find_users(
        self, query: str, *, limit: int | None = None, timeout: float | None = None
    ) -> list[UserSummary]:
        """Users whose name, username or email starts with ``query`` (never the caller).

        Raises:
            RequestFailed, ConnectionLost, NotConnected, TimeoutError, MalformedFrame.
        """
        answer = await self._call(action_frame("findUsers", query=query, limit=limit), "users", None, timeout)
        return [UserSummary.from_wire(u) for u in answer.get("users", [])]

    async def delete_message(self, message_id: str, *, timeout: float | None = None) -> MessageDeleted:
        """Delete a message this user sent (both sides get ``messageDeleted``).

        Raises:
            RequestFailed, ConnectionLost, NotConnected, TimeoutError.
        """
        answer = await self._call(action_frame("deleteMessage", messageId=message_id), "messageDeleted",
                                  message_id, timeout, concerns=frozenset([message_id]))
        return MessageDeleted(message_id, str(answer.get("conversationId", "")), str(answer.get("at", "")))

    async def ping(self, *, timeout: float | None = None) -> str:
        """Round-trip a ``ping``; returns the server time of the ``pong``.

        Raises:
            RequestFailed, ConnectionLost, NotConnected, TimeoutError.
        """
        answer = await self._call(action_frame("ping"), "pong", None, timeout)
        return str(answer.get("at", ""))

    async def history(
        self,
        conversation_id: str,
        cursor: str | None = None,
        limit: int | None = None,
        *,
        timeout: float | None = None,
    ) -> HistoryPage:
        """A page of one conversation's messages, newest first: both directions, this
        user's own included, deleted ones as tombstones. What a new device shows first.

        Pass the page's ``cursor`` back for older messages while ``has_more``. Reading
        changes nothing on the server and reports no :class:`MessageReceived`: messages
        pending for this device still come (and are confirmed) through sync.

        Args:
            limit: 1 to 100 messages (the server's default is 50); a page may hold fewer
                to fit one frame, with ``has_more``.

        Raises:
            RequestFailed: FORBIDDEN (not a participant), NOT_FOUND (no such
                conversation), VALIDATION_ERROR (a cursor of another conversation).
            ConnectionLost, NotConnected, TimeoutError, MalformedFrame.
        """
        answer = await self._call(
            action_frame("getHistory", conversationId=conversation_id, cursor=cursor, limit=limit),
            "history", conversation_id, timeout,
        )
        return HistoryPage.from_wire(answer)

    async def _call(
        self, frame: dict[str, Any], kind: str, key: str | None, timeout: float | None,
        concerns: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        if self._closing:
            raise ClientClosed("the client is closed")
        timeout = self.request_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        await self.wait_connected(timeout)
        ws = self._ws
        if ws is None:
            raise ConnectionLost("the connection dropped")
        return await self._request(ws, frame, kind, key, max(0.0, deadline - time.monotonic()), concerns)

    async def _request(
        self, ws: ClientConnection, frame: dict[str, Any], kind: str, key: str | None, timeout: float,
        concerns: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        waiter = self._expect(kind, key, concerns)
        try:
            await self._send(ws, {**frame, "requestId": waiter.request_id})
            # asyncio.timeout rather than wait_for: on 3.11 wait_for can swallow a
            # cancellation that lands as the answer arrives, and close() relies on it.
            async with asyncio.timeout(timeout):
                return await waiter.future
        finally:
            self._forget(waiter)

    def _expect(self, kind: str, key: str | None, concerns: frozenset[str] = frozenset()) -> _Waiter:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # Nobody may be awaiting it any more when it fails (timed out, keep-alive ping).
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        waiter = _Waiter(kind, key, future, concerns)
        self._waiters.append(waiter)
        return waiter

    def _forget(self, waiter: _Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _waiter_for(self, frame: dict[str, Any]) -> _Waiter | None:
        """The call whose ``requestId`` the frame echoes, if any."""
        request_id = frame.get("requestId")
        if not isinstance(request_id, str):
            return None
        return next((w for w in self._waiters if w.request_id == request_id), None)

    def _answer(self, kind: str, key: str | None, frame: dict[str, Any]) -> bool:
        waiter = self._waiter_for(frame)
        if waiter is None and "requestId" not in frame:
            # A server that does not echo requestId, or an answer that is a push
            # (deleteMessage's messageDeleted): by type and key, first come first served.
            waiter = next(
                (w for w in self._waiters if w.kind == kind and (w.key is None or w.key == key)), None
            )
        if waiter is None:
            return False
        self._waiters.remove(waiter)
        if not waiter.future.done():
            waiter.future.set_result(frame)
        return True

    def _fail_waiters(self, error: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        while not self._closing:
            self._set_state(ConnectionState.CONNECTING)
            try:
                ws = await self._open()
            except (SignInRequired, AuthenticationRefused) as exc:
                self.stop_reason = f"sign in again: {exc}"
                logger.warning("stopping: %s", self.stop_reason)
                self._finish()
                return
            except Exception as exc:  # refused, unreachable, timed out: all worth a retry
                await self._pause(_describe(exc))
                continue
            try:
                reason = await self._serve(ws)
            except Exception as exc:  # a bug here must not stop the reconnect loop for good
                logger.exception("connection handling failed")
                reason = _describe(exc)
            if not self._closing:
                await self._pause(reason)

    async def _open(self) -> ClientConnection:
        token = await self._tokens.id_token()
        try:
            return await self._connect(token)
        except InvalidStatus as exc:
            if exc.response.status_code not in (401, 403):
                raise
            # The token may have expired while we were away: refresh once and retry.
            logger.info("handshake refused with %d; refreshing the token", exc.response.status_code)
        token = await self._tokens.id_token(force_refresh=True)
        try:
            return await self._connect(token)
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise AuthenticationRefused(f"the server refused a fresh token ({exc.response.status_code})") from exc
            raise

    async def _connect(self, token: str) -> ClientConnection:
        separator = "&" if "?" in self.url else "?"
        ping_interval, ping_timeout = self._transport_ping
        return await connect(
            f"{self.url}{separator}token={quote(token, safe='')}",
            open_timeout=self.open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=self.close_timeout,
            # API Gateway negotiates no extensions; offering none matches what the app sees.
            compression=None,
        )

    async def _pause(self, reason: str) -> None:
        delay = self._backoff.next_delay()
        logger.info("connection lost (%s); reconnecting in %.2f s", reason, delay)
        self._set_state(ConnectionState.RECONNECTING, retry_in=delay, error=reason)
        await self._sleep(delay)

    async def _serve(self, ws: ClientConnection) -> str:
        """Run one connection until it ends; returns why it ended."""
        self._ws = ws
        self._connected.set()
        self._set_state(ConnectionState.SYNCING)
        reader = asyncio.create_task(self._read(ws), name="chatclient-reader")
        # Running from the start: messages of the sync pages are confirmed as they come.
        side_tasks = [asyncio.create_task(self._confirm_received(ws), name="chatclient-confirm")]
        try:
            await self._flush_outbox(ws)
            await self._sync(ws)
            if self._closing:
                return "closed by the client"
            # A connection that got this far worked: the next drop starts the backoff over.
            self._backoff.reset()
            self._online.set()
            self._set_state(ConnectionState.ONLINE)
            side_tasks += [
                asyncio.create_task(self._keepalive(ws), name="chatclient-keepalive"),
                asyncio.create_task(self._resend_unacked(ws), name="chatclient-resend"),
            ]
            await asyncio.shield(reader)
        except (ChatClientError, TimeoutError, MalformedFrame) as exc:
            logger.info("connection abandoned: %s", _describe(exc))
            if not reader.done():
                return f"sync failed: {_describe(exc)}"
        finally:
            self._ws = None
            self._connected.clear()
            self._online.clear()
            for task in side_tasks:
                task.cancel()
            # A clean close when we chose to leave; a no-op when the peer is already gone.
            await ws.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._fail_waiters(self._dropped())
        return _close_reason(ws)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                self._dispatch(text)
        except ConnectionClosed:
            pass
        finally:
            self._fail_waiters(self._dropped())

    def _dropped(self) -> ChatClientError:
        """What a call in flight fails with when its connection ends."""
        if self._closing:
            return ClientClosed(self.stop_reason or "the client is closed")
        return ConnectionLost("the connection dropped")

    async def _send(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        try:
            await ws.send(encode_client_frame(frame))
        except ConnectionClosed as exc:
            raise ConnectionLost(_describe(exc)) from exc
        self._last_sent = time.monotonic()

    async def _send_outgoing(self, ws: ClientConnection, entry: OutgoingMessage) -> None:
        self._outbox.mark_sent(entry.message_id, time.monotonic())
        if entry.attempts > 1:
            logger.info("resending message %s (attempt %d)", entry.message_id, entry.attempts)
        await self._send(ws, entry.frame())

    async def _flush_outbox(self, ws: ClientConnection) -> None:
        heads = self._outbox.heads()
        self._flushed = ws
        for entry in heads:
            if entry.message_id in self._outbox:  # an ack may have come meanwhile
                await self._send_outgoing(ws, entry)

    def _send_next(self, conversation_id: str) -> None:
        """After an ack (or a refusal), put the conversation's next message on the wire."""
        ws, entry = self._ws, self._outbox.head(conversation_id)
        if ws is None or self._flushed is not ws or entry is None or entry.attempts > 0:
            return  # offline, or the flush / resend loop takes care of it
        task = asyncio.create_task(self._send_quietly(ws, entry))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_quietly(self, ws: ClientConnection, entry: OutgoingMessage) -> None:
        with contextlib.suppress(ConnectionLost):
            await self._send_outgoing(ws, entry)

    async def _sync(self, ws: ClientConnection) -> None:
        cursor: str | None = None
        pages = received = 0
        while pages < self.max_sync_pages:
            pages += 1
            answer = await self._request(
                ws, action_frame("syncMessages", since=cursor, limit=self.sync_page_size), "sync", None,
                self.request_timeout,
            )
            received += int(answer.get("_new", 0))
            cursor = answer.get("cursor") if isinstance(answer.get("cursor"), str) else None
            if answer.get("hasMore") is not True or cursor is None:
                break
        else:
            logger.warning("sync stopped after %d pages; the rest comes with the next sync", pages)
        logger.debug("sync done: %d new messages in %d pages", received, pages)
        self._emit(SyncCompleted(received, pages))

    async def _confirm_received(self, ws: ClientConnection) -> None:
        """Tell the server which messages this device holds (``ackMessages``), in batches.

        Until then a message stays pending for this user: a push into a socket whose
        network died silently is accepted by API Gateway but never arrives, and the next
        sync brings it back. Ids stay queued until their frame went out, so a connection
        lost first confirms them on the next one.
        """
        last_sent = -math.inf
        with contextlib.suppress(ConnectionLost):
            while True:
                await self._confirm_wanted.wait()
                wait = last_sent + self.confirm_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._confirm_wanted.clear()
                batch = list(itertools.islice(self._unconfirmed, MAX_CONFIRM_IDS))
                if not batch:
                    continue
                if len(self._unconfirmed) > len(batch):
                    self._confirm_wanted.set()
                await self._send(ws, action_frame("ackMessages", messageIds=batch))
                last_sent = time.monotonic()
                for message_id in batch:
                    self._unconfirmed.pop(message_id, None)

    async def _keepalive(self, ws: ClientConnection) -> None:
        # API Gateway closes a connection after 10 minutes without a frame from the client;
        # any frame counts, so a ping is needed only after a quiet stretch.
        with contextlib.suppress(ConnectionLost):
            while True:
                quiet_for = time.monotonic() - self._last_sent
                if quiet_for < self.keepalive_interval:
                    await asyncio.sleep(self.keepalive_interval - quiet_for)
                    continue
                # Registered as a call so that its answer (pong, or an error from a server
                # that does not know ping yet) is consumed here and not by another call.
                waiter = self._expect("pong", None)
                asyncio.get_running_loop().call_later(self.request_timeout, self._forget, waiter)
                await self._send(ws, action_frame("ping", requestId=waiter.request_id))

    async def _resend_unacked(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionLost):
            while True:
                await asyncio.sleep(self.ack_timeout / 2)
                for entry in self._outbox.due(time.monotonic(), self.ack_timeout):
                    await self._send_outgoing(ws, entry)

    async def _keep_tokens_fresh(self) -> None:
        try:
            await self._tokens.keep_fresh()
        except SignInRequired as exc:
            # The open connection keeps working; the next connect will stop the client.
            logger.warning("token refresh refused: %s", exc)

    def _finish(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._closing = True
        self._fail_waiters(ClientClosed("the client is closed"))
        for waiters in self._outcome_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(ClientClosed(self.stop_reason or "the client is closed"))
        self._outcome_waiters.clear()
        self._set_state(ConnectionState.CLOSED, error=self.stop_reason)
        for stream in list(self._streams):
            stream._push(_END)
        self._streams.clear()
        if self._refresher is not None and self._refresher is not asyncio.current_task():
            self._refresher.cancel()

    # ------------------------------------------------------------------ incoming frames

    def _dispatch(self, text: str | bytes) -> None:
        try:
            frame = decode_server_frame(text)
            handler = self._handlers.get(frame["type"])
            if handler is None:
                logger.debug("ignoring a frame of unknown type %r", frame["type"])
                return
            handler(self, frame)
        except (MalformedFrame, KeyError, TypeError, ValueError) as exc:
            logger.warning("ignoring a malformed frame (%s): %.200r", exc, text)

    def _on_ack(self, frame: dict[str, Any]) -> None:
        self._acknowledge(str(frame["messageId"]), str(frame.get("timestamp", "")))

    def _acknowledge(self, message_id: str, timestamp: str) -> None:
        entry = self._outbox.acknowledge(message_id)
        if entry is None:
            # The ack of a resend that crossed the first ack: already reported.
            logger.debug("repeated ack for %s ignored", message_id)
            return
        self._send_next(entry.conversation_id)
        self._ledger.advance(message_id, MessageStatus.SENT)
        acked = MessageAcked(message_id, timestamp)
        self._settle(message_id, acked)
        self._emit(acked)

    def _on_message(self, frame: dict[str, Any]) -> None:
        self._receive(ChatMessage.from_wire(frame["message"]), "live")

    def _receive(self, message: ChatMessage, via: str) -> bool:
        if message.recipient_id == self.user_id:
            # Confirm copies already reported too: the server sends a message again until
            # a confirmation reaches it, and the first one may have been lost.
            self._unconfirmed[message.message_id] = None
            self._confirm_wanted.set()
        if not self._seen.add(message.message_id):
            logger.debug("message %s already reported; %s copy ignored", message.message_id, via)
            return False
        self._emit(MessageReceived(message, via))  # type: ignore[arg-type]
        return True

    def _on_sync(self, frame: dict[str, Any]) -> None:
        messages = [ChatMessage.from_wire(m) for m in frame["messages"]]
        new = sum(self._receive(message, "sync") for message in messages)
        self._answer("sync", None, {**frame, "_new": new})

    def _on_status(self, frame: dict[str, Any]) -> None:
        message_id = str(frame["messageId"])
        status = MessageStatus(frame["status"])
        if message_id in self._outbox:
            # Delivered implies stored: the ack was lost or is still on its way.
            self._acknowledge(message_id, str(frame.get("at", "")))
        if self._ledger.advance(message_id, status):
            self._emit(MessageStatusChanged(message_id, str(frame["conversationId"]), status, str(frame.get("at", ""))))

    def _on_marked(self, frame: dict[str, Any]) -> None:
        conversation = str(frame["conversationId"])
        self._emit(MessagesMarkedRead(conversation, tuple(str(i) for i in frame.get("messageIds", []))))
        self._answer("marked", conversation, frame)

    def _on_deleted(self, frame: dict[str, Any]) -> None:
        message_id = str(frame["messageId"])
        self._emit(MessageDeleted(message_id, str(frame["conversationId"]), str(frame.get("at", ""))))
        self._answer("messageDeleted", message_id, frame)

    def _on_history(self, frame: dict[str, Any]) -> None:
        if not self._answer("history", str(frame.get("conversationId")), frame):
            logger.debug("unsolicited history frame ignored")

    def _on_answer(self, frame: dict[str, Any]) -> None:
        if not self._answer(frame["type"], None, frame):
            logger.debug("unsolicited %s frame ignored", frame["type"])

    def _on_error(self, frame: dict[str, Any]) -> None:
        code = str(frame.get("code", ErrorCode.INTERNAL))
        text = str(frame.get("message", ""))
        message_id = frame.get("messageId") if isinstance(frame.get("messageId"), str) else None
        if message_id is not None and message_id in self._outbox:
            self._on_send_error(message_id, code, text)
            return
        # The call whose requestId it echoes; from a server that echoes none, the call about
        # the message it names, else the oldest call (answers come in the order the server
        # finished the requests).
        if isinstance(frame.get("requestId"), str):
            echoed = self._waiter_for(frame)
            candidates = [echoed] if echoed is not None else []  # a call that gave up
        else:
            named = [w for w in self._waiters if message_id is not None and message_id in w.concerns]
            candidates = named or self._waiters
        if not candidates:
            logger.warning("server error %s: %s", code, text)
            self._emit(ServerError(code, text, message_id))
            return
        waiter = candidates[0]
        self._waiters.remove(waiter)
        if not waiter.future.done():
            waiter.future.set_exception(RequestFailed(code, text, message_id))

    def _on_send_error(self, message_id: str, code: str, text: str) -> None:
        if code in PERMANENT_ERRORS:
            entry = self._outbox.discard(message_id)
            if entry is not None:
                self._send_next(entry.conversation_id)
            failure = RequestFailed(code, text, message_id)
            self._settle(message_id, failure)
            self._emit(SendFailed(message_id, code, text))
        else:
            # INTERNAL or RATE_LIMITED: the resend loop tries again after ack_timeout.
            logger.info("message %s not stored yet (%s: %s); will resend", message_id, code, text)

    _handlers: dict[str, Callable[[ChatClient, dict[str, Any]], None]] = {
        "ack": _on_ack,
        "message": _on_message,
        "sync": _on_sync,
        "status": _on_status,
        "marked": _on_marked,
        "messageDeleted": _on_deleted,
        "conversations": _on_answer,
        "users": _on_answer,
        "pong": _on_answer,
        "history": _on_history,
        "error": _on_error,
    }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"handshake refused with HTTP {exc.response.status_code}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _close_reason(ws: ClientConnection) -> str:
    code = ws.close_code
    if code is None:
        return "connection lost"
    reason = ws.close_reason
    return f"closed with {code}" + (f" ({reason})" if reason else "")
