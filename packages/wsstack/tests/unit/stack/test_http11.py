"""The Runtime API's HTTP/1.1 server, driven over real sockets.

Each test starts a :class:`ServerProtocol` server on an ephemeral local port inside
``asyncio.run`` and talks to it with ``http.client`` (run in a worker thread) or with raw
asyncio streams for the framing edge cases.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TypeVar

import pytest

from wsstack.http11 import MAX_HEAD, HttpError, Request, Response, ServerProtocol

#: Upper bound on any single wait; generous so a slow machine never flakes.
TIMEOUT = 5.0
MAX_BODY = 1024

T = TypeVar("T")


def run(test: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(test(), TIMEOUT * 4)

    return asyncio.run(bounded())


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, TIMEOUT)


class App:
    """A tiny handler that records what it was asked.

    ``/echo`` answers at once with the request echoed back, ``/later`` answers with a future
    the test resolves, ``/teapot`` raises :class:`HttpError`, ``/crash`` raises anything else.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.futures: list[asyncio.Future[Response]] = []
        self.pending = asyncio.Queue[asyncio.Future[Response]]()
        self.finished = asyncio.Queue[asyncio.Future[Response]]()
        self.connections = 0

    def protocol(self) -> ServerProtocol:
        self.connections += 1
        return ServerProtocol(self.handle, max_body=MAX_BODY)

    def handle(self, request: Request) -> Response | asyncio.Future[Response]:
        self.requests.append(request)
        if request.path == "/later":
            future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
            future.add_done_callback(self.finished.put_nowait)
            self.futures.append(future)
            self.pending.put_nowait(future)
            return future
        if request.path == "/teapot":
            raise HttpError(418, "short and stout")
        if request.path == "/crash":
            raise RuntimeError("handler bug")
        return Response(
            200,
            request.body,
            {"X-Method": request.method, "X-Path": request.path, "X-Count": str(len(self.requests))},
        )


@asynccontextmanager
async def serve(app: App) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(app.protocol, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await bounded(server.wait_closed())


# -- clients ------------------------------------------------------------------------------------


class HttpClient:
    """``http.client`` on one persistent connection, each call run off the event loop."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    async def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        def call() -> tuple[int, dict[str, str], bytes]:
            self.connection.request(method, path, body=body, headers=headers or {})  # type: ignore[arg-type]
            response = self.connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()

        return await bounded(asyncio.to_thread(call))

    def close(self) -> None:
        self.connection.close()


@asynccontextmanager
async def http_client(port: int) -> AsyncIterator[HttpClient]:
    client = HttpClient(port)
    try:
        yield client
    finally:
        client.close()


class RawClient:
    """Bytes in, parsed responses out, over one asyncio stream connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await bounded(self.writer.drain())

    async def read_head(self) -> tuple[str, dict[str, str]]:
        head = await bounded(self.reader.readuntil(b"\r\n\r\n"))
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status_line, headers

    async def read_response(self) -> tuple[int, dict[str, str], bytes]:
        status_line, headers = await self.read_head()
        body = await bounded(self.reader.readexactly(int(headers["content-length"])))
        return int(status_line.split(" ")[1]), headers, body

    async def at_eof(self) -> bool:
        """Whether the server closed the connection (with nothing further sent)."""
        return await bounded(self.reader.read()) == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await bounded(self.writer.wait_closed())


@asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[RawClient]:
    reader, writer = await bounded(asyncio.open_connection("127.0.0.1", port))
    client = RawClient(reader, writer)
    try:
        yield client
    finally:
        await client.close()


# -- ordinary requests ------------------------------------------------------------------------


def test_get_reaches_the_handler_with_path_headers_and_port() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            status, headers, body = await client.request("GET", "/echo?x=1", headers={"X-Trace-Id": "abc"})

        assert (status, body) == (200, b"")
        assert headers["x-method"] == "GET"
        assert headers["x-path"] == "/echo"
        assert headers["content-length"] == "0"
        [request] = app.requests
        assert request.path == "/echo"
        assert request.headers["x-trace-id"] == "abc"
        assert request.port == port

    run(scenario)


def test_post_with_content_length_delivers_the_body() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            status, headers, body = await client.request("POST", "/echo", body=b'{"hello": "world"}')

        assert (status, body) == (200, b'{"hello": "world"}')
        assert headers["x-method"] == "POST"
        assert headers["content-length"] == str(len(body))
        assert app.requests[0].headers["content-length"] == str(len(body))

    run(scenario)


def test_a_body_arriving_after_its_head_then_a_second_request_are_both_served() -> None:
    # boto3 sends a POST's head and body in separate packets; the next request on the same
    # connection must not see the first one's head.
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
            await client.send(b"he")
            await client.send(b"llo")
            first = await client.read_response()
            await client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbye")
            second = await client.read_response()

        assert (first[0], first[2]) == (200, b"hello")
        assert (second[0], second[2]) == (200, b"bye")
        assert [r.body for r in app.requests] == [b"hello", b"bye"]

    run(scenario)


def test_chunked_request_body_is_reassembled() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            # An iterable body without Content-Length makes http.client send it chunked.
            status, _, body = await client.request("POST", "/echo", body=iter([b"hello, ", b"chunked ", b"world"]))

        assert (status, body) == (200, b"hello, chunked world")
        assert app.requests[0].headers["transfer-encoding"] == "chunked"

    run(scenario)


def test_chunked_body_split_across_packets_with_extensions_and_trailers() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            pieces = [
                b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"4;name=value\r\nWi",
                b"ki\r\n5\r\npedia\r\n",
                b"0\r\nX-Trailer: yes\r\n",
                b"\r\n",
            ]
            for piece in pieces:
                await client.send(piece)
            status, _, body = await client.read_response()

        assert (status, body) == (200, b"Wikipedia")

    run(scenario)


def test_expect_100_continue_is_answered_before_the_body_is_sent() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
            )
            status_line, _ = await client.read_head()
            assert status_line == "HTTP/1.1 100 Continue"
            assert app.requests == []

            await client.send(b"hello")
            status, _, body = await client.read_response()

        assert (status, body) == (200, b"hello")

    run(scenario)


def test_expect_100_continue_with_chunked_body() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            )
            status_line, _ = await client.read_head()
            assert status_line == "HTTP/1.1 100 Continue"

            await client.send(b"3\r\nabc\r\n0\r\n\r\n")
            status, _, body = await client.read_response()

        assert (status, body) == (200, b"abc")

    run(scenario)


# -- persistent connections ---------------------------------------------------------------------


def test_keep_alive_serves_two_requests_on_one_connection_in_order() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            first = await client.request("POST", "/echo", body=b"one")
            second = await client.request("POST", "/echo", body=b"two")

        assert [(s, h["x-count"], b) for s, h, b in (first, second)] == [(200, "1", b"one"), (200, "2", b"two")]
        assert "connection" not in first[1]
        assert app.connections == 1

    run(scenario)


def test_pipelined_requests_are_answered_in_order_even_when_the_first_waits() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(
                b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
            )
            future = await bounded(app.pending.get())
            # The second request is not parsed until the first is answered.
            assert [r.path for r in app.requests] == ["/later"]

            future.set_result(Response(200, b"first"))
            first = await client.read_response()
            second = await client.read_response()

        assert (first[0], first[2]) == (200, b"first")
        assert (second[0], second[2]) == (200, b"second")

    run(scenario)


def test_connection_close_closes_after_the_response() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, headers, _ = await client.read_response()

            assert status == 200
            assert headers["connection"] == "close"
            assert await client.at_eof()

    run(scenario)


def test_connection_close_with_http_client() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            status, headers, body = await client.request("POST", "/echo", b"bye", {"Connection": "close"})
            assert (status, headers["connection"], body) == (200, "close", b"bye")
            # http.client reconnects by itself; the server saw a second connection.
            status, _, _ = await client.request("GET", "/echo")

        assert status == 200
        assert app.connections == 2

    run(scenario)


def test_http_1_0_without_keep_alive_closes_after_the_response() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(b"GET /echo HTTP/1.0\r\n\r\n")
            status, headers, _ = await client.read_response()

            assert status == 200
            assert headers["connection"] == "close"
            assert await client.at_eof()

    run(scenario)


# -- answers given later -----------------------------------------------------------------------


def test_future_answer_is_sent_when_resolved() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            call = asyncio.create_task(client.request("GET", "/later"))
            future = await bounded(app.pending.get())
            assert not call.done()

            future.set_result(Response(200, b'{"event": 1}', {"Lambda-Runtime-Aws-Request-Id": "r-1"}))
            status, headers, body = await call
            # The connection stays usable afterwards.
            again = await client.request("GET", "/echo")

        assert (status, body) == (200, b'{"event": 1}')
        assert headers["lambda-runtime-aws-request-id"] == "r-1"
        assert again[0] == 200
        assert app.connections == 1

    run(scenario)


def test_http_error_set_on_the_future_becomes_the_response() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            call = asyncio.create_task(client.request("GET", "/later"))
            future = await bounded(app.pending.get())
            future.set_exception(HttpError(410, "gone away"))
            status, headers, body = await call

        assert (status, body) == (410, b"gone away")
        assert headers["content-type"] == "text/plain; charset=utf-8"

    run(scenario)


def test_other_exception_on_the_future_becomes_500() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            call = asyncio.create_task(client.request("GET", "/later"))
            future = await bounded(app.pending.get())
            future.set_exception(RuntimeError("boom"))
            status, _, _ = await call

        assert status == 500

    run(scenario)


def test_client_disconnect_while_waiting_cancels_the_future_and_server_stays_healthy() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port:
            async with raw_client(port) as client:
                await client.send(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
                future = await bounded(app.pending.get())
            assert await bounded(app.finished.get()) is future
            assert future.cancelled()

            async with http_client(port) as client:
                status, _, body = await client.request("POST", "/echo", b"still here")

        assert (status, body) == (200, b"still here")

    run(scenario)


# -- errors ------------------------------------------------------------------------------------


def test_http_error_raised_by_the_handler_becomes_its_status_and_body() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            status, headers, body = await client.request("GET", "/teapot")
            after = await client.request("GET", "/echo")

        assert (status, body) == (418, b"short and stout")
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert after[0] == 200
        assert app.connections == 1

    run(scenario)


def test_handler_crash_becomes_500_and_the_connection_stays_usable() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            status, _, _ = await client.request("GET", "/crash")
            after = await client.request("GET", "/echo")

        assert status == 500
        assert after[0] == 200
        assert app.connections == 1

    run(scenario)


def test_body_over_the_limit_gets_413_without_being_read_and_the_connection_closes() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            # The client asked to wait for 100 Continue; it is told 413 instead.
            await client.send(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
            )
            status, headers, _ = await client.read_response()

            assert status == 413
            assert headers["connection"] == "close"
            assert await client.at_eof()
        assert app.requests == []

    run(scenario)


def test_body_at_the_limit_is_accepted() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, http_client(port) as client:
            status, _, body = await client.request("POST", "/echo", b"x" * MAX_BODY)

        assert (status, len(body)) == (200, MAX_BODY)

    run(scenario)


def test_chunked_body_over_the_limit_gets_413() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            half = MAX_BODY // 2 + 1
            await client.send(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (f"{half:x}\r\n".encode() + b"x" * half + b"\r\n") * 2
            )
            status, _, _ = await client.read_response()

            assert status == 413
            assert await client.at_eof()
        assert app.requests == []

    run(scenario)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="request-line-one-word"),
        pytest.param(b"GET /echo\r\n\r\n", id="request-line-no-version"),
        pytest.param(b"\r\n\r\n", id="empty-request-line"),
        pytest.param(b"POST /echo HTTP/1.1\r\nContent-Length: five\r\n\r\nhello", id="content-length-not-a-number"),
        pytest.param(
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            id="chunk-size-not-hex",
        ),
    ],
)
def test_malformed_request_gets_400_and_the_connection_closes(raw: bytes) -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port:
            async with raw_client(port) as client:
                # A valid request pipelined behind the bad one is never served.
                await client.send(raw + b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, body = await client.read_response()

                assert (status, body) == (400, b"Bad Request")
                assert headers["connection"] == "close"
                assert await client.at_eof()
            assert app.requests == []

            async with http_client(port) as client:
                assert (await client.request("GET", "/echo"))[0] == 200

    run(scenario)


def test_oversized_head_gets_431_and_the_connection_closes() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(b"GET /echo HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD + 1))
            status, _, _ = await client.read_response()

            assert status == 431
            assert await client.at_eof()
        assert app.requests == []

    run(scenario)


def test_negative_content_length_gets_400() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
            status, _, _ = await client.read_response()

            assert status == 400
            assert app.requests == []

    run(scenario)


def test_negative_chunk_size_gets_400() -> None:
    async def scenario() -> None:
        app = App()
        async with serve(app) as port, raw_client(port) as client:
            await client.send(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"-2\r\n5\r\nhello\r\n0\r\n\r\n"
            )
            status, _, _ = await client.read_response()

            assert status == 400
            assert app.requests == []

    run(scenario)
