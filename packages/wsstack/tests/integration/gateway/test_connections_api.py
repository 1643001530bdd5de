"""The @connections API, driven by boto3's real apigatewaymanagementapi client."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wsstack.gateway import Gateway
from wsstack.tls import LocalCertificate

WAIT = 5.0
UNKNOWN_ID = "AAAAAAAAAAAAAAA="
STAGE = "dev"


def run(coroutine: Any, timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def management_client(endpoint_url: str) -> Any:
    # Dummy credentials: the local API accepts any SigV4 signature, as boto3 always signs.
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


async def call(client: Any, operation: str, **kwargs: Any) -> Any:
    """Run a blocking boto3 call off the event loop the gateway runs on."""
    return await asyncio.wait_for(asyncio.to_thread(getattr(client, operation), **kwargs), WAIT)


async def client_error(client: Any, operation: str, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as raised:
        await call(client, operation, **kwargs)
    return raised.value


async def connection_id_of(lambdas: Any) -> str:
    event = await lambdas.next_call("ConnectFn")
    return str(event["requestContext"]["connectionId"])


async def close_code(ws: ClientConnection) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    return ws.close_code


def test_post_delivers_a_text_frame(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            client = management_client(gateway.management_url)
            connection_id = await connection_id_of(lambdas)

            response = await call(client, "post_to_connection", ConnectionId=connection_id, Data=b'{"type":"ack"}')

            assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
            assert await asyncio.wait_for(ws.recv(), WAIT) == '{"type":"ack"}'

    run(scenario())


def test_get_describes_the_connection(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            client = management_client(gateway.management_url)
            connection_id = await connection_id_of(lambdas)
            await ws.send(json.dumps({"action": "echo"}))
            await asyncio.wait_for(ws.recv(), WAIT)

            info = await call(client, "get_connection", ConnectionId=connection_id)

            assert isinstance(info["ConnectedAt"], datetime) and isinstance(info["LastActiveAt"], datetime)
            assert info["LastActiveAt"] >= info["ConnectedAt"]
            assert info["Identity"]["SourceIp"] == "127.0.0.1"
            assert info["Identity"]["UserAgent"].startswith("Python/")

    run(scenario())


def test_delete_closes_the_socket_and_runs_disconnect(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            client = management_client(gateway.management_url)
            connection_id = await connection_id_of(lambdas)

            response = await call(client, "delete_connection", ConnectionId=connection_id)

            assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
            assert await close_code(ws) == 1000
            disconnect = await lambdas.next_call("DisconnectFn")
            assert disconnect["requestContext"]["connectionId"] == connection_id
            assert disconnect["requestContext"]["disconnectStatusCode"] == 1000
            # the id is gone for good
            error = await client_error(client, "post_to_connection", ConnectionId=connection_id, Data=b"x")
            assert error.response["Error"]["Code"] == "GoneException"

    run(scenario())


@pytest.mark.parametrize(
    ("operation", "kwargs"),
    [
        ("post_to_connection", {"Data": b"hello"}),
        ("get_connection", {}),
        ("delete_connection", {}),
    ],
)
def test_unknown_connection_is_gone_exception_410(lambdas, running, operation: str, kwargs: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            client = management_client(gateway.management_url)
            error = await client_error(client, operation, ConnectionId=UNKNOWN_ID, **kwargs)
        assert error.response["Error"]["Code"] == "GoneException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 410

    run(scenario())


def test_post_after_the_client_left_is_gone(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            client = management_client(gateway.management_url)
            async with connect(gateway.url + "?token=allow-ann"):
                connection_id = await connection_id_of(lambdas)
            await lambdas.next_call("DisconnectFn")
            error = await client_error(client, "post_to_connection", ConnectionId=connection_id, Data=b"late")
        assert error.response["Error"]["Code"] == "GoneException"

    run(scenario())


def test_posting_from_inside_connect_is_gone(lambdas, running) -> None:
    seen: dict[str, Any] = {}

    async def connect_handler(event: dict[str, Any]) -> dict[str, Any]:
        client = management_client(seen["endpoint"])
        try:
            await call(client, "post_to_connection", ConnectionId=event["requestContext"]["connectionId"], Data=b"hi")
        except ClientError as exc:
            seen["error"] = exc.response
        return {"statusCode": 200}

    lambdas.handlers["ConnectFn"] = connect_handler

    async def scenario() -> None:
        async with running(lambdas) as gateway:
            seen["endpoint"] = gateway.management_url
            async with connect(gateway.url + "?token=allow-ann") as ws:
                await ws.send(json.dumps({"action": "echo"}))
                # the connection works once $connect has returned
                assert json.loads(await asyncio.wait_for(ws.recv(), WAIT)) == {"action": "echo"}
        assert seen["error"]["Error"]["Code"] == "GoneException"
        assert seen["error"]["ResponseMetadata"]["HTTPStatusCode"] == 410

    run(scenario())


def test_post_over_128_kb_is_payload_too_large(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann"):
            client = management_client(gateway.management_url)
            connection_id = await connection_id_of(lambdas)
            error = await client_error(
                client, "post_to_connection", ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1)
            )
            assert error.response["Error"]["Code"] == "PayloadTooLargeException"
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 413
            # exactly the limit is fine
            ok = await call(client, "post_to_connection", ConnectionId=connection_id, Data=b"x" * (128 * 1024))
            assert ok["ResponseMetadata"]["HTTPStatusCode"] == 200

    run(scenario())


def raw_post(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_gone_response_has_the_aws_shape(lambdas, running) -> None:
    async def scenario() -> tuple[int, dict[str, str], bytes]:
        async with running(lambdas) as gateway:
            url = f"{gateway.management_url}/@connections/{UNKNOWN_ID}"
            return await asyncio.to_thread(raw_post, url, b"x")

    status, headers, body = run(scenario())

    assert status == 410
    assert headers["x-amzn-ErrorType"] == "GoneException"
    assert json.loads(body) == {"message": None}


def post_with_host(url: str, host: str, data: bytes) -> int:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT)
    try:
        connection.request("POST", parts.path, body=data, headers={"Host": host})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_post_under_an_execute_api_host_reaches_the_connection(lambdas, running) -> None:
    # What a client resolving https://{api-id}.execute-api.{region}.amazonaws.com/{stage} to
    # the local gateway sends: the AWS host name in Host, the stage in the path.
    host = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"

    async def scenario() -> tuple[int, int, str]:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            connection_id = await connection_id_of(lambdas)
            base = f"{gateway.management_url}/@connections/"
            delivered = await asyncio.to_thread(
                post_with_host, base + urllib.parse.quote(connection_id), host, b"via execute-api host"
            )
            gone = await asyncio.to_thread(post_with_host, base + UNKNOWN_ID, host, b"x")
            return delivered, gone, await asyncio.wait_for(ws.recv(), WAIT)

    delivered, gone, received = run(scenario())

    assert (delivered, gone) == (200, 410)
    assert received == "via execute-api host"


def test_websocket_clients_and_connections_calls_share_the_stage_port(lambdas, running) -> None:
    # As on AWS, where wss://{domainName}/{stage} and https://{domainName}/{stage}/@connections
    # are one host: the WebSocket URL and the management URL differ only in scheme.
    async def scenario() -> tuple[str, str, str]:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            connection_id = await connection_id_of(lambdas)
            client = management_client(gateway.management_url)
            await call(client, "post_to_connection", ConnectionId=connection_id, Data=b"same port")
            return gateway.url, gateway.management_url, await asyncio.wait_for(ws.recv(), WAIT)

    ws_url, management_url, received = run(scenario())

    assert ws_url.removeprefix("ws://") == management_url.removeprefix("http://")
    assert received == "same port"


def test_other_stage_path_is_forbidden(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            other = gateway.management_url.rsplit("/", 1)[0] + "/prod"
            client = management_client(other)
            error = await client_error(client, "post_to_connection", ConnectionId=UNKNOWN_ID, Data=b"x")
        assert error.response["Error"]["Code"] == "ForbiddenException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    run(scenario())


def test_with_tls_the_secure_port_is_the_domain_name_and_serves_both_over_tls(lambdas, make_api, tmp_path) -> None:
    certificate = LocalCertificate.create(tmp_path, ["127.0.0.1"])
    gateway = Gateway(make_api(), STAGE, lambdas, tls=certificate.server_context())

    async def scenario() -> tuple[dict[str, Any], str]:
        await gateway.start()
        try:
            async with connect(gateway.secure_url + "?token=allow-ann", ssl=certificate.client_context()) as ws:
                event = await lambdas.next_call("ConnectFn")
                domain = event["requestContext"]["domainName"]
                client = boto3.client(
                    "apigatewaymanagementapi", endpoint_url=f"https://{domain}/{STAGE}", region_name="us-east-1",
                    aws_access_key_id="testing", aws_secret_access_key="testing", verify=str(certificate.cert_path),
                )
                connection_id = event["requestContext"]["connectionId"]
                await call(client, "post_to_connection", ConnectionId=connection_id, Data=b"over tls")
                return event, await asyncio.wait_for(ws.recv(), WAIT)
        finally:
            await gateway.stop()

    event, received = run(scenario())

    assert gateway.secure_url == f"wss://{event['requestContext']['domainName']}/{STAGE}"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert received == "over tls"


def test_stop_closes_kept_alive_connections_calls_and_silent_connections(lambdas, running) -> None:
    # boto3 keeps its connection to @connections open between calls; a client may connect and
    # say nothing. Stopping must close both (from Python 3.12 the listening server waits for
    # every open connection, so one left open would hang Ctrl-C).
    async def scenario() -> tuple[bytes, bytes, bytes]:
        async with running(lambdas) as gateway:
            host, port = gateway.url.removeprefix("ws://").split("/", 1)[0].split(":")
            kept, kept_writer = await asyncio.open_connection(host, int(port))
            kept_writer.write(f"GET /{STAGE}/@connections/{UNKNOWN_ID} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(kept.readuntil(b"\r\n\r\n"), WAIT)
            lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            await asyncio.wait_for(kept.readexactly(int(lengths[0].split(b":")[1])), WAIT)
            silent, _ = await asyncio.open_connection(host, int(port))
        # stopped: both see the end of the stream at once
        rests = [await asyncio.wait_for(reader.read(), WAIT) for reader in (kept, silent)]
        return head.split(b"\r\n", 1)[0], *rests

    status_line, kept_rest, silent_rest = run(scenario())

    assert status_line == b"HTTP/1.1 410 Gone"
    assert (kept_rest, silent_rest) == (b"", b"")


def unsigned(method: str, url: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_bound_beyond_loopback_unsigned_requests_are_refused_as_on_aws(lambdas, make_api) -> None:
    # Bound to every interface (reached here through 127.0.0.1): @connections is reachable from
    # other machines, so it wants SigV4 as AWS does. boto3 always signs, so Lambdas still post.
    async def scenario() -> None:
        gateway = Gateway(make_api(), STAGE, lambdas, host="0.0.0.0")
        await gateway.start()
        try:
            assert gateway.management_url.startswith("http://127.0.0.1:")
            async with connect(gateway.url + "?token=allow-ann") as ws:
                connection_id = await connection_id_of(lambdas)
                url = f"{gateway.management_url}/@connections/{urllib.parse.quote(connection_id)}"
                for method, data in (("POST", b"unsigned"), ("GET", None), ("DELETE", None)):
                    status, headers, body = await asyncio.to_thread(unsigned, method, url, data)
                    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"}), method
                    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

                client = management_client(gateway.management_url)
                await call(client, "post_to_connection", ConnectionId=connection_id, Data=b"signed")
                assert await asyncio.wait_for(ws.recv(), WAIT) == "signed"  # the unsigned post never arrived
                described = await call(client, "get_connection", ConnectionId=connection_id)
                assert described["Identity"]["SourceIp"] == "127.0.0.1"
                await call(client, "delete_connection", ConnectionId=connection_id)
                assert await close_code(ws) == 1000
        finally:
            await gateway.stop()

    run(scenario())


def test_on_loopback_unsigned_requests_are_accepted(lambdas, running) -> None:
    async def scenario() -> tuple[int, str]:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            connection_id = await connection_id_of(lambdas)
            url = f"{gateway.management_url}/@connections/{urllib.parse.quote(connection_id)}"
            status, _, _ = await asyncio.to_thread(unsigned, "POST", url, b"curl-style")
            return status, await asyncio.wait_for(ws.recv(), WAIT)

    assert run(scenario()) == (200, "curl-style")
