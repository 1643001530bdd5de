"""The asyncio layer of the local gateway: sockets in, :mod:`wsstack.gateway.core` decisions out.

WebSocket connections are served by ``websockets`` and the ``@connections`` API by
:mod:`wsstack.http11`, both on the stage's port as on AWS (see
:mod:`wsstack.gateway.listener`); with a TLS context, a second port serves both over TLS and
is the ``domainName`` events carry, so ``https://{domainName}/{stage}`` routes back here.
Lambdas are reached through an injected ``invoke`` coroutine, so the gateway neither knows
nor cares how functions run.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import re
import ssl
import time
import weakref
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol as WebSocketProtocol

from wsstack.gateway.core import (
    CONNECT_ROUTE,
    DISCONNECT_ROUTE,
    GOING_AWAY,
    Connection,
    ConnectionRegistry,
    HandshakeRequest,
    Limits,
    RouteThrottles,
    StageContext,
    build_authorizer_event,
    build_connect_event,
    build_disconnect_event,
    build_message_event,
    client_close_details,
    connect_status,
    connect_subprotocol,
    default_api_id,
    error_frame,
    find_api_key,
    interpret_authorizer_result,
    is_sigv4_signed,
    message_reply,
    missing_identity_sources,
    new_connection_id,
    new_request_id,
    select_route,
    server_close_details,
    validate_body,
)
from wsstack.gateway.listener import PortSharer
from wsstack.gateway.management import ManagementApi
from wsstack.hosts import is_loopback, url_host
from wsstack.http11 import ServerProtocol as HttpProtocol
from wsstack.model import InvocationResult, Route, WebSocketApi

__all__ = ["Gateway", "Invoke", "websocket_protocol"]

logger = logging.getLogger("wsstack.gateway")


class Invoke(Protocol):
    """How the gateway runs a Lambda: ``await invoke(function_logical_id, event)``.

    It may return a coroutine or, cheaper, a future (:meth:`wsstack.runtime.LambdaRuntime.submit`).

    ``report=False`` tells the runtime that the gateway's own line reports this invocation
    (see :meth:`wsstack.runtime.LambdaRuntime.invoke`).
    """

    def __call__(self, function: str, event: Any, *, report: bool = True) -> Awaitable[InvocationResult]: ...


#: Marks an invocation the gateway stopped waiting for after ``integration_timeout``.
_TIMED_OUT = object()


@dataclass(eq=False)
class _Live:
    """Socket-side state of one open connection."""

    record: Connection
    socket: ServerConnection
    last_active: float = field(default_factory=time.monotonic)
    opened: float = field(default_factory=time.monotonic)
    #: Set when the gateway (not the client) closes: the $disconnect code and reason.
    server_close: tuple[int, str] | None = None


def _json_response(status: int, message: str | None) -> Response:
    body = json.dumps({"message": message}).encode()
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    headers = Headers(
        [
            ("Connection", "close"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
    )
    return Response(status, phrase, headers, body)


class Gateway:
    """A local API Gateway WebSocket API stage.

    Args:
        api: The WebSocket API (routes, authorizer, route selection expression).
        stage: The stage served; clients connect to ``ws://host:port/<stage>``.
        invoke: Runs a Lambda: ``await invoke(function_logical_id, event)``.
        host: Interface to listen on; URLs and ``domainName`` name 127.0.0.1 when it
            is 0.0.0.0 (see :func:`wsstack.hosts.url_host`). Beyond the loopback interface,
            ``@connections`` refuses requests not signed with SigV4, as AWS does.
        port: Port for WebSocket clients and ``@connections``, 0 for any free port.
        tls: When given, a second port serves the same over TLS with this context, and
            events name it as ``domainName``.
        tls_port: That TLS port, 0 for any free port.
        limits: Service limits, AWS defaults when None.
        api_id: ``requestContext.apiId``; by default derived from the API's logical id.
        region: Region used in the authorizer's methodArn.

    Attributes:
        url: ``ws://host:port/<stage>``, set by :meth:`start`.
        management_url: ``http://host:port/<stage>``, set by :meth:`start`: an
            ``endpoint_url`` for boto3's ``apigatewaymanagementapi`` client.
        secure_url: ``wss://host:tls_port/<stage>`` when serving TLS, else empty.
    """

    def __init__(
        self,
        api: WebSocketApi,
        stage: str,
        invoke: Invoke,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        tls_port: int = 0,
        limits: Limits | None = None,
        api_id: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.api = api
        self.stage = stage
        self.limits = limits or Limits()
        self.registry = ConnectionRegistry()
        self.url = ""
        self.management_url = ""
        self.secure_url = ""
        self._invoke = invoke
        self._host = host
        self._port = port
        self._tls = tls
        self._tls_port = tls_port
        self._api_id = api_id or default_api_id(api.logical_id)
        self._region = region
        self._context: StageContext | None = None
        self._servers: list[Server] = []
        # Open connections that are not WebSockets (@connections calls, kept alive by boto3's
        # pool, and connections yet to send a request line): stop() closes them itself, as
        # websockets closes only its own and the listening server waits for every one.
        self._other: set[asyncio.Transport] = set()
        # Reachable from other machines, @connections wants SigV4 as on AWS (see management).
        self._management = ManagementApi(
            self, stage, max_payload=self.limits.max_message_bytes, require_signature=not is_loopback(host)
        )
        self._live: dict[str, _Live] = {}
        # The stage's per-route token buckets (DefaultRouteSettings, RouteSettings).
        self._throttles = RouteThrottles(api.settings(stage))
        # Connections whose $connect succeeded but whose handler has not started yet.
        self._accepted: weakref.WeakKeyDictionary[ServerConnection, Connection] = weakref.WeakKeyDictionary()
        # Invocations the gateway gave up on (timeout) but that are still running, as a
        # Lambda keeps running on AWS after API Gateway stops waiting.
        self._orphans: set[asyncio.Future[Any]] = set()
        # Message handlers and background closes, cancelled by stop() if still running.
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def context(self) -> StageContext:
        """What events say about this stage (available once started)."""
        if self._context is None:
            raise RuntimeError("the gateway is not started")
        return self._context

    async def start(self) -> None:
        """Listen for WebSocket clients and ``@connections`` calls."""
        if self._servers:
            raise RuntimeError("the gateway is already started")
        plain = await self._listen(self._port, None)
        port = plain.sockets[0].getsockname()[1]
        host = url_host(self._host)
        self.url = f"ws://{host}:{port}/{self.stage}"
        self.management_url = f"http://{host}:{port}/{self.stage}"
        domain_name = f"{host}:{port}"
        if self._tls is not None:
            secure = await self._listen(self._tls_port, self._tls)
            domain_name = f"{host}:{secure.sockets[0].getsockname()[1]}"
            self.secure_url = f"wss://{domain_name}/{self.stage}"
        self._context = StageContext(
            api_id=self._api_id,
            stage=self.stage,
            domain_name=domain_name,
            region=self._region,
            stage_variables={name: str(value) for name, value in self.api.settings(self.stage).variables.items()},
        )
        logger.info(
            "gateway serving %s (@connections at %s)%s", self.url, self.management_url,
            f", and over TLS at {self.secure_url}" if self.secure_url else "",
        )
        for key in self.api.api_keys.get(self.stage, ()):
            # AWS generates a key's value when the template sets none; locally it is derived from
            # the key's logical id (the same on every run) and said here, so a client can use it.
            logger.info(
                "API key %s (id %s%s) for %s stage %s: x-api-key %s", key.logical_id, key.key_id,
                ", disabled" if not key.enabled else "", self.api.logical_id, self.stage, key.value,
            )

    async def _listen(self, port: int, tls: ssl.SSLContext | None) -> Server:
        # websockets' Server keeps the bookkeeping serve() would (open connections, handler
        # tasks, closing with 1001); the listening socket is ours, so that each connection
        # can go to the WebSocket server or to the @connections API by its request line.
        loop = asyncio.get_running_loop()
        max_body = self._management.read_limit

        def accept() -> PortSharer:
            return PortSharer(
                websocket=lambda: self._new_websocket(server),
                http=lambda: HttpProtocol(self._management, max_body=max_body, open_transports=self._other),
                undecided=self._other,
            )

        async def create_server() -> asyncio.Server:
            return await loop.create_server(accept, self._host, port, ssl=tls)

        server = Server(create_server, self._serve_websocket)
        await server
        self._servers.append(server)
        return server

    def _new_websocket(self, server: Server) -> ServerConnection:
        protocol = websocket_protocol(self.limits)
        # API Gateway does not send pings; idle connections are closed by the idle timeout.
        return ServerConnection(protocol, server, ping_interval=None, ping_timeout=None)

    async def _serve_websocket(self, socket: ServerConnection) -> None:
        # What websockets' serve() does for each connection: the opening handshake (which
        # waits for the authorizer and the $connect integration), then the handler.
        server = socket.server
        try:
            try:
                async with asyncio.timeout(2 * self.limits.integration_timeout + 10):
                    await socket.handshake(None, self._process_response, None)
            except Exception:
                socket.transport.abort()
                return
            if socket.protocol.state is not State.OPEN:
                socket.transport.abort()
                return
            server.all_connections.add(socket)
            try:
                async with socket:
                    await self._handle(socket)
            except Exception:
                logger.exception("connection handler failed")
            finally:
                server.all_connections.discard(socket)
        finally:
            server.handler_tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def stop(self) -> None:
        """Close every connection with 1001, run their ``$disconnect``, stop listening.

        Idempotent.
        """
        if self._stopped or not self._servers:
            return
        self._stopped = True
        for live in self._live.values():
            live.server_close = live.server_close or GOING_AWAY
        # Closes open sockets with 1001 and waits for every handler, hence every
        # $disconnect invocation, to finish.
        for transport in list(self._other):
            # Aborted, not closed: a TLS close waits for the peer's reply, which an idle
            # client pool never sends.
            transport.abort()
        for server in self._servers:
            server.close(code=GOING_AWAY[0], reason=GOING_AWAY[1])
        await asyncio.gather(*(server.wait_closed() for server in self._servers))
        for task in [*self._tasks, *self._orphans]:
            task.cancel()
        logger.info("gateway stopped %s", self.url)

    # ----------------------------------------------------------------- handshake

    async def _process_response(
        self, socket: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        # Runs after websockets validated the upgrade (response is 101) and before the
        # response is sent: on AWS the upgrade likewise waits for the authorizer and the
        # $connect integration.
        if response.status_code != 101:
            return None
        started = time.monotonic()
        request_id = new_request_id()
        handshake = HandshakeRequest.from_http(
            request.path,
            list(request.headers.raw_items()),
            socket.remote_address[0],
            server_port=socket.local_address[1],
            scheme="https" if socket.transport.get_extra_info("sslcontext") is not None else "http",
        )
        if handshake.path != f"/{self.stage}":
            # API Gateway refuses an upgrade on a path that is not a deployed stage with 403.
            self._log_connect("-", request_id, 403, started, "unknown stage path")
            return _json_response(403, "Forbidden")

        record = Connection(
            connection_id=new_connection_id(),
            connected_at=time.time(),
            source_ip=handshake.source_ip,
            user_agent=handshake.user_agent,
        )
        status, detail, subprotocol = await self._authorize_and_connect(handshake, record, request_id)
        self._log_connect(record.connection_id, request_id, status if status != 200 else 101, started, detail)
        if status != 200:
            return _json_response(status, _refusal_message(status))
        self._accepted[socket] = record
        if subprotocol is not None:
            # Only the $connect integration chooses a subprotocol (see connect_subprotocol).
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        return response

    async def _authorize_and_connect(
        self, handshake: HandshakeRequest, record: Connection, request_id: str
    ) -> tuple[int, str, str | None]:
        """``(status, detail for the log, subprotocol)``: 200 lets the connection in."""
        route = self.api.routes.get(CONNECT_ROUTE)
        if route is None:
            return 200, "no $connect route", None  # $connect is optional
        if not self._throttles.allow(CONNECT_ROUTE, time.monotonic()):
            # A throttled $connect is refused with 429 Too Many Requests before anything runs.
            return 429, "$connect throttled (stage route settings)", None
        if route.authorization_type == "AWS_IAM" and not is_sigv4_signed(handshake):
            return 403, "AWS_IAM route: the upgrade is not signed with SigV4", None
        usage_identifier_key = None
        if route.authorization_type == "CUSTOM" and route.authorizer is not None:
            status, detail, usage_identifier_key = await self._authorize(route, handshake, record, request_id)
            if status != 200:
                return status, detail, None
        if route.api_key_required:
            key = find_api_key(
                self.api.api_key_selection_expression, handshake, self.api.api_keys.get(self.stage, ()),
                usage_identifier_key=usage_identifier_key,
            )
            if key is None:
                return 403, "missing, unknown or disabled API key", None
            record.api_key = key
        if route.function is None:
            return 200, "", None
        event = build_connect_event(self.context, handshake, record, request_id=request_id)
        outcome = await self._call(route.function, event, route.timeout)
        if outcome is _TIMED_OUT:
            return 504, "$connect integration timed out", None
        assert isinstance(outcome, InvocationResult)
        status = connect_status(outcome)
        return status, "" if outcome.ok else "$connect integration failed", connect_subprotocol(outcome)

    async def _authorize(
        self, route: Route, handshake: HandshakeRequest, record: Connection, request_id: str
    ) -> tuple[int, str, str | None]:
        """``(status, detail, usageIdentifierKey)`` of the authorizer's decision."""
        authorizer = route.authorizer
        assert authorizer is not None
        missing = missing_identity_sources(authorizer, handshake)
        if missing:
            # AWS answers 401 without invoking the authorizer.
            return 401, f"missing identity source {', '.join(missing)}", None
        event = build_authorizer_event(self.context, handshake, record, request_id=request_id)
        started = time.monotonic()
        outcome = await self._call(authorizer.function, event)
        latency_ms = int((time.monotonic() - started) * 1000)
        if outcome is _TIMED_OUT:
            return 500, "authorizer timed out", None
        assert isinstance(outcome, InvocationResult)
        decision = interpret_authorizer_result(outcome, self.context.method_arn)
        if decision.allowed:
            record.authorizer = decision.request_context_authorizer(latency_ms)
        return decision.status, decision.detail, decision.usage_identifier_key

    # ---------------------------------------------------------------- connection

    async def _handle(self, socket: ServerConnection) -> None:
        record = self._accepted.pop(socket, None)
        if record is None:  # pragma: no cover - websockets calls us only after a 101
            await socket.close(1011)
            return
        live = _Live(record=record, socket=socket)
        self.registry.add(record)
        self._live[record.connection_id] = live
        watchdog = asyncio.create_task(self._watch(live))
        try:
            async for message in socket:
                if isinstance(message, bytes):
                    # Binary frames are refused with 1003 (unsupported data).
                    await self._close(live, 1003)
                    break
                live.last_active = time.monotonic()
                self.registry.touch(record.connection_id)
                # AWS invokes the integration of each message concurrently.
                self._spawn(self._on_message(live, message))
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            self.registry.remove(record.connection_id)
            self._live.pop(record.connection_id, None)
            await socket.wait_closed()
            code, reason = self._close_details(live)
            await self._disconnect(record, code, reason)

    async def _watch(self, live: _Live) -> None:
        # One timer per connection for the idle timeout and the maximum duration; both
        # close with 1001 "Going away", as AWS does.
        limits = self.limits
        while True:
            deadline = min(
                live.last_active + limits.idle_timeout,
                live.opened + limits.max_connection_duration,
            )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._close(live, GOING_AWAY[0])
                return
            await asyncio.sleep(remaining)

    async def _close(self, live: _Live, code: int) -> None:
        details = server_close_details(code)
        live.server_close = live.server_close or details
        with contextlib.suppress(ConnectionClosed):
            await live.socket.close(*details)

    @staticmethod
    def _close_details(live: _Live) -> tuple[int, str]:
        if live.server_close is not None:
            return live.server_close
        protocol = live.socket.protocol
        received, sent = protocol.close_rcvd, protocol.close_sent
        if received is not None and (sent is None or protocol.close_rcvd_then_sent):
            return client_close_details(received.code, received.reason)
        if sent is not None:
            # websockets closed on our behalf: 1009 for size limits, 1007 for bad UTF-8.
            return server_close_details(sent.code)
        return client_close_details(None, "")

    async def _on_message(self, live: _Live, body: str) -> None:
        # Every frame gets its answer (the route's, Forbidden, or an error frame): a failure
        # of the gateway itself is answered like a failed integration, never with silence.
        request_id = new_request_id()
        answered: list[bool] = []
        try:
            await self._route_message(live, body, request_id, answered)
        except Exception:
            logger.exception("message connectionId=%s requestId=%s: the gateway failed",
                             live.record.connection_id, request_id)
            if not answered:
                await self._send(live, error_frame("Internal server error", live.record.connection_id, request_id))

    async def _route_message(self, live: _Live, body: str, request_id: str, answered: list[bool]) -> None:
        started = time.monotonic()
        record = live.record
        route = select_route(self.api, body)
        if route is None:
            answered.append(await self._send(live, error_frame("Forbidden", record.connection_id, request_id)))
            self._log_route(record.connection_id, "-", request_id, 403, started, "no matching route")
            return
        if not self._throttles.allow(route.route_key, time.monotonic()):
            # The stage's token bucket for this route is empty: the integration is not invoked.
            answered.append(await self._send(live, error_frame("Too Many Requests", record.connection_id, request_id)))
            self._log_route(record.connection_id, route.route_key, request_id, 429, started, "throttled")
            return
        invalid = validate_body(route, body)
        if invalid is not None:
            # API Gateway's BAD_REQUEST_BODY response; the integration is not invoked.
            frame = error_frame("Invalid request body", record.connection_id, request_id)
            answered.append(await self._send(live, frame))
            self._log_route(record.connection_id, route.route_key, request_id, 400, started, invalid)
            return
        if route.function is None:
            self._log_route(record.connection_id, route.route_key, request_id, 200, started, "no Lambda")
            return
        event = build_message_event(
            self.context,
            record,
            route_key=route.route_key,
            body=body,
            request_id=request_id,
            message_id=new_request_id(),
        )
        # One line per message: the gateway's, naming the invocation it made.
        outcome = await self._call(route.function, event, route.timeout, report=False)
        invocation: dict[str, Any] = {"function": route.function}
        if outcome is _TIMED_OUT:
            reply: str | None = error_frame("Endpoint request timed out", record.connection_id, request_id)
            status = 504
        else:
            assert isinstance(outcome, InvocationResult)
            reply = message_reply(outcome, route, connection_id=record.connection_id, request_id=request_id)
            status = 200 if outcome.ok else 500
            invocation.update(_invocation_fields(outcome))
        if reply is not None:
            answered.append(await self._send(live, reply))
        self._log("message", record.connection_id, route.route_key, request_id, status, started, **invocation)

    async def _disconnect(self, record: Connection, code: int, reason: str) -> None:
        started = time.monotonic()
        request_id = new_request_id()
        route = self.api.routes.get(DISCONNECT_ROUTE)
        status = 200
        if route is not None and route.function is not None:
            event = build_disconnect_event(self.context, record, status_code=code, reason=reason, request_id=request_id)
            outcome = await self._call(route.function, event, route.timeout)
            if outcome is _TIMED_OUT:
                status = 504
            elif isinstance(outcome, InvocationResult) and not outcome.ok:
                status = 500
        self._log("disconnect", record.connection_id, DISCONNECT_ROUTE, request_id, status, started,
                  close_code=code, close_reason=reason)

    @staticmethod
    async def _send(live: _Live, text: str) -> bool:
        try:
            await live.socket.send(text)
        except ConnectionClosed:
            return False
        return True

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # Retrieved here so that a failure is logged with its traceback at once, not as
        # "Task exception was never retrieved" whenever the task is collected.
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("gateway task failed", exc_info=exc)

    # ------------------------------------------------------------- invocations

    async def _call(
        self, function: str, event: dict[str, Any], timeout: float | None = None, *, report: bool = True
    ) -> InvocationResult | object:
        """Invoke a Lambda, giving up after the integration timeout (or the route's own, if shorter).

        Returns the result, or ``_TIMED_OUT``. An exception raised by ``invoke`` itself
        (the runtime failed, not the function) is reported like a function error.
        """
        # The invocation runs on its own so it can outlive the wait, as a Lambda keeps running
        # on AWS after API Gateway stops waiting; asyncio.wait gives the one timer this needs
        # (wait_for around shield costs two extra futures per message). An invoke that hands
        # back a future (LambdaRuntime.submit) needs no task at all.
        try:
            task = asyncio.ensure_future(self._invoke(function, event, report=report))
        except Exception as exc:  # a future-returning invoke raises at once
            return _invoke_failed(function, exc)
        limit = self.limits.integration_timeout
        await asyncio.wait((task,), timeout=limit if timeout is None else min(timeout, limit))
        if not task.done():
            self._orphans.add(task)
            task.add_done_callback(self._forget_orphan)
            return _TIMED_OUT
        try:
            return task.result()
        except Exception as exc:
            return _invoke_failed(function, exc)

    def _forget_orphan(self, task: asyncio.Future[Any]) -> None:
        self._orphans.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("timed-out invocation later failed: %r", task.exception())

    # ------------------------------------------------------- @connections operations

    def describe(self, connection_id: str) -> Connection | None:
        """The open connection with this id, or None (``@connections`` GET)."""
        return self.registry.get(connection_id)

    async def post(self, connection_id: str, data: bytes) -> bool:
        """Send data to a client (``@connections`` POST); False when gone.

        UTF-8 data goes out as a text frame, anything else as a binary frame.
        """
        live = self._live.get(connection_id)
        if live is None or connection_id not in self.registry:
            return False
        try:
            message: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            message = data
        try:
            await live.socket.send(message)
        except ConnectionClosed:
            return False
        return True

    async def delete(self, connection_id: str) -> bool:
        """Close a connection (``@connections`` DELETE); False when gone.

        The connection leaves the registry at once; the close handshake and
        ``$disconnect`` follow in the background.
        """
        live = self._live.get(connection_id)
        if live is None or self.registry.remove(connection_id) is None:
            return False
        self._spawn(self._close(live, 1000))
        return True

    # ------------------------------------------------------------------- logging
    #
    # One line per connect, message and disconnect, like API Gateway's access log; the same
    # facts ride on the record as attributes for structured (JSON) output.

    def _log(self, kind: str, connection_id: str, route_key: str, request_id: str, status: int,
             started: float, detail: str = "", **fields: Any) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return  # nothing below is needed for a line nobody shows
        duration = (time.monotonic() - started) * 1000
        # The text line spells names like the access log's fields (closeCode), records like Python.
        extras = "".join(f" {_camel(name)}={_shown(value)}" for name, value in fields.items()) if fields else ""
        logger.info(
            "%s connectionId=%s routeKey=%s requestId=%s status=%d%s durationMs=%.1f%s",
            kind, connection_id, route_key, request_id, status, extras, duration,
            f" detail={detail!r}" if detail else "",
            extra={
                "event": kind,
                "api": self.api.logical_id,
                "stage": self.stage,
                "connection_id": connection_id,
                "route_key": route_key,
                "request_id": request_id,
                "status": status,
                "duration_ms": round(duration, 3),
                **({"detail": detail} if detail else {}),
                **fields,
            },
        )

    def _log_connect(self, connection_id: str, request_id: str, status: int, started: float, detail: str) -> None:
        self._log("connect", connection_id, CONNECT_ROUTE, request_id, status, started, detail)

    def _log_route(
        self, connection_id: str, route_key: str, request_id: str, status: int, started: float, detail: str
    ) -> None:
        self._log("message", connection_id, route_key, request_id, status, started, detail)


def websocket_protocol(limits: Limits, state: State = State.CONNECTING) -> WebSocketProtocol:
    """The sans-I/O WebSocket protocol of one client connection, with the gateway's limits.

    AWS enforces both a message and a frame size; websockets closes with 1009 when either
    is exceeded. No compression: API Gateway does not negotiate it.
    """
    return WebSocketProtocol(state=state, max_size=(limits.max_message_bytes, limits.max_frame_bytes))


def _invoke_failed(function: str, exc: Exception) -> InvocationResult:
    # The runtime failed, not the function: reported to the client like a function error.
    logger.error("invoking %s failed", function, exc_info=exc)
    return InvocationResult(request_id="", error={"errorMessage": str(exc), "errorType": type(exc).__name__})


def _invocation_fields(outcome: InvocationResult) -> dict[str, Any]:
    """What a message's line says about its Lambda invocation, like Lambda's REPORT line."""
    fields: dict[str, Any] = {
        "lambda_request_id": outcome.request_id,
        "lambda_ms": outcome.duration_ms,
        "start": "cold" if outcome.cold_start else "warm",
    }
    if outcome.init_ms is not None:
        fields["init_ms"] = round(outcome.init_ms, 3)
    return fields


#: What makes a value in a text log line ambiguous unless quoted.
_NEEDS_QUOTES = re.compile(r"[\s'\"]")


def _shown(value: Any) -> str:
    # Quoted only when a reader could not tell where the value ends (empty, spaces, quotes).
    if isinstance(value, str) and (not value or _NEEDS_QUOTES.search(value)):
        return repr(value)
    return str(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _refusal_message(status: int) -> str | None:
    return {
        401: "Unauthorized",
        403: "Forbidden",
        429: "Too Many Requests",
        500: "Internal server error",
        502: "Internal server error",
        504: "Endpoint request timed out",
    }.get(status)
