"""Tables and the user pool are created from the template, as declared."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from wsstack.emulator import create_resources
from wsstack.template import load_app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def created(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        app = load_app(ROOT / "template.yaml", {"NameSuffix": "AlexHo"})
        yield create_resources(app)


def test_tables_have_the_template_keys_indexes_and_ttl(created):
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    assert created["ConnectionsTable"] == "Connections_AlexHo"
    assert created["MessagesTable"] == "Messages_AlexHo"
    messages = dynamodb.describe_table(TableName="Messages_AlexHo")["Table"]
    assert messages["KeySchema"] == [{"AttributeName": "messageId", "KeyType": "HASH"}]
    assert {i["IndexName"] for i in messages["GlobalSecondaryIndexes"]} == {"ConversationIndex", "PendingIndex"}
    connections = dynamodb.describe_table(TableName="Connections_AlexHo")["Table"]
    assert [i["IndexName"] for i in connections["GlobalSecondaryIndexes"]] == ["UserIdIndex"]
    ttl = dynamodb.describe_time_to_live(TableName="Connections_AlexHo")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def test_user_pool_client_allows_password_and_srp_without_secret(created):
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool = cognito.describe_user_pool(UserPoolId=created["UserPool"])["UserPool"]
    assert pool["Name"] == "MessageAI-Users_AlexHo"
    client = cognito.describe_user_pool_client(UserPoolId=created["UserPool"], ClientId=created["UserPoolClient"])
    flows = set(client["UserPoolClient"]["ExplicitAuthFlows"])
    assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"} <= flows
    assert "ClientSecret" not in client["UserPoolClient"]
