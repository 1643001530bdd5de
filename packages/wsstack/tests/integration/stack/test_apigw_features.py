"""API Gateway features beyond routes, from a template, through a whole local stack.

The fixture (tests/fixtures/apigw_features) has one WebSocket API whose $connect requires an
API key (three keys in a usage plan of its stage, one disabled, and one key in no plan), a
stage with variables and route throttling (``burst``: 2 messages, then one per 100 s), and a
``note`` route that validates bodies against a draft-4 model.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsstack.template import load_app

WAIT = 10.0
DEVELOPER_KEY = "fixture-developer-key-0123456789"


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def url(stack: Any) -> str:
    return stack.url("FeaturesApi") + "?client=tests"


async def refused_status(target: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(target, open_timeout=WAIT, **options):
            pass
    return refused.value.response.status_code


async def ask(ws: Any, message: dict[str, Any]) -> Any:
    await ws.send(json.dumps(message))
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


def test_connect_needs_an_enabled_api_key_of_the_stages_usage_plan(features):
    async def scenario() -> list[int]:
        return [
            await refused_status(url(features)),
            await refused_status(url(features), additional_headers={"x-api-key": "not-a-key-of-this-template"}),
            await refused_status(url(features), additional_headers={"x-api-key": "fixture-disabled-key-0123456789"}),
            await refused_status(url(features), additional_headers={"x-api-key": "fixture-unattached-key-012345678"}),
        ]

    assert run(scenario()) == [403, 403, 403, 403]


def test_the_right_key_connects_and_events_name_it(features, fixtures):
    generated = next(k for k in load_app(fixtures / "apigw_features" / "template.yaml").apis["FeaturesApi"]
                     .api_keys["live"] if k.logical_id == "GeneratedKey")

    async def scenario() -> list[Any]:
        replies = []
        for key in (DEVELOPER_KEY, generated.value):
            async with connect(url(features), open_timeout=WAIT, additional_headers={"X-API-Key": key}) as ws:
                replies.append(await ask(ws, {"action": "echo"}))
        return replies

    developer, by_generated = run(scenario())

    assert developer["identity"]["apiKey"] == DEVELOPER_KEY
    assert by_generated["identity"]["apiKey"] == generated.value
    assert developer["identity"]["apiKeyId"] != by_generated["identity"]["apiKeyId"]
    # A function's !Ref of the key is the id events carry, as on AWS.
    assert developer["identity"]["apiKeyId"] == developer["env"]["DEVELOPER_KEY_ID"]
    assert developer["env"]["USAGE_PLAN_ID"]
    assert developer["identity"]["sourceIp"] == "127.0.0.1"


def test_stage_variables_reach_every_event_and_the_authorizer(features):
    async def scenario() -> Any:
        async with connect(url(features), open_timeout=WAIT, additional_headers={"x-api-key": DEVELOPER_KEY}) as ws:
            return await ask(ws, {"action": "echo"})

    reply = run(scenario())

    # A variable naming a resource holds its local name (a function's Ref is its name).
    expected = {"tableName": "Notes_live", "greeting": "hello", "echoFunction": "EchoFunction"}
    assert reply["stageVariables"] == expected
    assert json.loads(reply["authorizer"]["authorizerSawStageVariables"]) == expected


def test_a_route_beyond_its_burst_is_throttled_and_its_function_not_invoked(features):
    async def scenario() -> list[Any]:
        async with connect(url(features), open_timeout=WAIT, additional_headers={"x-api-key": DEVELOPER_KEY}) as ws:
            for n in range(4):
                await ws.send(json.dumps({"action": "burst", "n": n}))
            frames = [json.loads(await asyncio.wait_for(ws.recv(), WAIT)) for _ in range(4)]
            # Another route has its own bucket.
            frames.append(await ask(ws, {"action": "echo"}))
            return frames

    *burst, echo = run(scenario())

    answered = sorted(json.loads(f["body"])["n"] for f in burst if "routeKey" in f)
    throttled = [f for f in burst if "routeKey" not in f]
    assert answered == [0, 1]  # messages are throttled in arrival order
    assert [sorted(f) for f in throttled] == [["connectionId", "message", "requestId"]] * 2
    assert {f["message"] for f in throttled} == {"Too Many Requests"}
    assert echo["routeKey"] == "echo"


def test_a_body_that_fails_the_model_gets_invalid_request_body_and_no_invocation(features):
    async def scenario() -> list[Any]:
        async with connect(url(features), open_timeout=WAIT, additional_headers={"x-api-key": DEVELOPER_KEY}) as ws:
            good = await ask(ws, {"action": "note", "text": "hi"})
            bad = [await ask(ws, body) for body in ({"action": "note"}, {"action": "note", "text": "", "x": 1})]
            # Nothing else arrives for the refused notes: the next frame answers the next message.
            after = await ask(ws, {"action": "echo"})
            return [good, *bad, after]

    good, *bad, after = run(scenario())

    assert good["routeKey"] == "note"
    assert [b["message"] for b in bad] == ["Invalid request body"] * 2
    assert all(sorted(b) == ["connectionId", "message", "requestId"] for b in bad)
    assert after["routeKey"] == "echo"


def http(method: str, target: str, data: bytes | None = None) -> int:
    request = urllib.request.Request(target, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_percent_encoded_connections_paths_reach_the_connection(features):
    api = next(a for a in features.info.apis if a.api == "FeaturesApi")

    async def scenario() -> tuple[list[int], str, int | None]:
        async with connect(url(features), open_timeout=WAIT, additional_headers={"x-api-key": DEVELOPER_KEY}) as ws:
            connection_id = (await ask(ws, {"action": "echo"}))["connectionId"]
            # As AWS's signed-request examples send it: '@' as %40, '=' as %3D.
            target = f"{api.management_url}/%40connections/{quote(connection_id, safe='')}"
            statuses = [await asyncio.to_thread(http, "POST", target, b"pushed"),
                        await asyncio.to_thread(http, "GET", target)]
            pushed = await asyncio.wait_for(ws.recv(), WAIT)
            statuses.append(await asyncio.to_thread(http, "DELETE", target))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), WAIT)
            return statuses, str(pushed), ws.close_code

    statuses, pushed, close_code = run(scenario())

    assert statuses == [200, 200, 204]
    assert pushed == "pushed"
    assert close_code == 1000
