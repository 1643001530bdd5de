"""An AWS::Serverless::WebSocketApi app, run whole: template → translator → gateway → workers.

The fixture (tests/fixtures/sam_websocket_api) declares its API the SAM way: routes with
FunctionArn, Auth with a REQUEST authorizer, a stage from a parameter. Everything here goes
through real sockets, real awslambdaric workers and the moto emulator.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

WAIT = 10.0  # seconds: the bound on every wait for something that should happen now
AWS_ID = re.compile(r"[A-Za-z0-9_-]{15}=")


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def recv_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def send(ws: ClientConnection, action: str, **fields: Any) -> None:
    await ws.send(json.dumps({"action": action, **fields}))


async def refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=WAIT):
            pass
    return refused.value.response.status_code


def test_the_sam_auth_block_guards_connect_and_its_context_reaches_later_events(sam_app):
    url = sam_app.url("NotesApi")

    async def scenario() -> tuple[list[int], Any]:
        statuses = [
            await refused_status(url),  # no token: 401 before any authorizer runs
            await refused_status(url + "?token=stranger"),  # Deny: 403
            await refused_status(url + "?token=crash"),  # the authorizer raised
        ]
        async with connect(url + "?token=user-ann", open_timeout=WAIT) as ws:
            await send(ws, "echo", text="hi")
            return statuses, await recv_json(ws)

    statuses, reply = run(scenario())

    assert statuses == [401, 403, 500]
    # The SAM `echo` route is two-way through the template's RouteResponse on NotesApiEchoRoute.
    assert reply["version"] == "v1"
    assert reply["body"] == {"action": "echo", "text": "hi"}
    authorizer = reply["authorizer"]
    assert authorizer["principalId"] == "user-ann"
    # Context values arrive as strings, as API Gateway passes them.
    assert (authorizer["user"], authorizer["tier"], authorizer["beta"]) == ("ann", "3", "true")


def test_unrouted_action_gets_the_forbidden_frame_and_a_failing_route_internal_server_error(sam_app):
    async def scenario() -> tuple[Any, Any, Any]:
        async with connect(sam_app.url("NotesApi") + "?token=user-bo", open_timeout=WAIT) as ws:
            await send(ws, "echo")
            connection_id = (await recv_json(ws))["connectionId"]
            await send(ws, "nope")  # no such route and no $default
            forbidden = await recv_json(ws)
            await send(ws, "boom")  # the Lambda raises
            failed = await recv_json(ws)
            await send(ws, "echo", after="boom")  # the connection stayed open
            return connection_id, (forbidden, failed), await recv_json(ws)

    connection_id, (forbidden, failed), after = run(scenario())

    assert forbidden.keys() == failed.keys() == {"message", "connectionId", "requestId"}
    assert forbidden["message"] == "Forbidden"
    assert failed["message"] == "Internal server error"
    assert forbidden["connectionId"] == failed["connectionId"] == connection_id
    assert AWS_ID.fullmatch(forbidden["requestId"]) and forbidden["requestId"] != failed["requestId"]
    assert after["body"] == {"action": "echo", "after": "boom"}


def test_subprotocol_is_returned_only_when_connect_chooses_one(sam_app):
    url = sam_app.url("NotesApi") + "?token=user-cy"

    async def scenario() -> tuple[Any, Any]:
        async with connect(url, subprotocols=["other", "notes.v1"], open_timeout=WAIT) as chosen:
            first = (chosen.subprotocol, chosen.response.headers.get("Sec-WebSocket-Protocol"))
        async with connect(url, subprotocols=["other"], open_timeout=WAIT) as unchosen:
            second = (unchosen.subprotocol, unchosen.response.headers.get("Sec-WebSocket-Protocol"))
        return first, second

    chosen, unchosen = run(scenario())

    assert chosen == ("notes.v1", "notes.v1")
    # API Gateway never picks one itself: without the $connect Lambda's header, there is none.
    assert unchosen == (None, None)


def test_function_environment_resolves_ref_getatt_and_sub_to_local_values(sam_app):
    async def scenario() -> Any:
        async with connect(sam_app.url("NotesApi") + "?token=user-di", open_timeout=WAIT) as ws:
            await send(ws, "env")
            return await recv_json(ws)

    env = run(scenario())

    table = sam_app.info.resources["NotesTable"]
    api = sam_app.info.apis[0]
    assert env["TABLE_NAME"] == table
    assert env["TABLE_ARN"] == f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
    # The stream ARN is the one the emulator gave the table it created.
    assert env["TABLE_STREAM_ARN"].startswith(f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/")
    assert env["API_ID"] == api.api_id
    assert env["API_ENDPOINT"] == api.websocket_url.rsplit("/", 1)[0]  # ws://host:port, no stage
    assert env["STAGE"] == api.stage == "test"
    assert env["BOOM_ARN"] == "arn:aws:lambda:us-east-1:123456789012:function:BoomFunction"
    assert env["TABLE_IN_REGION"] == f"{table}@us-east-1"


def test_a_lambda_pushes_through_connections_with_an_unchanged_boto3_client(sam_app):
    # PushFunction builds its endpoint as on AWS (https://<api>.execute-api.<region>...) and
    # calls get_connection and post_to_connection; `push` is one-way, so only the post arrives.
    async def scenario() -> tuple[Any, Any]:
        async with connect(sam_app.url("NotesApi") + "?token=user-ed", open_timeout=WAIT) as ws:
            await send(ws, "push")
            pushed = await recv_json(ws)
            await send(ws, "echo", marker=1)
            return pushed, await recv_json(ws)

    pushed, next_frame = run(scenario())

    assert pushed == {"pushed": True, "sourceIp": "127.0.0.1"}
    assert next_frame["body"] == {"action": "echo", "marker": 1}  # no reply from the one-way push


def test_an_endpoint_built_from_the_events_domain_name_reaches_the_gateway_over_tls(sam_app):
    # ReplyFunction builds https://{domainName}/{stage} from the event, as AWS's guides do,
    # with no endpoint in its environment: the stage's TLS port answers it, and the worker
    # trusts the stack's certificate through AWS_CA_BUNDLE.
    served = sam_app.info.apis[0]
    tls = ssl.create_default_context(cafile=sam_app.info.ca_bundle)

    async def scenario() -> tuple[Any, Any]:
        async with connect(served.websocket_url + "?token=user-ed", open_timeout=WAIT) as ws:
            await send(ws, "reply")
            replied = await recv_json(ws)
        # The same stage over TLS, as a client trusting the certificate sees it.
        async with connect(served.secure_websocket_url + "?token=user-ed", ssl=tls, open_timeout=WAIT) as wss:
            await send(wss, "echo", over="tls")
            return replied, await recv_json(wss)

    replied, echoed = run(scenario())

    domain_name = served.secure_websocket_url.removeprefix("wss://").split("/", 1)[0]
    assert replied == {"replied": True, "endpoint": f"https://{domain_name}/{served.stage}"}
    assert echoed["body"] == {"action": "echo", "over": "tls"}
    assert echoed["authorizer"]["principalId"] == "user-ed"


def test_template_timeout_kills_the_invocation_and_reserved_concurrency_bounds_the_pool(sam_app):
    # SlowFunction: Timeout 1, ReservedConcurrentExecutions 1.
    runtime = sam_app.stack.runtime

    async def concurrently() -> list[Any]:
        return await asyncio.gather(*(runtime.invoke("SlowFunction", {"seconds": 0.2}) for _ in range(3)))

    timed_out = sam_app.call(runtime.invoke("SlowFunction", {"seconds": 5}))
    results = sam_app.call(concurrently())

    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert timed_out.error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert all(r.ok for r in results), [r.error for r in results]
    # One worker served all three in turn: the killed one was replaced by a single cold start.
    assert len({r.payload for r in results}) == 1
    assert [r.cold_start for r in results].count(True) == 1


def test_a_timed_out_message_route_answers_internal_server_error(sam_app):
    async def scenario() -> Any:
        async with connect(sam_app.url("NotesApi") + "?token=user-fa", open_timeout=WAIT) as ws:
            await send(ws, "slow", seconds=3)
            return await recv_json(ws)

    frame = run(scenario())

    assert frame["message"] == "Internal server error"
