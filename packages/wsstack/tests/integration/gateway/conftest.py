"""A small WebSocket API, fake Lambdas and a running gateway for the gateway's socket tests.

No Lambda processes: ``FakeLambdas`` stands in for the runtime behind ``invoke`` and
records every event it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from wsstack.gateway import Gateway, Limits
from wsstack.model import Authorizer, InvocationResult, Route, WebSocketApi

Handler = Callable[[dict[str, Any]], Any]

STAGE = "dev"


def allow_policy(event: dict[str, Any], principal: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
        },
        "context": context,
    }


def authorizer(event: dict[str, Any]) -> dict[str, Any]:
    """Decides on the ``token`` query parameter: ``allow-<user>``, ``deny``, ``crash``..."""
    token = event["queryStringParameters"]["token"]
    if token.startswith("allow-"):
        user = token.removeprefix("allow-")
        return allow_policy(event, user, {"userId": user, "level": 2, "admin": False})
    if token == "deny":
        denied = allow_policy(event, "nobody", {})
        denied["policyDocument"]["Statement"][0]["Effect"] = "Deny"
        return denied
    if token == "unauthorized":
        raise Exception("Unauthorized")
    raise RuntimeError("authorizer exploded")


def boom(event: dict[str, Any]) -> Any:
    raise RuntimeError("kaboom")


class FakeLambdas:
    """An ``invoke`` coroutine backed by plain Python handlers.

    A handler gets the event and returns the payload (or an awaitable of it); an
    exception becomes a failed :class:`InvocationResult`, as the runtime reports a
    function error.
    """

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {
            "AuthFn": authorizer,
            "ConnectFn": lambda event: {"statusCode": 200},
            "DisconnectFn": lambda event: {"statusCode": 200},
            "EchoFn": lambda event: {"statusCode": 200, "body": event["body"]},
            "NotifyFn": lambda event: {"statusCode": 200, "body": "one-way routes never send this"},
            "BoomFn": boom,
            "DefaultFn": lambda event: {"statusCode": 200, "body": "default:" + event["body"]},
        }
        self.calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)

    async def __call__(self, function: str, event: Any, *, report: bool = True) -> InvocationResult:
        self.calls[function].append(event)
        self._queues[function].put_nowait(event)
        request_id = str(uuid.uuid4())
        try:
            payload = self.handlers[function](event)
            if inspect.isawaitable(payload):
                payload = await payload
        except Exception as exc:
            return InvocationResult(
                request_id=request_id,
                error={"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": ["..."]},
            )
        return InvocationResult(request_id=request_id, payload=payload)

    async def next_call(self, function: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next event ``function`` receives (including ones already received)."""
        return await asyncio.wait_for(self._queues[function].get(), timeout)


def make_api(*, connect: bool = True, authorize: bool = True, default: bool = False) -> WebSocketApi:
    """A tiny API: echo (two-way), notify (one-way), boom (fails), optional $default."""
    routes = {
        "$disconnect": Route("$disconnect", "DisconnectFn"),
        "echo": Route("echo", "EchoFn", two_way=True),
        "notify": Route("notify", "NotifyFn"),
        "boom": Route("boom", "BoomFn"),
    }
    if connect:
        auth = Authorizer("Auth", "AuthFn", ("route.request.querystring.token",)) if authorize else None
        routes["$connect"] = Route(
            "$connect", "ConnectFn", authorization_type="CUSTOM" if auth else "NONE", authorizer=auth
        )
    if default:
        routes["$default"] = Route("$default", "DefaultFn", two_way=True)
    return WebSocketApi("TestApi", "test-api", "$request.body.action", routes, (STAGE,))


@contextlib.asynccontextmanager
async def running(
    lambdas: FakeLambdas, api: WebSocketApi | None = None, limits: Limits | None = None
) -> AsyncIterator[Gateway]:
    gateway = Gateway(api or make_api(), STAGE, lambdas, limits=limits)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture
def lambdas() -> FakeLambdas:
    return FakeLambdas()


@pytest.fixture(name="make_api")
def make_api_fixture() -> Callable[..., WebSocketApi]:
    return make_api


@pytest.fixture(name="running")
def running_fixture() -> Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]:
    return running
