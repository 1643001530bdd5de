"""Stage throttling over real sockets: a throttled $connect is 429 and nothing runs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wsstack.model import StageSettings, Throttle

WAIT = 5.0


def run(coroutine: Any, timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def test_connect_beyond_its_burst_is_429_without_invoking_the_authorizer_or_connect(lambdas, running, make_api):
    # $connect's own bucket: one connection, then one per 1,000 s; other routes are not limited.
    settings = StageSettings(route_throttles={"$connect": Throttle(burst_limit=1, rate_limit=0.001)})
    api = make_api()
    api = dataclasses.replace(api, stage_settings={stage: settings for stage in api.stages})

    async def scenario() -> tuple[int, Any, int, int]:
        async with running(lambdas, api) as gateway, connect(gateway.url + "?token=allow-ann") as ws:
            await lambdas.next_call("AuthFn")
            await lambdas.next_call("ConnectFn")
            with pytest.raises(InvalidStatus) as refused:
                async with connect(gateway.url + "?token=allow-bob", open_timeout=WAIT):
                    pass
            body = json.loads(refused.value.response.body)
            await ws.send(json.dumps({"action": "echo", "n": 1}))
            await asyncio.wait_for(ws.recv(), WAIT)
            return (refused.value.response.status_code, body,
                    len(lambdas.calls["AuthFn"]), len(lambdas.calls["ConnectFn"]))

    status, body, authorizer_calls, connect_calls = run(scenario())

    assert (status, body) == (429, {"message": "Too Many Requests"})
    assert (authorizer_calls, connect_calls) == (1, 1)  # only the first connection's
