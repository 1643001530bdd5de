"""One port for WebSocket clients and the ``@connections`` API, as API Gateway serves both.

On AWS, ``wss://{domainName}/{stage}`` and ``https://{domainName}/{stage}/@connections/{id}``
share a host, so code that builds its endpoint from the event reaches the gateway. Locally
``websockets`` serves the upgrades but cannot answer POST or DELETE, so each accepted
connection is first read up to its request line and then handed, with what was read, to the
protocol that serves it: the WebSocket server for an upgrade, the HTTP server for the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast
from urllib.parse import unquote_to_bytes

__all__ = ["PortSharer", "is_websocket_request"]

#: A request line longer than this goes to the HTTP server, which refuses it.
MAX_REQUEST_LINE = 8 * 1024


def is_websocket_request(request_line: bytes) -> bool:
    """True for a request the WebSocket server should take: a GET outside ``@connections``.

    Any other GET gets the WebSocket server's own refusal (426, or 403 off the stage path).
    The target is percent-decoded first, as API Gateway decodes it: a GET of
    ``/<stage>/%40connections/<id>`` is an ``@connections`` call.
    """
    method, _, rest = request_line.partition(b" ")
    target = unquote_to_bytes(rest.partition(b" ")[0])
    return method == b"GET" and b"/@connections" not in target


class PortSharer(asyncio.Protocol):
    """Reads the request line of a new connection, then hands the connection over.

    Args:
        websocket: Makes the protocol serving a WebSocket upgrade.
        http: Makes the protocol serving any other HTTP request.
        undecided: Holds the transport until it goes to the WebSocket server (which closes
            its own connections) or is lost, so that whoever stops the server can close it.
    """

    def __init__(
        self,
        websocket: Callable[[], asyncio.Protocol],
        http: Callable[[], asyncio.Protocol],
        undecided: set[asyncio.Transport],
    ) -> None:
        self._websocket = websocket
        self._http = http
        self._undecided = undecided
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (not always an asyncio.Transport subclass: uvloop's is not).
        self._transport = cast(asyncio.Transport, transport)
        self._undecided.add(self._transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0 and len(self._buffer) <= MAX_REQUEST_LINE:
            return
        transport, self._transport = self._transport, None
        if transport is None:
            return
        request_line = bytes(self._buffer[:line_end]) if line_end >= 0 else b""
        if is_websocket_request(request_line):
            self._undecided.discard(transport)
            protocol = self._websocket()
        else:
            protocol = self._http()  # which takes over the transport's bookkeeping
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(bytes(self._buffer))
        self._buffer.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        # Closed before a whole request line arrived: nothing was handed over.
        if self._transport is not None:
            self._undecided.discard(self._transport)
        self._transport = None
        self._buffer.clear()
