"""The gateway over real sockets: handshake, routing, replies, limits and closes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsstack.gateway import Limits
from wsstack.model import Route

AWS_ID = re.compile(r"[A-Za-z0-9_-]{15}=")
WAIT = 5.0  # seconds: the bound on every wait for something that should happen now


def run(coroutine: Any, timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=WAIT):
            pass
    return refused.value.response.status_code


async def recv_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close the socket; the close frame it sent."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    await asyncio.wait_for(ws.wait_closed(), WAIT)
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def close_without_status(ws: ClientConnection) -> None:
    """Close with an empty close frame, as some clients do (close() always sends a code)."""
    with contextlib.suppress(ConnectionClosed):
        async with ws.send_context():
            ws.protocol.send_close()
    await asyncio.wait_for(ws.wait_closed(), WAIT)


def echo(text: str) -> str:
    return json.dumps({"action": "echo", "text": text})


# ------------------------------------------------------------------------ handshake


def test_missing_token_is_401_and_the_authorizer_is_not_called(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            assert await refused_status(gateway.url) == 401
            assert await refused_status(gateway.url + "?token=") == 401
        assert lambdas.calls["AuthFn"] == []
        assert lambdas.calls["ConnectFn"] == []

    run(scenario())


def test_deny_is_403_and_connect_is_not_invoked(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            assert await refused_status(gateway.url + "?token=deny") == 403
        assert len(lambdas.calls["AuthFn"]) == 1
        assert lambdas.calls["ConnectFn"] == []

    run(scenario())


def test_authorizer_failure_is_500_and_unauthorized_is_401(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            assert await refused_status(gateway.url + "?token=crash") == 500
            assert await refused_status(gateway.url + "?token=unauthorized") == 401
        assert lambdas.calls["ConnectFn"] == []

    run(scenario())


def test_authorizer_receives_the_request_event(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann"):
            event = await lambdas.next_call("AuthFn")
        assert event["type"] == "REQUEST"
        assert event["methodArn"].endswith(f"/{gateway.stage}/$connect")
        assert event["queryStringParameters"] == {"token": "allow-ann"}
        assert event["requestContext"]["eventType"] == "CONNECT"

    run(scenario())


def test_connect_exception_is_502(lambdas, running) -> None:
    lambdas.handlers["ConnectFn"] = lambda event: 1 / 0

    async def scenario() -> None:
        async with running(lambdas) as gateway:
            assert await refused_status(gateway.url + "?token=allow-ann") == 502
            assert len(gateway.registry) == 0

    run(scenario())


def test_connect_status_code_refuses_with_that_status(lambdas, running) -> None:
    lambdas.handlers["ConnectFn"] = lambda event: {"statusCode": 401, "body": "no"}

    async def scenario() -> None:
        async with running(lambdas) as gateway:
            assert await refused_status(gateway.url + "?token=allow-ann") == 401
        # a refused connection never opened, so it never disconnects
        assert lambdas.calls["DisconnectFn"] == []

    run(scenario())


def test_path_other_than_the_stage_is_403(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            other = gateway.url.rsplit("/", 1)[0] + "/prod?token=allow-ann"
            assert await refused_status(other) == 403
        assert lambdas.calls["AuthFn"] == []

    run(scenario())


def test_connect_route_is_optional(lambdas, running, make_api) -> None:
    async def scenario() -> None:
        async with running(lambdas, make_api(connect=False)) as gateway, connect(gateway.url) as ws:
            await ws.send(echo("hi"))
            assert await recv_json(ws) == {"action": "echo", "text": "hi"}

    run(scenario())


def test_events_after_an_authorized_connect_carry_the_authorizer(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            async with connect(gateway.url + "?token=allow-ann") as ws:
                await ws.send(echo("hi"))
                await recv_json(ws)
            disconnect = await lambdas.next_call("DisconnectFn")
        connect_event = lambdas.calls["ConnectFn"][0]
        message = lambdas.calls["EchoFn"][0]

        for event in (connect_event, message, disconnect):
            authorizer = event["requestContext"]["authorizer"]
            assert authorizer["principalId"] == "ann"
            # context values arrive as strings, as on AWS
            assert (authorizer["userId"], authorizer["level"], authorizer["admin"]) == ("ann", "2", "false")
        connection_id = connect_event["requestContext"]["connectionId"]
        assert AWS_ID.fullmatch(connection_id)
        assert {e["requestContext"]["connectionId"] for e in (message, disconnect)} == {connection_id}
        assert connect_event["queryStringParameters"] == {"token": "allow-ann"}
        assert message["body"] == echo("hi") and "headers" not in message
        assert message["requestContext"]["routeKey"] == "echo"

    run(scenario())


# ------------------------------------------------------------------------- messages


def test_unmatched_frame_without_default_gets_forbidden_and_socket_stays_open(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            connection_id = (await lambdas.next_call("ConnectFn"))["requestContext"]["connectionId"]

            await ws.send(json.dumps({"action": "unknown"}))
            frame = await recv_json(ws)
            assert frame == {"message": "Forbidden", "connectionId": connection_id, "requestId": frame["requestId"]}
            assert AWS_ID.fullmatch(frame["requestId"])

            await ws.send("not json")
            assert (await recv_json(ws))["message"] == "Forbidden"

            await ws.send(echo("still open"))
            assert (await recv_json(ws))["text"] == "still open"

    run(scenario())


def test_default_route_gets_unmatched_and_non_json_frames(lambdas, running, make_api) -> None:
    async def scenario() -> None:
        api = make_api(default=True)
        async with running(lambdas, api) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(json.dumps({"action": "unknown"}))
            assert await asyncio.wait_for(ws.recv(), WAIT) == 'default:{"action": "unknown"}'
            await ws.send("plain text")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "default:plain text"
        assert [e["requestContext"]["routeKey"] for e in lambdas.calls["DefaultFn"]] == ["$default"] * 2

    run(scenario())


def test_deeply_nested_json_frames_are_answered(lambdas, running, make_api) -> None:
    # 4 KB of nesting: valid JSON deeper than Python's recursion limit. AWS routes it.
    deep_array = "[" * 2000 + "]" * 2000
    deep_echo = '{"action": "echo", "text": "deep", "d": ' + "[" * 3000 + "]" * 3000 + "}"

    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(deep_array)
            assert (await recv_json(ws))["message"] == "Forbidden"
            await ws.send(deep_echo)
            assert await asyncio.wait_for(ws.recv(), WAIT) == deep_echo  # the echo route's reply
        async with running(lambdas, make_api(default=True)) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(deep_array)
            assert await asyncio.wait_for(ws.recv(), WAIT) == "default:" + deep_array

    run(scenario())


def test_a_failure_inside_the_gateway_is_answered_with_internal_server_error(lambdas, running, monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("gateway bug")

    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            connection_id = (await lambdas.next_call("ConnectFn"))["requestContext"]["connectionId"]
            monkeypatch.setattr("wsstack.gateway.server.build_message_event", broken)
            await ws.send(echo("lost?"))
            frame = await recv_json(ws)
            assert frame == {"message": "Internal server error", "connectionId": connection_id,
                             "requestId": frame["requestId"]}
            assert AWS_ID.fullmatch(frame["requestId"])
            monkeypatch.undo()
            await ws.send(echo("still open"))
            assert (await recv_json(ws))["text"] == "still open"

    run(scenario())


def test_function_error_sends_internal_server_error_and_socket_stays_open(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(json.dumps({"action": "boom"}))
            frame = await recv_json(ws)
            event = lambdas.calls["BoomFn"][0]
            assert frame == {
                "message": "Internal server error",
                "connectionId": event["requestContext"]["connectionId"],
                "requestId": event["requestContext"]["requestId"],
            }
            assert "kaboom" not in json.dumps(frame)  # never the function's error to the client

            await ws.send(echo("after"))
            assert (await recv_json(ws))["text"] == "after"

    run(scenario())


def test_two_way_route_returns_the_body_and_one_way_does_not(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(json.dumps({"action": "notify"}))
            await lambdas.next_call("NotifyFn")
            await ws.send(echo("two-way"))
            # had the one-way route replied, its frame would come first
            assert await recv_json(ws) == {"action": "echo", "text": "two-way"}

    run(scenario())


def test_messages_are_handled_concurrently(lambdas, running) -> None:
    second_arrived = asyncio.Event()

    async def slow_until_second(event: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(event["body"])
        if body["text"] == "first":
            await asyncio.wait_for(second_arrived.wait(), WAIT)
        else:
            second_arrived.set()
        return {"statusCode": 200, "body": body["text"]}

    lambdas.handlers["EchoFn"] = slow_until_second

    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(echo("first"))
            await ws.send(echo("second"))
            replies = [await asyncio.wait_for(ws.recv(), WAIT) for _ in range(2)]
            # the first invocation waited for the second: only possible when concurrent
            assert replies == ["second", "first"]

    run(scenario())


def test_integration_timeout_sends_endpoint_request_timed_out(lambdas, running) -> None:
    release = asyncio.Event()

    async def hangs(event: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"statusCode": 200, "body": "too late"}

    lambdas.handlers["EchoFn"] = hangs

    async def scenario() -> None:
        limits = Limits(integration_timeout=0.2)
        async with running(lambdas, limits=limits) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(echo("slow"))
            frame = await recv_json(ws)
            assert frame["message"] == "Endpoint request timed out"
            assert set(frame) == {"message", "connectionId", "requestId"}
            release.set()
            await ws.send(json.dumps({"action": "nope"}))
            # the late result is dropped: the next frame is the Forbidden answer
            assert (await recv_json(ws))["message"] == "Forbidden"

    run(scenario())


def test_a_routes_own_integration_timeout_applies_when_shorter(lambdas, running, make_api) -> None:
    # TimeoutInMillis on the route's integration, below the stage's 29 s.
    release = asyncio.Event()

    async def hangs(event: dict[str, Any]) -> dict[str, Any]:
        await release.wait()
        return {"statusCode": 200, "body": "too late"}

    lambdas.handlers["EchoFn"] = hangs
    api = make_api()
    api.routes["echo"] = Route("echo", "EchoFn", two_way=True, timeout=0.2)

    async def scenario() -> dict[str, Any]:
        async with running(lambdas, api=api) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(echo("slow"))
            frame = await recv_json(ws)
            release.set()
            return frame

    assert run(scenario())["message"] == "Endpoint request timed out"


def test_an_aws_iam_connect_refuses_an_unsigned_upgrade_with_403(lambdas, running, make_api) -> None:
    api = make_api()
    api.routes["$connect"] = Route("$connect", "ConnectFn", authorization_type="AWS_IAM")
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/execute-api/aws4_request, "
                               "SignedHeaders=host;x-amz-date, Signature=abc"}

    async def scenario() -> tuple[int, int]:
        async with running(lambdas, api=api) as gateway:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(gateway.url):
                    pass
            async with connect(gateway.url, additional_headers=signed):
                pass
            async with connect(gateway.url + "?X-Amz-Signature=abc&X-Amz-Credential=AKID"):
                pass
            return refused.value.response.status_code, len(lambdas.calls["ConnectFn"])

    status, connects = run(scenario())

    assert status == 403
    assert connects == 2  # only the signed upgrades reached $connect


# -------------------------------------------------------------------- limits, closes


def test_binary_frame_closes_1003(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await ws.send(b"\x00\x01binary")
            assert (await closed_with(ws))[0] == 1003
            disconnect = await lambdas.next_call("DisconnectFn")
            assert disconnect["requestContext"]["disconnectStatusCode"] == 1003
        assert lambdas.calls["EchoFn"] == []

    run(scenario())


def test_message_over_the_message_limit_closes_1009(lambdas, running) -> None:
    limits = Limits(max_frame_bytes=1024, max_message_bytes=4096)

    async def scenario() -> None:
        async with running(lambdas, limits=limits) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            # five 1 KB fragments: every frame is within the frame limit, the message is not
            with contextlib.suppress(ConnectionClosed):
                await ws.send(["x" * 1000 for _ in range(5)])
            assert (await closed_with(ws))[0] == 1009
            disconnect = await lambdas.next_call("DisconnectFn")
            assert disconnect["requestContext"]["disconnectStatusCode"] == 1009

    run(scenario())


def test_fragmented_message_within_limits_is_reassembled(lambdas, running) -> None:
    limits = Limits(max_frame_bytes=1024, max_message_bytes=4096)
    text = "y" * 2500

    async def scenario() -> None:
        async with running(lambdas, limits=limits) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            message = echo(text)
            await ws.send([message[i : i + 1000] for i in range(0, len(message), 1000)])
            assert (await recv_json(ws))["text"] == text

    run(scenario())


def test_frame_over_the_frame_limit_closes_1009(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            # one 40 KB frame: under the 128 KB message limit, over the 32 KB frame limit
            with contextlib.suppress(ConnectionClosed):
                await ws.send(echo("z" * 40 * 1024))
            assert (await closed_with(ws))[0] == 1009
        assert lambdas.calls["EchoFn"] == []

    run(scenario())


def test_idle_timeout_closes_1001_going_away(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas, limits=Limits(idle_timeout=0.3)) as gateway:
            async with connect(gateway.url + "?token=allow-ann") as ws:
                assert await closed_with(ws) == (1001, "Going away")
            disconnect = await lambdas.next_call("DisconnectFn")
        context = disconnect["requestContext"]
        assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "Going away")

    run(scenario())


def test_client_messages_postpone_the_idle_timeout(lambdas, running) -> None:
    async def scenario() -> None:
        limits = Limits(idle_timeout=0.6)
        async with running(lambdas, limits=limits) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            # active for twice the idle timeout: the connection must stay open
            for _ in range(8):
                await ws.send(json.dumps({"action": "notify"}))
                await asyncio.sleep(0.15)
            await ws.send(echo("alive"))
            assert (await recv_json(ws))["text"] == "alive"
            assert await closed_with(ws) == (1001, "Going away")

    run(scenario())


def test_max_connection_duration_closes_1001_even_when_active(lambdas, running) -> None:
    async def scenario() -> None:
        limits = Limits(max_connection_duration=0.5)
        async with running(lambdas, limits=limits) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            with contextlib.suppress(ConnectionClosed):
                for _ in range(100):
                    await ws.send(json.dumps({"action": "notify"}))
                    await asyncio.sleep(0.05)
            assert (await closed_with(ws))[0] == 1001

    run(scenario())


def test_client_close_code_and_reason_reach_disconnect(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            async with connect(gateway.url + "?token=allow-ann") as ws:
                await ws.close(4000, "bye")
            with_code = await lambdas.next_call("DisconnectFn")

            ws = await connect(gateway.url + "?token=allow-ann")
            await close_without_status(ws)
            without_code = await lambdas.next_call("DisconnectFn")

        assert with_code["requestContext"]["disconnectStatusCode"] == 4000
        assert with_code["requestContext"]["disconnectReason"] == "bye"
        assert without_code["requestContext"]["disconnectStatusCode"] == 1005
        assert without_code["requestContext"]["disconnectReason"] == "Client-side close frame status not set"

    run(scenario())


def test_stop_closes_sockets_1001_and_runs_disconnect_for_each(lambdas, running) -> None:
    async def scenario() -> None:
        async with running(lambdas) as gateway:
            sockets = [await connect(gateway.url + f"?token=allow-u{i}") for i in range(3)]
            await gateway.stop()
            await gateway.stop()  # idempotent
            codes = [(await closed_with(ws))[0] for ws in sockets]
        assert codes == [1001] * 3
        assert sorted(e["requestContext"]["authorizer"]["principalId"] for e in lambdas.calls["DisconnectFn"]) == [
            "u0",
            "u1",
            "u2",
        ]
        assert all(e["requestContext"]["disconnectStatusCode"] == 1001 for e in lambdas.calls["DisconnectFn"])

    run(scenario())
