"""Fakes for the asyncio client: a small protocol v1 server on 127.0.0.1 port 0, tokens,
a recording sleep.

The server speaks real WebSocket (the `websockets` library), so the client under test runs
its real connection code; only the backend behind it is scripted. Tests drive everything
with ``asyncio.run`` and bounded waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chatclient import Backoff, ChatClient, Tokens
from chatclient.tokens import TokenSource

ALICE = "0b6c2d0e-alice"
BOB = "5f1e8a3c-bob"
WAIT = 5.0  # bound on every wait in these tests; they finish far sooner


def make_tokens(sub: str = ALICE, *, issued_at: float = 1_000_000.0, lifetime: float = 3600.0,
                tag: str = "1") -> Tokens:
    """Tokens whose ID token carries ``sub``, ``iat`` and ``exp`` (unsigned for our purpose)."""
    claims = {"sub": sub, "iat": int(issued_at), "exp": int(issued_at + lifetime), "tag": tag}
    id_token = jwt.encode(claims, "not-a-secret-just-a-test-key-of-32b", algorithm="HS256")
    return Tokens(id_token, f"access-{tag}", f"refresh-{tag}")


class FixedTokens(TokenSource):
    """A token source with a fixed list of tokens: the next one on each forced refresh."""

    def __init__(self, *tokens: str, user_id: str = ALICE) -> None:
        self._tokens = list(tokens)
        self._index = 0
        self._user_id = user_id
        self.forced = 0

    @property
    def user_id(self) -> str:
        return self._user_id

    async def id_token(self, *, force_refresh: bool = False) -> str:
        if force_refresh:
            from chatclient import SignInRequired

            self.forced += 1
            if self._index + 1 >= len(self._tokens):
                raise SignInRequired("no more tokens")
            self._index += 1
        return self._tokens[self._index]

    async def keep_fresh(self) -> None:
        return None


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` in the reconnect loop: records delays, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def wire_message(message_id: str, *, sender: str = BOB, recipient: str = ALICE, content: str = "hi",
                 timestamp: str = "2026-01-01T00:00:00.000Z") -> dict[str, Any]:
    return {
        "messageId": message_id, "conversationId": f"dm_{ALICE}_{BOB}", "senderId": sender,
        "senderName": "Bob", "recipientId": recipient, "content": content, "timestamp": timestamp,
        "status": "sent", "isDeleted": False, "replyToMessageId": None,
    }


class FakeChatServer:
    """Protocol v1 as far as the tests need it, with knobs to misbehave.

    Attributes:
        valid_tokens: tokens accepted at the handshake (others get 403, none gets 401).
        refuse_handshakes: answer this many next handshakes with 503.
        pending: messages the next syncs hand out (oldest first, ``limit`` per page).
        frames: every client frame received, with the index of its connection.
        drop_on_send: abort the connection on this many next ``sendMessage`` frames, without an ack.
        ignore_sends: drop this many next ``sendMessage`` frames silently (no ack, connection kept).
        double_ack: answer each ``sendMessage`` with two acks.
        refuse_content: ``sendMessage`` with this content gets a VALIDATION_ERROR.
        silent_actions: actions recorded but never answered.
        answers: a fixed answer frame per action.
        echo_request_ids: answers carry the ``requestId`` of the frame they answer, as the
            real server does; off, the server is one from before request ids.
        history: the messages ``getHistory`` pages through (newest first).
    """

    def __init__(self, *, valid_tokens: tuple[str, ...] = ("good",)) -> None:
        self.valid_tokens = set(valid_tokens)
        self.refuse_handshakes = 0
        self.pending: list[dict[str, Any]] = []
        self.frames: list[tuple[int, dict[str, Any]]] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.drop_on_send = 0
        self.ignore_sends = 0
        self.double_ack = False
        self.refuse_content: str | None = None
        self.silent_actions: set[str] = set()
        self.answers: dict[str, dict[str, Any]] = {}
        self.echo_request_ids = False
        self.history: list[dict[str, Any]] = []
        self.handshakes = 0
        self.tokens_seen: list[str | None] = []
        self.connections: list[ServerConnection] = []
        self.url = ""
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> FakeChatServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check, compression=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/dev"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # ------------------------------------------------------------ for the tests

    def sent(self, action: str) -> list[dict[str, Any]]:
        return [frame for _, frame in self.frames if frame.get("action") == action]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until ``condition()`` holds (re-checked on each frame and connection)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def push(self, frame: dict[str, Any]) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await connection.send(json.dumps(frame))

    def kill_connections(self) -> None:
        """Drop every connection abruptly (no close frame), as a lost network does."""
        for connection in list(self.connections):
            connection.transport.abort()

    # ------------------------------------------------------------ server side

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
        self.tokens_seen.append(token)
        if self.refuse_handshakes > 0:
            self.refuse_handshakes -= 1
            return _refusal(HTTPStatus.SERVICE_UNAVAILABLE)
        if token is None:
            return _refusal(HTTPStatus.UNAUTHORIZED)
        if token not in self.valid_tokens:
            return _refusal(HTTPStatus.FORBIDDEN)
        return None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        index = self.handshakes
        await self._notify()
        try:
            async for text in connection:
                frame = json.loads(text)
                self.frames.append((index, frame))
                await self._answer(connection, frame)
                await self._notify()
        except Exception:  # an aborted connection ends here
            pass
        finally:
            self.connections.remove(connection)
            await self._notify()

    async def _answer(self, connection: ServerConnection, frame: dict[str, Any]) -> None:
        if self.echo_request_ids and "requestId" in frame:
            connection = _Echoing(connection, frame["requestId"])  # type: ignore[assignment]
        action = frame.get("action")
        if action in self.silent_actions:
            return
        if action in self.answers:
            await connection.send(json.dumps(self.answers[action]))
            return
        if action == "sendMessage":
            await self._send_message(connection, frame)
        elif action == "syncMessages":
            limit = frame.get("limit", 50)
            page, self.pending = self.pending[:limit], self.pending[limit:]
            more = bool(self.pending)
            await connection.send(json.dumps({"type": "sync", "messages": page,
                                              "cursor": f"after-{page[-1]['messageId']}" if more else None,
                                              "hasMore": more}))
        elif action == "ackMessages":
            pass  # one-way, like the real server: a confirmation gets no answer
        elif action == "ping":
            await connection.send(json.dumps({"type": "pong", "at": _now()}))
        elif action == "getHistory":
            cursor = str(frame.get("cursor") or "0")
            start = int(cursor) if cursor.isdigit() else 0
            end = start + frame.get("limit", 50)
            more = end < len(self.history)
            await connection.send(json.dumps({"type": "history", "conversationId": frame["conversationId"],
                                              "messages": self.history[start:end],
                                              "cursor": str(end) if more else None, "hasMore": more}))
        elif action == "findUsers":
            await connection.send(json.dumps({"type": "users", "users": [
                {"userId": BOB, "name": "Bob", "username": "bob"}]}))
        else:
            await connection.send(json.dumps({"type": "error", "code": "VALIDATION_ERROR",
                                              "message": f"Unknown action '{action}'."}))

    async def _send_message(self, connection: ServerConnection, frame: dict[str, Any]) -> None:
        message_id = frame["messageId"]
        if self.drop_on_send > 0:
            self.drop_on_send -= 1
            self.stored.setdefault(message_id, frame)  # stored, but the ack never leaves
            connection.transport.abort()
            return
        if self.ignore_sends > 0:
            self.ignore_sends -= 1
            return
        if frame["content"] == self.refuse_content:
            await connection.send(json.dumps({"type": "error", "code": "VALIDATION_ERROR",
                                              "message": "content is refused.", "messageId": message_id}))
            return
        self.stored.setdefault(message_id, frame)
        ack = json.dumps({"type": "ack", "messageId": message_id, "status": "sent", "timestamp": _now()})
        await connection.send(ack)
        if self.double_ack:
            await connection.send(ack)


class _Echoing:
    """A connection whose answers carry one request's ``requestId``."""

    def __init__(self, connection: ServerConnection, request_id: Any) -> None:
        self._connection = connection
        self._request_id = request_id
        self.transport = connection.transport

    async def send(self, text: str) -> None:
        await self._connection.send(json.dumps({**json.loads(text), "requestId": self._request_id}))


def _refusal(status: HTTPStatus) -> Response:
    body = json.dumps({"message": status.phrase}).encode()
    return Response(status.value, status.phrase, Headers([("Content-Type", "application/json")]), body)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


@pytest.fixture
def chat_server() -> type[FakeChatServer]:
    """The fake server class: ``async with chat_server() as server: ...``."""
    return FakeChatServer


@pytest.fixture
def new_client() -> Callable[..., ChatClient]:
    """A client for a fake server: no waiting between attempts, ceilings as delays."""

    def make(server: FakeChatServer, tokens: TokenSource | None = None, **options: Any) -> ChatClient:
        options.setdefault("backoff", Backoff(base=0.5, max_delay=8.0, random=lambda: 1.0))
        options.setdefault("sleep", RecordingSleep())
        options.setdefault("transport_ping_interval", None)
        options.setdefault("close_timeout", 1.0)
        return ChatClient(server.url, tokens or FixedTokens("good"), **options)

    return make
