"""A Node.js SAM app, run whole: template → translator → gateway → aws-lambda-ric workers.

The fixture (``tests/fixtures/node_websocket_api``) is shaped like the public Node samples: an
ES module ``$connect``, a CommonJS ``$default`` that posts the message back with ``fetch`` to
``https://{domainName}/{stage}/@connections/{id}`` (so over TLS, trusting the stack's CA through
``NODE_EXTRA_CA_CERTS``), a callback-style two-way route, a failing route and a slow one.
Skipped, saying why, where ``node`` or the client is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from wsstack.testing import BOUND, LogLines, RunningStack, captured_logs, run_stack

from .conftest import FIXTURES

TEMPLATE = FIXTURES / "node_websocket_api" / "template.yaml"
WAIT = 10.0  # seconds: the bound on every wait for something that should happen now


@pytest.fixture(scope="module")
def logs() -> Iterator[LogLines]:
    with captured_logs() as handler:
        yield handler


@pytest.fixture(scope="module")
def node_app(node_runtime, logs) -> Iterator[RunningStack]:
    with run_stack(TEMPLATE, code_check_interval=None, node_ric=node_runtime.modules.parent) as stack:
        yield stack


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, BOUND))


async def recv_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


def test_default_route_echoes_through_connections_over_tls_from_node(node_app, logs):
    async def scenario() -> list[str]:
        async with connect(node_app.url("EchoApi"), open_timeout=WAIT) as ws:
            echoed = []
            for text in ("hello from a browser", '{"action": "nobody", "n": 1}'):
                await ws.send(text)
                echoed.append(str(await asyncio.wait_for(ws.recv(), WAIT)))
            return echoed

    echoed = run(scenario())

    # Plain text and JSON without a matching route both go to $default, which posts them back.
    assert echoed == ["hello from a browser", '{"action": "nobody", "n": 1}']
    # The ES module $connect ran and its console.log reached the function's log.
    assert any(line.split("\t")[-1].startswith("connected ") for line in logs.messages("wsstack.fn.ConnectFunction"))


def test_a_node_function_reaches_connections_by_the_api_url_its_template_builds(node_app):
    # CALLBACK_URL: !Sub https://${EchoApi}.execute-api.${AWS::Region}.amazonaws.com/${StageName},
    # which the stack rewrites to the stage's local URL (Node's fetch ignores HTTPS_PROXY).
    async def scenario() -> Any:
        async with connect(node_app.url("EchoApi"), open_timeout=WAIT) as ws:
            await ws.send(json.dumps({"action": "push", "text": "by the template's URL"}))
            return await recv_json(ws)

    assert run(scenario()) == {"action": "push", "text": "by the template's URL"}


@pytest.mark.parametrize("route", ["assembled", "assembledhttps"])
def test_node_reaches_the_api_host_it_assembles_from_the_api_id_and_region(node_app, route):
    # https://{apiId}.execute-api.{region}.amazonaws.com/{stage}: a host only AWS has, which
    # Node's fetch and https reach the local gateway by (they ignore HTTPS_PROXY)
    async def scenario() -> Any:
        async with connect(node_app.url("EchoApi"), open_timeout=WAIT) as ws:
            await ws.send(json.dumps({"action": route, "text": "by the assembled URL"}))
            return await recv_json(ws)

    assert run(scenario()) == {"action": route, "text": "by the assembled URL"}


def test_a_two_way_callback_route_answers_with_the_templates_environment(node_app):
    async def scenario() -> Any:
        async with connect(node_app.url("EchoApi"), open_timeout=WAIT) as ws:
            await ws.send(json.dumps({"action": "info"}))
            return await recv_json(ws)

    info = run(scenario())  # the result's body is the frame, as on AWS

    env = info["env"]
    assert info["functionName"] == "InfoFunction"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs22.x"  # the function's own Runtime
    assert env["GREETING"] == "hello from the template"
    assert env["API_ID"] == node_app.info.apis[0].api_id  # !Ref EchoApi, resolved locally
    assert env["NODE_EXTRA_CA_CERTS"] == node_app.info.ca_bundle


def test_a_failing_node_route_answers_internal_server_error_and_the_socket_stays_open(node_app):
    async def scenario() -> tuple[Any, str]:
        async with connect(node_app.url("EchoApi"), open_timeout=WAIT) as ws:
            await ws.send(json.dumps({"action": "fail"}))
            failed = await recv_json(ws)
            await ws.send("still here")
            return failed, str(await asyncio.wait_for(ws.recv(), WAIT))

    failed, after = run(scenario())

    assert failed["message"] == "Internal server error"
    assert after == "still here"


def test_a_node_route_past_its_timeout_answers_internal_server_error(node_app):
    runtime = node_app.stack.runtime

    async def scenario() -> Any:
        async with connect(node_app.url("EchoApi"), open_timeout=WAIT) as ws:
            await ws.send(json.dumps({"action": "slow", "seconds": 3}))
            return await recv_json(ws)

    frame = run(scenario())
    timed_out = node_app.call(runtime.invoke("SlowFunction", {"seconds": 3}))

    assert frame["message"] == "Internal server error"
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert timed_out.error["errorMessage"].endswith("Task timed out after 1.00 seconds")


def test_without_node_wsstack_up_stops_with_one_sentence_naming_what_to_install(tmp_path):
    # GIVEN a PATH without node (it runs whether or not this machine has node)
    env = {**os.environ, "PATH": str(tmp_path)}

    # WHEN the Node app is started
    done = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "up", "-t", str(TEMPLATE), "--port", "0", "--tls-port", "0",
         "--emulator-port", "0", "--no-persist", "--state-file", str(tmp_path / "stack.json")],
        env=env, capture_output=True, text=True, timeout=BOUND, check=False,
    )

    # THEN start-up stops with one sentence and nothing else, and no state file says a stack runs
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "wsstack: ConnectFunction: runtime 'nodejs20.x' needs Node.js, and `node` is not on PATH; "
        "install Node.js 20 or later (and npm), or use a python3.x runtime."
    ]
    assert not (tmp_path / "stack.json").exists()
