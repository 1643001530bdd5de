"""The workers' way out: an HTTP CONNECT proxy that brings the template's API hosts home.

Code written for AWS reaches ``@connections`` by many URLs: ``https://{domainName}/{stage}``
from the event, an environment variable built in the template (``!Sub https://${Api}.execute-api.
${AWS::Region}.amazonaws.com/${Stage}``, with or without the stage), a URL assembled in code from
the API id and the region, a custom domain. Locally ``Ref`` of an API is its local API id, so all
but the first name a host that exists only on AWS. Every worker gets ``HTTPS_PROXY`` pointing at
this proxy (botocore and requests honour it; ``NO_PROXY`` keeps loopback, the emulator and the
gateways' own ports, direct), and the proxy decides per ``CONNECT``:

* a host of the template's APIs (``<api id>.execute-api.<region>.amazonaws.com`` or a custom
  domain of an ``AWS::ApiGatewayV2::ApiMapping``) on port 443: the proxy answers the TLS itself
  with the stack's certificate, which names these hosts and which workers trust through
  ``AWS_CA_BUNDLE``, and forwards each request to the plain port of the stage its path names
  (a custom domain's base path becomes the stage, as API Gateway maps it);
* any other host: a tunnel to where it points, as the function would reach it on AWS, through
  the developer's own ``HTTPS_PROXY`` when the stack was started with one (and its ``NO_PROXY``).

Node.js ignores ``HTTPS_PROXY`` (its ``https``, ``fetch`` and so the AWS SDK for JavaScript),
so the proxy has a second entrance for it: a TLS port that answers the template's hosts at once,
with no CONNECT, and picks the host of each request from its ``Host`` header. A Node worker's
bootstrap sends its TLS connections to those hosts there (see :mod:`wsstack.node`).

The decisions (:func:`parse_connect`, :meth:`EgressRoutes.decide`, :meth:`LocalHost.target`,
:func:`host_header`) are free of I/O; :class:`EgressProxy` is the thin asyncio layer around them.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import functools
import ipaddress
import logging
import re
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "ApiMapping",
    "ConnectError",
    "Direct",
    "EgressProxy",
    "EgressRoutes",
    "LocalHost",
    "ViaProxy",
    "execute_api_host",
    "host_header",
    "local_hosts",
    "parse_connect",
    "proxy_environment",
]

log = logging.getLogger("wsstack.egress")

#: Longest CONNECT request head (line and headers) accepted; clients send a few hundred bytes.
MAX_HEAD = 16 * 1024
#: Largest request body forwarded to a local stage: ``@connections`` takes at most 128 KB, so
#: this only stops a runaway client; the gateway answers 413 above its own limit.
MAX_BODY = 1024 * 1024
#: Bytes moved per read when piping a tunnel.
_CHUNK = 64 * 1024
#: Loopback, never through the proxy: the emulator (``AWS_ENDPOINT_URL``), the gateways' ports
#: and the Runtime API all live there.
LOOPBACK = "127.0.0.1,localhost,::1"

_HOST_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


class ConnectError(ValueError):
    """A CONNECT request the proxy refuses: ``status`` and one sentence for the client."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


def parse_connect(head: bytes) -> tuple[str, int]:
    """The ``(host, port)`` a CONNECT request asks for.

    Args:
        head: the request line and headers, up to (not necessarily including) the blank line.

    Returns:
        The host lower-cased, without brackets for IPv6 or a trailing dot, and the port.

    Raises:
        ConnectError: 405 for another method, 400 for a request line or authority that is not
            ``CONNECT host:port HTTP/1.x``.
    """
    line = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ConnectError(400, "The request line is not ASCII.") from None
    parts = text.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ConnectError(400, "The request line must be 'CONNECT host:port HTTP/1.1'.")
    method, authority, _ = parts
    if method != "CONNECT":
        raise ConnectError(405, f"This proxy only tunnels (CONNECT), not {method[:16]!r}.")
    host, sep, port_text = authority.rpartition(":")
    if not sep or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise ConnectError(400, "The CONNECT target must be host:port.")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConnectError(400, f"Port {port} is not a TCP port.")
    return _host(host), port


def _host(text: str) -> str:
    if text.startswith("[") and text.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise ConnectError(400, "The CONNECT target's IPv6 address is not valid.") from None
    name = text.lower().removesuffix(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise ConnectError(400, "The CONNECT target's host is not a valid host name or address.")
    return name


def execute_api_host(api_id: str, region: str) -> str:
    """The AWS host of an API: ``<api id>.execute-api.<region>.amazonaws.com``."""
    return f"{api_id}.execute-api.{region}.amazonaws.com".lower()


@dataclass(frozen=True)
class ApiMapping:
    """Where one base path of a host goes: a stage and its local gateway's plain port.

    ``base_path`` is None for an API's own host, whose paths begin with the stage; ``""`` for a
    custom domain mapping without ``ApiMappingKey`` (every path goes to the stage); else the key.
    """

    stage: str
    port: int
    base_path: str | None = None


@dataclass(frozen=True)
class LocalHost:
    """A host of the template's APIs, answered by the local gateways."""

    name: str
    mappings: tuple[ApiMapping, ...]

    def target(self, path: str) -> tuple[int, str]:
        """The local port and path for a request to ``path`` (which may carry a query string).

        An API's own host: ``/{stage}/...`` goes to that stage's gateway unchanged. A custom
        domain: ``/{key}/...`` goes to the mapped stage as ``/{stage}/...``; a mapping without
        key takes every path, prefixed with its stage. A path no mapping takes goes, unchanged,
        to the first mapping's gateway, which answers 403 Forbidden as API Gateway does.
        """
        raw, sep, query = path.partition("?")
        # Segments compared decoded (a client may send "%40connections" or an encoded stage),
        # forwarded as sent.
        sent = raw.lstrip("/").split("/")
        decoded = [unquote(segment) for segment in sent]
        for mapping in self.mappings:
            if mapping.base_path is None and decoded[0] == mapping.stage:
                return mapping.port, path
        keyed = sorted((m for m in self.mappings if m.base_path), key=lambda m: -len(str(m.base_path).split("/")))
        for mapping in keyed:
            key = str(mapping.base_path).strip("/").split("/")
            if decoded[: len(key)] == key:
                rest = "".join("/" + segment for segment in sent[len(key):])
                return mapping.port, f"/{mapping.stage}{rest}{sep}{query}"
        for mapping in self.mappings:
            if mapping.base_path == "":
                return mapping.port, f"/{mapping.stage}/{raw.lstrip('/')}{sep}{query}"
        return self.mappings[0].port, path


@dataclass(frozen=True)
class Direct:
    """Tunnel straight to ``host:port``."""

    host: str
    port: int


@dataclass(frozen=True)
class ViaProxy:
    """Tunnel through the developer's proxy at ``host:port`` (with Basic credentials, if any)."""

    host: str
    port: int
    authorization: str | None = None


@dataclass
class EgressRoutes:
    """What the proxy does with each CONNECT target.

    Args:
        hosts: the template's API hosts by lower-cased name.
        upstream: the developer's ``HTTPS_PROXY`` (a URL), through which other hosts go.
        no_proxy: the developer's ``NO_PROXY``: hosts reached directly even with ``upstream``.
    """

    hosts: Mapping[str, LocalHost] = field(default_factory=dict)
    upstream: str | None = None
    no_proxy: str = ""

    def decide(self, host: str, port: int) -> LocalHost | Direct | ViaProxy:
        """Where a CONNECT to ``host:port`` goes (see the module's description)."""
        local = self.hosts.get(host.lower()) if port == 443 else None
        if local is not None:
            return local
        if self.upstream and not urllib.request.proxy_bypass_environment(host, {"no": self.no_proxy}):
            parsed = urlsplit(self.upstream if "://" in self.upstream else f"http://{self.upstream}")
            authorization = None
            if parsed.username is not None:
                credentials = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
                authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
            return ViaProxy(parsed.hostname or "", parsed.port or 80, authorization)
        return Direct(host, port)

    @classmethod
    def from_environment(cls, hosts: Mapping[str, LocalHost], environ: Mapping[str, str]) -> EgressRoutes:
        """Routes that send other hosts the way ``environ``'s ``HTTPS_PROXY``/``NO_PROXY`` say."""
        def variable(name: str) -> str:
            # Lower case wins, as in urllib's own reading of the environment.
            return environ.get(name.lower()) or environ.get(name.upper()) or ""

        return cls(dict(hosts), variable("https_proxy") or None, variable("no_proxy"))


def proxy_environment(proxy_url: str, declared: Mapping[str, str]) -> dict[str, str]:
    """The variables that send a worker's HTTPS through the proxy at ``proxy_url``.

    Both spellings, as clients disagree on which they read first. Variables the template itself
    declares (``declared``) are the function's own and stay as they are.
    """
    values = {"HTTPS_PROXY": proxy_url, "NO_PROXY": LOOPBACK}
    env: dict[str, str] = {}
    for name, value in values.items():
        if name in declared or name.lower() in declared:
            continue
        env[name] = env[name.lower()] = value
    return env


class EgressProxy:
    """The asyncio server around :class:`EgressRoutes` (see the module's description).

    Args:
        routes: what to do with each CONNECT target.
        tls: the server context answering the template's hosts (the stack's certificate).
        local_host: the address the local gateways listen on.
        host: the address this proxy listens on.
        port: its port (0 = a free port).
    """

    def __init__(
        self, routes: EgressRoutes, tls: ssl.SSLContext | None, *, local_host: str = "127.0.0.1",
        host: str = "127.0.0.1", port: int = 0,
    ) -> None:
        self.routes = routes
        self._tls = tls
        self._local_host = local_host
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Tunnels opened so far, by kind: ``local`` (a template API host), ``direct``, ``proxy``.
        self.tunnels: collections.Counter[str] = collections.Counter()
        #: ``http://127.0.0.1:<port>``, set by :meth:`start`.
        self.url = ""
        #: ``127.0.0.1:<port>`` of the TLS entrance that needs no CONNECT (for Node), set by
        #: :meth:`start`; empty without TLS.
        self.direct_address = ""
        self._direct: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        if self._tls is not None:
            self._direct = await asyncio.start_server(self._accept_direct, self._host, 0, ssl=self._tls)
            self.direct_address = f"{self._host}:{self._direct.sockets[0].getsockname()[1]}"
        log.debug("egress proxy at %s for %s", self.url, ", ".join(sorted(self.routes.hosts)) or "no API host")

    async def stop(self) -> None:
        for server in (self._server, self._direct):
            if server is not None:
                server.close()
        self._server = self._direct = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track(self._connection(self._serve, reader, writer))

    def _accept_direct(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tunnels["local"] += 1
        self._track(self._connection(functools.partial(self._serve_requests, None), reader, writer))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _connection(
        serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    ) -> None:
        """Serve one client connection; it is closed at the end, however the end comes."""
        try:
            await serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.debug("egress connection ended: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD:
                raise ConnectError(431, "The CONNECT request's headers are too long.")
            host, port = parse_connect(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        except ConnectError as exc:
            await _answer(writer, exc.status, exc.sentence)
            return
        decision = self.routes.decide(host, port)
        kind = {LocalHost: "local", Direct: "direct", ViaProxy: "proxy"}[type(decision)]
        self.tunnels[kind] += 1
        log.debug("egress CONNECT %s:%d: %s", host, port, kind)
        if isinstance(decision, LocalHost):
            await self._serve_locally(decision, reader, writer)
        else:
            await self._tunnel(decision, host, port, head, reader, writer)

    async def _tunnel(
        self, decision: Direct | ViaProxy, host: str, port: int, head: bytes,
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(decision.host, decision.port)
        except OSError as exc:
            where = f"{host}:{port}" if isinstance(decision, Direct) else f"the proxy {decision.host}:{decision.port}"
            await _answer(writer, 502, f"{where} could not be reached: {exc.strerror or exc}.")
            return
        try:
            if isinstance(decision, ViaProxy):
                # The developer's proxy answers the CONNECT itself; its answer goes to the worker.
                lines = [f"CONNECT {_authority(host, port)} HTTP/1.1", f"Host: {_authority(host, port)}"]
                if decision.authorization:
                    lines.append(f"Proxy-Authorization: {decision.authorization}")
                up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await _pipe_both(reader, writer, up_reader, up_writer)
        finally:
            up_writer.close()

    async def _serve_locally(
        self, host: LocalHost, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._tls is None:
            await _answer(writer, 502, f"{host.name} is served locally only over TLS, which is off.")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(self._tls)
        await self._serve_requests(host, reader, writer)

    async def _serve_requests(
        self, host: LocalHost | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Forward the requests of one TLS connection to the template's ``host``, or, when None
        (the direct entrance), to the one each request's ``Host`` header names."""
        upstream: tuple[int, asyncio.StreamWriter, asyncio.Task[None]] | None = None
        reading: asyncio.Task[bytes] | None = None
        try:
            while True:
                reading = asyncio.ensure_future(_read_request(reader))
                waiting: list[asyncio.Future[Any]] = [reading] if upstream is None else [reading, upstream[2]]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    # The gateway closed the connection: so does the proxy, as the gateway would
                    # (the read is cancelled below).
                    return
                try:
                    request = reading.result()
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                except ConnectError as exc:
                    await _answer(writer, exc.status, exc.sentence)
                    return
                line, rest = request.split(b"\r\n", 1)
                method, path, version = line.decode("latin-1").split(" ", 2)
                target = host or self.routes.hosts.get(host_header(rest))
                if target is None:
                    await _answer(writer, 421, f"{host_header(rest) or 'A request without Host'} is not "
                                               "one of the template's API hosts.")
                    return
                port, local_path = target.target(path)
                if upstream is None or upstream[0] != port:
                    # A client sends its next request once it has read the last answer, so the
                    # previous stage's connection has nothing left to say.
                    if upstream is not None:
                        upstream[2].cancel()
                        upstream[1].close()
                    up_reader, up_writer = await asyncio.open_connection(self._local_host, port)
                    upstream = (port, up_writer, asyncio.ensure_future(_pipe(up_reader, writer)))
                upstream[1].write(f"{method} {local_path} {version}\r\n".encode("latin-1") + rest)
                await upstream[1].drain()
                if _is_upgrade(rest):
                    # A WebSocket client (wss://<api id>.execute-api...): after the handshake the
                    # bytes are frames, not requests, and flow both ways as they come.
                    await _pipe(reader, upstream[1])
                    return
        finally:
            # Stopped while a read was under way (the stack stopping under a kept-alive
            # connection): the read goes too, rather than fail later with nobody to hear it.
            if reading is not None:
                reading.cancel()
            if upstream is not None:
                upstream[2].cancel()
                upstream[1].close()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request: its head and a ``Content-Length`` body, as bytes."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise ConnectError(431, "The request's headers are too long.")
    length = 0
    for header in head.split(b"\r\n")[1:]:
        name, _, value = header.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            raise ConnectError(
                501, "A chunked request body is not forwarded to the local gateway; send Content-Length."
            )
        if name == b"content-length":
            if not value.strip().isdigit():
                raise ConnectError(400, "Content-Length is not a number.")
            length = int(value.strip())
    if length > MAX_BODY:
        raise ConnectError(413, "The request body is too large.")
    if len(head.split(b"\r\n", 1)[0].split(b" ")) != 3:
        raise ConnectError(400, "The request line must be 'METHOD path HTTP/1.1'.")
    body = await reader.readexactly(length) if length else b""
    return head + body


def host_header(headers: bytes) -> str:
    """The host a request's ``Host`` header names, lower-cased, without its port ("" if none)."""
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            text = value.strip().decode("latin-1").lower()
            if not text.isprintable() or " " in text:
                return ""
            if text.startswith("["):
                return text[1:].partition("]")[0]
            return text.rpartition(":")[0] if text.count(":") == 1 else text
    return ""


def _is_upgrade(headers: bytes) -> bool:
    return any(
        name.strip().lower() == b"upgrade" for name, _, _ in (line.partition(b":") for line in headers.split(b"\r\n"))
    )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()


async def _pipe_both(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter,
) -> None:
    outward = asyncio.ensure_future(_pipe(reader, up_writer))
    inward = asyncio.ensure_future(_pipe(up_reader, writer))
    try:
        await asyncio.wait([outward, inward], return_when=asyncio.FIRST_COMPLETED)
    finally:
        outward.cancel()
        inward.cancel()


async def _answer(writer: asyncio.StreamWriter, status: int, sentence: str) -> None:
    body = (sentence + "\n").encode()
    phrases = {400: "Bad Request", 405: "Method Not Allowed", 413: "Content Too Large", 421: "Misdirected Request",
               431: "Request Header Fields Too Large", 501: "Not Implemented", 502: "Bad Gateway"}
    writer.write(
        f"HTTP/1.1 {status} {phrases.get(status, '')}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii") + body
    )
    with contextlib.suppress(OSError, ConnectionError):
        await writer.drain()


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_hosts(
    stages: Sequence[tuple[str, str, str, int]], domains: Sequence[tuple[str, str, str, str]], region: str
) -> dict[str, LocalHost]:
    """The template's API hosts and where their paths go.

    Args:
        stages: ``(api logical id, api id, stage, plain port)`` of every served stage.
        domains: ``(domain name, api logical id, stage, mapping key)`` of every API mapping.
        region: the region the API ids' hosts name.
    """
    mappings: dict[str, list[ApiMapping]] = {}
    ports: dict[tuple[str, str], int] = {}
    for api, api_id, stage, port in stages:
        ports[(api, stage)] = port
        mappings.setdefault(execute_api_host(api_id, region), []).append(ApiMapping(stage, port))
    for domain, api, stage, key in domains:
        port = ports.get((api, stage))
        if port is not None:
            mappings.setdefault(domain.lower().removesuffix("."), []).append(ApiMapping(stage, port, key.strip("/")))
    return {name: LocalHost(name, tuple(found)) for name, found in mappings.items()}
