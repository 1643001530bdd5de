"""The egress proxy over real sockets: tunnels, the developer's proxy, TLS to a local stage,
and what a client is told when the proxy refuses."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from wsstack.egress import EgressProxy, EgressRoutes, local_hosts
from wsstack.testing import BOUND
from wsstack.tls import LocalCertificate

API_HOST = "abc1234567.execute-api.us-east-1.amazonaws.com"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _server(handler: Handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _connect(proxy: EgressProxy, target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    port = int(proxy.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    return reader, writer, answer


def test_a_host_outside_the_template_is_tunnelled_where_it_points():
    async def scenario() -> bytes:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"echo:" + await reader.readexactly(5))
            await writer.drain()
            writer.close()

        server, port = await _server(echo)
        proxy = EgressProxy(EgressRoutes(), None)
        await proxy.start()
        try:
            reader, writer, answer = await _connect(proxy, f"127.0.0.1:{port}")
            assert answer.startswith(b"HTTP/1.1 200 ")
            writer.write(b"hello")
            data = await asyncio.wait_for(reader.read(), BOUND)
            writer.close()
            return data
        finally:
            await proxy.stop()
            server.close()

    assert asyncio.run(scenario()) == b"echo:hello"


def test_with_a_developers_proxy_other_hosts_go_through_it_with_its_credentials():
    async def scenario() -> bytes:
        seen: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def corporate_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.set_result(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server, port = await _server(corporate_proxy)
        routes = EgressRoutes.from_environment({}, {"HTTPS_PROXY": f"http://dev:pw@127.0.0.1:{port}"})
        proxy = EgressProxy(routes, None)
        await proxy.start()
        try:
            _, writer, answer = await _connect(proxy, "example.com:443")
            writer.close()
            assert answer.startswith(b"HTTP/1.1 407 ")  # the developer's proxy answers the worker
            return await asyncio.wait_for(seen, BOUND)
        finally:
            await proxy.stop()
            server.close()

    head = asyncio.run(scenario())
    assert head.startswith(b"CONNECT example.com:443 HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic ZGV2OnB3\r\n" in head


def test_a_template_api_host_is_answered_over_tls_and_reaches_the_stage_its_path_names(tmp_path: Path):
    certificate = LocalCertificate.create(tmp_path, [API_HOST])

    async def scenario() -> list[bytes]:
        requests: list[bytes] = []

        def stage(name: bytes) -> Handler:
            async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                while True:
                    try:
                        head = await reader.readuntil(b"\r\n\r\n")
                    except asyncio.IncompleteReadError:
                        break
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    requests.append(head.split(b"\r\n")[0] + b" " + await reader.readexactly(length))
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name))
                    await writer.drain()
                writer.close()
            return answer

        dev, dev_port = await _server(stage(b"dev"))
        prod, prod_port = await _server(stage(b"prod"))
        hosts = local_hosts([("Api", "abc1234567", "dev", dev_port), ("Api", "abc1234567", "prod", prod_port)],
                            [], "us-east-1")
        proxy = EgressProxy(EgressRoutes(hosts), certificate.server_context())
        await proxy.start()
        answers = []
        try:
            reader, writer, answer = await _connect(proxy, f"{API_HOST}:443")
            assert answer.startswith(b"HTTP/1.1 200 ")
            await writer.start_tls(certificate.client_context(), server_hostname=API_HOST)
            # One connection, two stages in turn, as a client with one pool per host sends them.
            for path in ("/dev/@connections/a", "/prod/@connections/b", "/dev/@connections/c"):
                writer.write(f"POST {path} HTTP/1.1\r\nHost: {API_HOST}\r\nContent-Length: 2\r\n\r\nhi".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                answers.append(await reader.readexactly(length))
            writer.close()
        finally:
            await proxy.stop()
            dev.close()
            prod.close()
        assert answers == [b"dev", b"prod", b"dev"]
        return requests

    assert asyncio.run(scenario()) == [
        b"POST /dev/@connections/a HTTP/1.1 hi", b"POST /prod/@connections/b HTTP/1.1 hi",
        b"POST /dev/@connections/c HTTP/1.1 hi",
    ]


def test_refusals_are_answered_with_a_status_and_a_sentence():
    async def scenario() -> list[bytes]:
        proxy = EgressProxy(EgressRoutes(), None)
        await proxy.start()
        answers = []
        try:
            port = int(proxy.url.rsplit(":", 1)[1])
            for request in (b"GET http://example.com/ HTTP/1.1\r\n\r\n", b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                answers.append(await asyncio.wait_for(reader.read(), BOUND))
                writer.close()
        finally:
            await proxy.stop()
        return answers

    not_connect, unreachable = asyncio.run(scenario())
    assert not_connect.startswith(b"HTTP/1.1 405 ") and not_connect.endswith(b"not 'GET'.\n")
    assert unreachable.startswith(b"HTTP/1.1 502 ") and b"127.0.0.1:1 could not be reached" in unreachable


def test_the_direct_entrance_serves_the_host_each_request_names_and_refuses_others(tmp_path: Path):
    # The entrance for Node, which ignores HTTPS_PROXY: TLS at once, no CONNECT.
    certificate = LocalCertificate.create(tmp_path, [API_HOST])

    async def scenario() -> tuple[bytes, bytes]:
        async def stage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n")[0]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(line), line))
            await writer.drain()
            writer.close()

        dev, dev_port = await _server(stage)
        proxy = EgressProxy(EgressRoutes(local_hosts([("Api", "abc1234567", "dev", dev_port)], [], "us-east-1")),
                            certificate.server_context())
        await proxy.start()
        try:
            host, port = proxy.direct_address.rsplit(":", 1)
            answers = []
            for named in (f"{API_HOST.upper()}:443", "example.com"):
                reader, writer = await asyncio.open_connection(
                    host, int(port), ssl=certificate.client_context(), server_hostname=API_HOST)
                writer.write(f"GET /dev/@connections/a HTTP/1.1\r\nHost: {named}\r\n\r\n".encode())
                answers.append(await asyncio.wait_for(reader.read(), BOUND))
                writer.close()
            return answers[0], answers[1]
        finally:
            await proxy.stop()
            dev.close()

    served, refused = asyncio.run(scenario())
    assert served.endswith(b"GET /dev/@connections/a HTTP/1.1")
    assert refused.startswith(b"HTTP/1.1 421 ")
    assert refused.endswith(b"example.com is not one of the template's API hosts.\n")


def test_stopping_with_a_kept_alive_connection_leaves_no_unfinished_work_behind(tmp_path: Path, caplog):
    # A Node worker's SDK keeps its connection to the direct entrance open between requests;
    # the stack stopping then must not leave a read of that connection to fail unheard.
    certificate = LocalCertificate.create(tmp_path, [API_HOST])

    async def scenario() -> None:
        proxy = EgressProxy(EgressRoutes(local_hosts([("Api", "abc1234567", "dev", 9)], [], "us-east-1")),
                            certificate.server_context())
        await proxy.start()
        host, port = proxy.direct_address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(
            host, int(port), ssl=certificate.client_context(), server_hostname=API_HOST)

        async def reading() -> None:
            # Until the entrance waits for the connection's next request (a task of its own
            # beside the connection's and this test's).
            while len(asyncio.all_tasks()) < 4:
                await asyncio.sleep(0)

        await asyncio.wait_for(reading(), BOUND)
        await proxy.stop()
        writer.close()
        await asyncio.wait_for(reader.read(), BOUND)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(scenario())
        gc.collect()  # a task dropped with an exception nobody retrieved is reported now

    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []
