"""A minimal HTTP/1.1 server for the local Lambda Runtime API and the ``@connections`` API.

The Runtime API's clients (``awslambdaric``'s libcurl client, and ``http.client`` for init
errors) send a handful of small requests on one keep-alive connection, one at a time. A general
web framework spends more CPU per request than the rest of an invocation's local path, so this
module serves exactly what that protocol needs: a request line, headers, a body framed by
``Content-Length`` or chunked encoding, ``Expect: 100-continue``, persistent connections.

Why not h11 (the sans-I/O HTTP/1.1 library uvicorn and httpcore use): measured with
``benchmarks/http_parsers.py`` (a ``GET /next`` answered with an event, then a ``POST
/response`` answered with 202, no sockets), this module takes 14 us of CPU per exchange and
h11 0.16 takes 162 us (11x) on the same 2-CPU machine in the same run. Every message crosses
the Runtime API once per invocation and ``@connections`` once per reply, so h11 would add
about 0.15 ms of the gateway's CPU to each round trip, against a budget of 0.4 ms.

A handler answers at once with a :class:`Response`, or with a future resolved later (the
``/next`` long poll); an :class:`HttpError` raised or set on that future becomes its response.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Callable
from typing import cast

__all__ = ["HttpError", "Request", "Response", "ServerProtocol"]

logger = logging.getLogger("wsstack.http")

#: Longest request line plus headers accepted; the Runtime API's are a few hundred bytes.
MAX_HEAD = 64 * 1024


class Request:
    """One parsed request: ``method``, ``path`` (query string removed), ``headers``, ``body``.

    Header names are lower-cased; a repeated header keeps its last value.
    """

    __slots__ = ("body", "headers", "method", "path", "port")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes, port: int) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        #: The local port the request arrived on.
        self.port = port


class Response:
    """A response: status, headers (``Content-Length`` is added) and body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}

    def encode(self, keep_alive: bool) -> bytes:
        try:
            phrase = http.HTTPStatus(self.status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {self.status} {phrase}"]
        lines.extend(f"{name}: {value}" for name, value in self.headers.items())
        lines.append(f"Content-Length: {len(self.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class HttpError(Exception):
    """Raise (or set on a pending future) to answer with this status and text body."""

    def __init__(self, status: int, text: str = "", content_type: str = "text/plain; charset=utf-8") -> None:
        super().__init__(status, text)
        self.response = Response(status, text.encode(), {"Content-Type": content_type})


#: What a handler returns: a response now, or a future of one.
Handler = Callable[[Request], "Response | asyncio.Future[Response]"]


class ServerProtocol(asyncio.Protocol):
    """Serve one connection, requests strictly in order.

    Args:
        handler: Answers each request.
        max_body: Largest body read; a larger one is answered with 413 and the connection
            closed.
        open_transports: When given, holds this connection's transport while it is open, so
            that whoever stops the server can close keep-alive connections (from Python 3.12,
            ``asyncio.Server.wait_closed`` waits for every one of them).
    """

    def __init__(self, handler: Handler, max_body: int, open_transports: set[asyncio.Transport] | None = None) -> None:
        self._handler = handler
        self._max_body = max_body
        self._open = open_transports
        self._registered: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._port = 0
        #: The answer being awaited; no further request is parsed until it is sent.
        self._pending: asyncio.Future[Response] | None = None
        self._keep_alive = True
        self._continued = False
        #: The parsed head of a request whose body has not all arrived yet.
        self._head: tuple[str, str, str, dict[str, str], int] | None = None

    # -- asyncio callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (not always an asyncio.Transport subclass: uvloop's is not).
        self._transport = cast(asyncio.Transport, transport)
        if self._open is not None:
            # Kept apart from _transport, which is cleared as soon as a close is asked for.
            self._registered = self._transport
            self._open.add(self._transport)
        sockname = transport.get_extra_info("sockname")
        self._port = sockname[1] if sockname else 0

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._pending is None:
            self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._open is not None and self._registered is not None:
            self._open.discard(self._registered)
        self._transport = None
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            # Whoever would resolve it sees it is done and looks elsewhere.
            pending.cancel()

    # -- parsing ----------------------------------------------------------------------------

    def _process(self) -> None:
        while self._transport is not None and self._pending is None:
            request = self._parse()
            if request is None:
                return
            try:
                answer = self._handler(request)
            except HttpError as exc:
                answer = exc.response
            except Exception:
                logger.exception("%s %s failed", request.method, request.path)
                answer = Response(500, b"internal error")
            if isinstance(answer, Response):
                self._send(answer)
            else:
                self._pending = answer
                answer.add_done_callback(self._answered)
                return

    def _parse(self) -> Request | None:
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._fail(431)
                return None
            try:
                request_line, *header_lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
                method, target, version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            except ValueError:
                self._fail(400)
                return None
            # Kept until the body is complete: a client often sends the head and the body in
            # separate packets, and the head need not be parsed twice.
            self._head = (method, target, version, headers, end + 4)
        method, target, version, headers, start = self._head
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked(start, headers)
            if body is None:
                return None
            consumed, content = body
        else:
            length = _size(headers.get("content-length", "0"), 10)
            if length is None:
                self._fail(400)
                return None
            if length > self._max_body:
                self._fail(413)
                return None
            if len(buffer) - start < length:
                self._continue(headers)
                return None
            consumed, content = start + length, bytes(buffer[start:start + length])
        del buffer[:consumed]
        self._head = None
        self._continued = False
        connection = headers.get("connection", "").lower()
        self._keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        return Request(method, target.split("?", 1)[0], headers, content, self._port)

    def _chunked(self, start: int, headers: dict[str, str]) -> tuple[int, bytes] | None:
        buffer = self._buffer
        parts = []
        size_total = 0
        pos = start
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                self._continue(headers)
                return None
            size = _size(bytes(buffer[pos:line_end]).split(b";", 1)[0].decode("latin-1"), 16)
            if size is None:
                self._fail(400)
                return None
            size_total += size
            if size_total > self._max_body:
                self._fail(413)
                return None
            if size == 0:
                # The last chunk; optional trailers (none expected) end with an empty line.
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None
                return trailer_end + 4, b"".join(parts)
            data_start = line_end + 2
            if len(buffer) < data_start + size + 2:
                self._continue(headers)
                return None
            parts.append(bytes(buffer[data_start:data_start + size]))
            pos = data_start + size + 2

    def _continue(self, headers: dict[str, str]) -> None:
        # A client that asked to be told before sending its body (libcurl does for large
        # bodies) waits for this interim answer.
        if not self._continued and headers.get("expect", "").lower() == "100-continue":
            self._continued = True
            assert self._transport is not None
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    # -- answering --------------------------------------------------------------------------

    def _answered(self, future: asyncio.Future[Response]) -> None:
        if future is not self._pending:
            # The connection went away meanwhile: nobody gets the answer. An error set on it
            # (a worker retired as the stack stops) is taken here, or asyncio logs it as lost.
            if not future.cancelled():
                future.exception()
            return
        self._pending = None
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, HttpError):
            self._send(exc.response)
        elif exc is not None:
            logger.error("answering a request failed", exc_info=exc)
            self._send(Response(500, b"internal error"))
        else:
            self._send(future.result())
        if self._buffer:
            self._process()

    def _send(self, response: Response) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(response.encode(self._keep_alive))
        if not self._keep_alive:
            transport.close()
            self._transport = None

    def _fail(self, status: int) -> None:
        self._keep_alive = False
        self._buffer.clear()
        self._head = None
        self._send(Response(status, http.HTTPStatus(status).phrase.encode(), {"Content-Type": "text/plain"}))


def _size(text: str, base: int) -> int | None:
    """A body or chunk size as HTTP writes it: digits only (no sign, no ``_``, no ``0x``)."""
    text = text.strip()
    digits = "0123456789abcdefABCDEF"[: 10 if base == 10 else 22]
    if not text or any(c not in digits for c in text):
        return None
    return int(text, base)
