"""A Node.js app in the shape of AWS's simple WebSocket chat sample, run unchanged.

Its ES module handlers import the AWS SDK for JavaScript v3, which Lambda's Node runtimes
provide (locally: installed beside the runtime interface client), and its broadcast posts to
``https://{apiId}.execute-api.{region}.amazonaws.com/{stage}``, a host only AWS has, with the
SDK's own HTTPS client, which ignores ``HTTPS_PROXY``. Skipped, saying why, where ``node``, the
client or the SDK is missing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wsstack.emulator import aws_client
from wsstack.testing import BOUND, RunningStack, run_stack

from .conftest import FIXTURES

TEMPLATE = FIXTURES / "node_sdk_chat" / "template.yaml"
SDK = ("client-apigatewaymanagementapi", "client-dynamodb", "lib-dynamodb")
WAIT = 10.0  # seconds: the bound on every wait for something that should happen now


@pytest.fixture(scope="module")
def chat(node_runtime) -> Iterator[RunningStack]:
    missing = [name for name in SDK if not (node_runtime.modules / "@aws-sdk" / name).is_dir()]
    if missing:
        pytest.skip(f"the AWS SDK for JavaScript is not installed beside the client ({', '.join(missing)}); "
                    f"npm install --prefix {node_runtime.modules.parent} "
                    + " ".join(f"@aws-sdk/{name}" for name in SDK))
    with run_stack(TEMPLATE, code_check_interval=None, node_ric=node_runtime.modules.parent) as stack:
        yield stack


def connections(stack: RunningStack) -> list[str]:
    table = aws_client("dynamodb", stack.info.aws_endpoint, stack.info.region)
    items = table.scan(TableName=stack.info.resources["ConnectionsTable"])["Items"]
    return sorted(item["connectionId"]["S"] for item in items)


def test_the_samples_broadcast_reaches_every_client_and_disconnects_are_forgotten(chat):
    url = chat.url("ChatApi")

    async def scenario() -> tuple[list[Any], int]:
        async with connect(url, open_timeout=WAIT) as alice, connect(url, open_timeout=WAIT) as bob:
            stored = len(connections(chat))
            await alice.send(json.dumps({"action": "sendmessage", "data": "hello, everyone"}))
            heard = [await asyncio.wait_for(ws.recv(), WAIT) for ws in (bob, alice)]
        return heard, stored

    heard, stored = asyncio.run(asyncio.wait_for(scenario(), BOUND))

    # THEN $connect (an ES module) stored both, the broadcast reached both through the
    # assembled API host, and $disconnect (CommonJS) removed them again
    assert stored == 2
    assert heard == ["hello, everyone", "hello, everyone"]

    async def drained() -> None:
        while connections(chat):
            await asyncio.sleep(0.05)  # the disconnects run after the sockets close

    asyncio.run(asyncio.wait_for(drained(), WAIT))
