"""Several WebSocket APIs and stages from raw AWS::ApiGatewayV2 resources, in one template.

The fixture (tests/fixtures/raw_two_apis) has PublicApi with stages dev and prod and no
$connect route, and AdminApi (stage live) with a header-based REQUEST authorizer, a nested
route selection expression and a $default route. Functions are plain AWS::Lambda::Function.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

WAIT = 10.0


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def ask(url: str, message: dict[str, Any] | str, **options: Any) -> Any:
    async with connect(url, open_timeout=WAIT, **options) as ws:
        await ws.send(message if isinstance(message, str) else json.dumps(message))
        return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def refused_status(url: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=WAIT, **options):
            pass
    return refused.value.response.status_code


def test_every_stage_of_every_api_is_served_and_listed(raw_apis):
    info = raw_apis.info

    served = [(a.api, a.name, a.stage) for a in info.apis]
    assert served == [
        ("PublicApi", "fixture-public", "dev"),
        ("PublicApi", "fixture-public", "prod"),
        ("AdminApi", "fixture-admin", "live"),
    ]
    # The top-level fields stay those of the first API's first stage.
    assert info.websocket_url == info.apis[0].websocket_url
    assert info.connections_url == info.apis[0].connections_url
    assert len({a.websocket_url for a in info.apis}) == 3
    assert info.apis[0].api_id == info.apis[1].api_id != info.apis[2].api_id


def test_each_stage_reports_its_own_stage_and_api_and_connect_is_optional(raw_apis):
    async def scenario() -> list[Any]:
        return [
            await ask(raw_apis.url("PublicApi", stage), {"action": "whoami"}) for stage in ("dev", "prod")
        ]

    dev, prod = run(scenario())

    api_id = raw_apis.info.apis[0].api_id
    assert (dev["routeKey"], dev["stage"], dev["apiId"]) == ("whoami", "dev", api_id)
    assert (prod["routeKey"], prod["stage"], prod["apiId"]) == ("whoami", "prod", api_id)
    assert dev["authorizer"] is None  # no $connect route, hence no authorizer


def test_a_stage_path_another_gateway_serves_is_refused(raw_apis):
    dev = urlsplit(raw_apis.url("PublicApi", "dev"))

    status = run(refused_status(f"ws://{dev.netloc}/prod"))

    assert status == 403


def test_header_authorizer_then_nested_selection_expression_and_default_route(raw_apis):
    url = raw_apis.url("AdminApi")

    async def scenario() -> tuple[list[int], Any, list[Any]]:
        statuses = [
            await refused_status(url),  # X-Admin-Key missing: 401 without the authorizer
            await refused_status(url, additional_headers={"X-Admin-Key": "wrong"}),
        ]
        key = {"additional_headers": {"X-Admin-Key": "open-sesame"}}
        report = await ask(url, {"meta": {"kind": "report"}}, **key)
        others = [
            await ask(url, {"meta": {"kind": "gossip"}}, **key),  # no route of that name
            await ask(url, {"kind": "report"}, **key),  # the path is missing
            await ask(url, "report", **key),  # not JSON
        ]
        return statuses, report, others

    statuses, report, others = run(scenario())

    assert statuses == [401, 403]
    assert report["routeKey"] == "report"
    assert [o["routeKey"] for o in others] == ["$default"] * 3
    assert report["authorizer"]["principalId"] == "admin"
    assert report["authorizer"]["role"] == "admin"


def test_api_urls_built_in_the_environment_point_at_the_local_gateways(raw_apis):
    reply = run(ask(raw_apis.url("PublicApi", "dev"), {"action": "whoami"}))

    env = reply["env"]
    # !Sub wss://${AdminApi}.execute-api.${AWS::Region}.amazonaws.com/live
    assert env["ADMIN_URL"] == raw_apis.url("AdminApi", "live")
    # !GetAtt PublicApi.ApiEndpoint: the API's origin, its first stage's server locally
    assert env["PUBLIC_ENDPOINT"] == raw_apis.url("PublicApi", "dev").removesuffix("/dev")
    assert env["PROD_STAGE"] == "prod"  # !Ref of a Stage is its name
    assert env["ROLE_ARN"] == "arn:aws:iam::123456789012:role/FunctionRole"
