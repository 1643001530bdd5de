"""Tables and the user pool are created from the template, as declared."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from wsstack.emulator import create_resources
from wsstack.template import load_app, resolve

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def app():
    return load_app(ROOT / "template.yaml", {"NameSuffix": "AlexHo"})


@pytest.fixture
def created(monkeypatch, app):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield create_resources(app)


def test_tables_have_the_template_names_keys_indexes_and_ttl(created, app):
    # Compared with the template's own declarations, so the test follows the template as it grows.
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    tables = app.of_type("AWS::DynamoDB::Table")
    assert created["ConnectionsTable"] == "Connections_AlexHo"
    assert created["MessagesTable"] == "Messages_AlexHo"
    for table in tables:
        declared = table.properties
        described = dynamodb.describe_table(TableName=created[table.logical_id])["Table"]
        assert described["KeySchema"] == declared["KeySchema"], table.logical_id
        indexes = {i["IndexName"]: i["KeySchema"] for i in described.get("GlobalSecondaryIndexes", [])}
        assert indexes == {i["IndexName"]: i["KeySchema"] for i in declared.get("GlobalSecondaryIndexes", [])}
        ttl = dynamodb.describe_time_to_live(TableName=created[table.logical_id])["TimeToLiveDescription"]
        if declared.get("TimeToLiveSpecification", {}).get("Enabled"):
            assert ttl == {"TimeToLiveStatus": "ENABLED",
                           "AttributeName": declared["TimeToLiveSpecification"]["AttributeName"]}
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_user_pool_client_allows_password_and_srp_without_secret(created):
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool = cognito.describe_user_pool(UserPoolId=created["UserPool"])["UserPool"]
    assert pool["Name"] == "MessageAI-Users_AlexHo"
    client = cognito.describe_user_pool_client(UserPoolId=created["UserPool"], ClientId=created["UserPoolClient"])
    flows = set(client["UserPoolClient"]["ExplicitAuthFlows"])
    assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"} <= flows
    assert "ClientSecret" not in client["UserPoolClient"]


def test_a_functions_ref_is_its_function_name_as_on_aws(created, app):
    assert created["SendMessageFunction"] == "websocket-sendMessage_AlexHo"
    # Fn::GetAtt Function.Arn (the authorizer's and integrations' URIs) names it the same way.
    arn = resolve({"Fn::GetAtt": ["SendMessageFunction", "Arn"]}, created, app.parameters, resources=app.resources)
    assert arn == "arn:aws:lambda:us-east-1:123456789012:function:websocket-sendMessage_AlexHo"
