"""Integration fixtures: the handlers in-process against moto, tables and the user pool
created from template.yaml by the local stack's own emulator code.

Only the ``@connections`` notifier is a fake (moto's never answers 410): it is injected
through the composition root, like the clock.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chat_fakes import RecordingNotifier
from moto import mock_aws

from chat.config import Container, override
from chat.domain.models import Identity
from wsstack.emulator import create_resources
from wsstack.model import App
from wsstack.template import load_app

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"


class TickingClock:
    """Each reading is one second after the previous: timestamps are distinct and ordered."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


class FakeLambdaContext:
    function_name = "chat-it"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chat-it"
    aws_request_id = "0c4b9e7a-2f1d-4c6e-8a3b-5d7f9e1a2c40"


@pytest.fixture(scope="session")
def app() -> App:
    # Translating the template is the slow part; the resources are recreated per test.
    return load_app(ROOT / "template.yaml", {"NameSuffix": "it"}, region=REGION)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, app: App) -> Iterator[dict[str, str]]:
    """moto with the template's tables, user pool and client; yields their physical ids."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_COGNITO_IDP", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield create_resources(app, region=REGION)


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def environ(aws: dict[str, str]) -> dict[str, str]:
    """What the template gives the message functions, with moto's names."""
    return {
        "CONNECTIONS_TABLE": aws["ConnectionsTable"],
        "USER_CONNECTIONS_TABLE": aws["UserConnectionsTable"],
        "MESSAGES_TABLE": aws["MessagesTable"],
        "CONVERSATIONS_TABLE": aws["ConversationsTable"],
        "USER_POOL_ID": aws["UserPool"],
        "CONNECTIONS_ENDPOINT_URL": "",
    }


@pytest.fixture
def backend(environ, notifier, clock) -> Iterator[Container]:
    """Real DynamoDB adapters (on moto), the recording notifier and the ticking clock."""
    with override(environ=environ, notifier=notifier, clock=clock) as container:
        yield container


@pytest.fixture
def tables(aws: dict[str, str]) -> Any:
    dynamodb = boto3.resource("dynamodb", region_name=REGION)

    class Tables:
        connections = dynamodb.Table(aws["ConnectionsTable"])
        user_connections = dynamodb.Table(aws["UserConnectionsTable"])
        messages = dynamodb.Table(aws["MessagesTable"])
        conversations = dynamodb.Table(aws["ConversationsTable"])

    return Tables


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def pool_user(aws: dict[str, str], username: str, name: str) -> Identity:
    """A user created in the template's pool; their id is their Cognito sub."""
    cognito = boto3.client("cognito-idp", region_name=REGION)
    user = cognito.admin_create_user(
        UserPoolId=aws["UserPool"], Username=username, MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "name", "Value": name}, {"Name": "email", "Value": f"{username}@example.com"}],
    )["User"]
    return Identity(user_id=next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub"), user_name=name)


@pytest.fixture
def alice(aws: dict[str, str]) -> Identity:
    # Users of the pool: the first message of a conversation checks its recipient there.
    return pool_user(aws, "alice", "Alice")


@pytest.fixture
def bob(aws: dict[str, str]) -> Identity:
    return pool_user(aws, "bob", "Bob")


@pytest.fixture
def ws_event() -> Callable[..., dict[str, Any]]:
    """``ws_event("send_message", connection_id=..., user=..., body={...})`` from events/."""

    def build(name: str, *, connection_id: str, user: Identity | None, body: Any = None) -> dict[str, Any]:
        event = copy.deepcopy(json.loads((ROOT / "events" / f"{name}.json").read_text()))
        context = event["requestContext"]
        context["connectionId"] = connection_id
        if user is None:
            context.pop("authorizer", None)
        else:
            context["authorizer"] = {"principalId": user.user_id, "userId": user.user_id, "userName": user.user_name}
        if body is not None:
            event["body"] = body if isinstance(body, str) else json.dumps(body)
        return event

    return build
