"""A stack that runs functions against another, running stack: what `wsstack invoke` does when
`wsstack up` is running. Its workers use that stack's tables and post to its gateway."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wsstack.stack import LocalStack, StackInfo, StackMismatch, local_event, stack_answers

WAIT = 10.0


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def invoke_attached(template: Path, running: StackInfo, function: str, event: Any) -> Any:
    """Invoke ``function`` of ``template`` on a stack attached to ``running``; its result."""
    stack = LocalStack(template, running=running, code_check_interval=None, require_api=False)
    await stack.start()
    try:
        stage = stack.stage_of(function)
        assert stage is not None
        event, _ = local_event(event, stage, running.apis)
        result = await stack.runtime.invoke(function, event)
        assert result.ok, result.error
        return result.payload
    finally:
        await stack.stop()


def test_the_attached_functions_see_the_running_stacks_tables_and_api(sam_app, fixtures):
    template = fixtures / "sam_websocket_api" / "template.yaml"
    event = {"requestContext": {"routeKey": "env"}}

    attached = run(invoke_attached(template, sam_app.info, "EchoFunction", event))
    own = sam_app.call(sam_app.stack.runtime.invoke("EchoFunction", event))

    # The same table (and the stream ARN the running emulator gave it), API and stage.
    assert json.loads(attached["body"]) == json.loads(own.payload["body"])
    assert json.loads(attached["body"])["TABLE_NAME"] == sam_app.info.resources["NotesTable"]


def test_an_event_recorded_on_aws_reaches_a_client_of_the_running_stack(sam_app, fixtures):
    # ReplyFunction posts to https://{domainName}/{stage}/@connections/{connectionId} of its event.
    template = fixtures / "sam_websocket_api" / "template.yaml"

    async def scenario() -> tuple[Any, Any]:
        async with connect(sam_app.url("NotesApi") + "?token=user-fay", open_timeout=WAIT) as ws:
            await ws.send(json.dumps({"action": "echo"}))
            connection_id = json.loads(await asyncio.wait_for(ws.recv(), WAIT))["connectionId"]
            recorded = {"requestContext": {
                "routeKey": "reply", "eventType": "MESSAGE", "stage": "prod", "apiId": "a1b2c3d4e5",
                "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "connectionId": connection_id,
            }, "body": "{}", "isBase64Encoded": False}
            result = await invoke_attached(template, sam_app.info, "ReplyFunction", recorded)
            return result, json.loads(await asyncio.wait_for(ws.recv(), WAIT))

    result, pushed = run(scenario())

    stage = sam_app.info.apis[0]
    assert result == {"statusCode": 200}
    assert pushed == {"replied": True, "endpoint": f"https://{stage.domain_name}/{stage.stage}"}


def test_a_running_stack_of_another_template_is_not_used(sam_app, fixtures):
    stack = LocalStack(fixtures / "raw_two_apis" / "template.yaml", running=sam_app.info, code_check_interval=None)

    with pytest.raises(StackMismatch, match=r"^it has no PublicApi stage dev, PublicApi stage prod, AdminApi stage "
                       r"live, so it serves another template or other parameters than .*raw_two_apis"):
        run(stack.start())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_stack_answers_only_while_its_emulator_and_gateways_do(sam_app):
    stage = sam_app.info.apis[0]
    gone = f"http://127.0.0.1:{_closed_port()}"
    # A port that answers HTTP but is no gateway: the emulator's.
    not_a_gateway = replace(stage, connections_url=f"{sam_app.info.aws_endpoint}/{stage.stage}/@connections")

    assert run(stack_answers(sam_app.info)) is True
    assert run(stack_answers(replace(sam_app.info, aws_endpoint=gone))) is False
    assert run(stack_answers(replace(sam_app.info, apis=[replace(stage, connections_url=gone)]))) is False
    assert run(stack_answers(replace(sam_app.info, apis=[not_a_gateway]))) is False


def test_a_running_stack_started_with_other_parameters_is_not_used(sam_app, fixtures):
    stack = LocalStack(fixtures / "sam_websocket_api" / "template.yaml", parameters={"StageName": "prod"},
                       running=sam_app.info, code_check_interval=None)

    with pytest.raises(StackMismatch, match=r"^it has no NotesApi stage prod, so it serves another template or"):
        run(stack.start())
