"""Tables and the user pool are created from the template, as declared."""

from __future__ import annotations

import copy
import logging
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


def test_a_restart_reuses_what_exists_with_its_ids_and_items(created, app):
    # The emulator restored from the last run already holds the tables, pool and client.
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.put_item(TableName=created["MessagesTable"], Item={"messageId": {"S": "kept"}})

    again = create_resources(app)

    assert again == created  # table names, the pool's id, the app client's id
    assert dynamodb.get_item(TableName=created["MessagesTable"], Key={"messageId": {"S": "kept"}})["Item"]
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    assert len(cognito.list_user_pools(MaxResults=60)["UserPools"]) == 1
    clients = cognito.list_user_pool_clients(UserPoolId=created["UserPool"], MaxResults=60)["UserPoolClients"]
    assert [c["ClientId"] for c in clients] == [created["UserPoolClient"]]


def test_a_table_whose_indexes_the_template_changed_is_recreated_and_one_line_says_its_items_went(
    created, app, caplog
):
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for key in ("a", "b"):
        dynamodb.put_item(TableName=created["MessagesTable"], Item={"messageId": {"S": key}})
        dynamodb.put_item(TableName=created["ConnectionsTable"], Item={"connectionId": {"S": key}})
    changed = copy.deepcopy(app)
    messages = changed.resources["MessagesTable"].properties
    # UnreadIndex dropped from the template, and the attribute only it used.
    messages["GlobalSecondaryIndexes"] = [i for i in messages["GlobalSecondaryIndexes"]
                                          if i["IndexName"] != "UnreadIndex"]
    messages["AttributeDefinitions"] = [a for a in messages["AttributeDefinitions"]
                                        if a["AttributeName"] != "unreadFor"]

    with caplog.at_level(logging.WARNING, logger="wsstack.emulator"):
        create_resources(changed)

    described = dynamodb.describe_table(TableName=created["MessagesTable"])["Table"]
    assert "UnreadIndex" not in {i["IndexName"] for i in described["GlobalSecondaryIndexes"]}
    assert dynamodb.scan(TableName=created["MessagesTable"])["Items"] == []
    assert len(dynamodb.scan(TableName=created["ConnectionsTable"])["Items"]) == 2  # unchanged: kept
    assert [r.getMessage() for r in caplog.records] == [
        "MessagesTable: the template changed the keys, indexes or stream of table Messages_AlexHo; "
        "recreated it, dropping its 2 items"
    ]


def test_a_table_with_cloudformations_sse_spelling_is_created_encrypted(monkeypatch):
    # AWS's samples write SSESpecification: {SSEEnabled: true}, CloudFormation's name for the
    # CreateTable API's Enabled.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    public_chat = load_app(ROOT / "packages" / "wsstack" / "tests" / "fixtures" / "public_chat" / "template.yaml", {})
    with mock_aws():
        created = create_resources(public_chat)
        described = boto3.client("dynamodb", region_name="us-east-1").describe_table(
            TableName=created["ConnectionsTable"])["Table"]
    assert created["ConnectionsTable"] == "simplechat_connections"
    assert described["SSEDescription"]["Status"] == "ENABLED"
