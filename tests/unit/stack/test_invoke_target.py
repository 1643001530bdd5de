"""What `wsstack invoke` reads to find a running stack, and how it points an event at it."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from wsstack.stack import ApiInfo, StackInfo, _mismatch, local_event, read_state_file
from wsstack.template import load_app

STAGE = ApiInfo(
    api="ChatWebSocketApi", name="MessageAI-WebSocket_dev", api_id="4b5v60kqhi", stage="dev",
    websocket_url="ws://127.0.0.1:3001/dev", connections_url="http://127.0.0.1:3001/dev/@connections",
    secure_websocket_url="wss://127.0.0.1:3443/dev",
)
INFO = StackInfo(
    websocket_url=STAGE.websocket_url, connections_url=STAGE.connections_url, aws_endpoint="http://127.0.0.1:5005",
    region="us-east-1", user_pool_id="us-east-1_abc", user_pool_client_id="client", resources={"T": "T_dev"},
    apis=[STAGE], users={"alice": "sub-a"}, ca_bundle="/tmp/ca.pem",
)
RECORDED = {
    "type": "REQUEST",
    "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/$connect",
    "requestContext": {
        "routeKey": "sendMessage", "stage": "prod", "apiId": "a1b2c3d4e5", "connectionId": "L0SM9cOFvHcCIhw=",
        "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    },
}


def test_the_state_file_up_writes_reads_back(tmp_path):
    path = tmp_path / "stack.json"
    path.write_text(INFO.to_json())

    assert read_state_file(path) == INFO


def test_fields_of_other_versions_are_ignored_and_missing_optional_ones_defaulted(tmp_path):
    data = asdict(INFO)
    data.update(pid=4242, persistence={"dir": ".local/data"})
    data["apis"][0]["host"] = "0.0.0.0"
    for optional in ("users", "ca_bundle", "user_pool_client_id"):
        del data[optional]
    path = tmp_path / "stack.json"
    path.write_text(json.dumps(data))

    info = read_state_file(path)

    assert info is not None
    assert (info.aws_endpoint, info.apis, info.resources) == (INFO.aws_endpoint, INFO.apis, INFO.resources)
    assert (info.users, info.ca_bundle, info.user_pool_client_id) == ({}, "", None)


@pytest.mark.parametrize("text", [
    "",
    "not json",
    "[]",
    json.dumps({**asdict(INFO), "aws_endpoint": ""}),
    json.dumps({**asdict(INFO), "region": 1}),
    json.dumps({**asdict(INFO), "resources": {"T": 1}}),
    json.dumps({**asdict(INFO), "apis": [{"api": "ChatWebSocketApi"}]}),
    json.dumps({**asdict(INFO), "apis": {"ChatWebSocketApi": {}}}),
])
def test_a_state_file_that_describes_no_stack_is_none_not_an_error(tmp_path, text):
    path = tmp_path / "stack.json"
    path.write_text(text)

    assert read_state_file(path) is None
    assert read_state_file(tmp_path / "missing.json") is None


def test_an_event_recorded_on_aws_is_pointed_at_the_local_stage():
    recorded = copy.deepcopy(RECORDED)

    event, note = local_event(recorded, STAGE, [STAGE])

    assert event["requestContext"] == {
        **RECORDED["requestContext"], "domainName": "127.0.0.1:3443", "stage": "dev", "apiId": "4b5v60kqhi",
    }
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:4b5v60kqhi/dev/$connect"
    assert recorded == RECORDED  # the caller's event is not changed
    assert note == (
        "the event names a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod, which is not served here; it now "
        "names the local gateway 127.0.0.1:3443/dev (apiId 4b5v60kqhi), so that what the function sends to "
        "https://{domainName}/{stage} reaches it"
    )


@pytest.mark.parametrize("event", [
    # Already the local gateway, over TLS or not.
    {"requestContext": {**RECORDED["requestContext"], "domainName": "127.0.0.1:3443", "stage": "dev"}},
    {"requestContext": {**RECORDED["requestContext"], "domainName": "127.0.0.1:3001", "stage": "dev"}},
    # Nothing to point anywhere.
    {"requestContext": {"routeKey": "whoami", "stage": "dev", "apiId": "x"}},
    {"hello": "world"},
    [1, 2],
    None,
])
def test_an_event_naming_a_local_gateway_or_none_is_left_alone(event):
    assert local_event(event, STAGE, [STAGE]) == (event, None)


def test_a_running_stack_with_other_table_names_or_no_certificate_is_another_stack(tmp_path):
    root = Path(__file__).resolve().parents[3]
    dev = load_app(root / "template.yaml")
    # What `wsstack up` with the default parameters created.
    tables = {t.logical_id: t.logical_id.removesuffix("Table") + "_dev" for t in dev.of_type("AWS::DynamoDB::Table")}
    pool = {"UserPool": "us-east-1_abc", "UserPoolClient": "client"}
    (tmp_path / "ca.pem").write_text("certificate")
    running = StackInfo(**{**asdict(INFO), "apis": [STAGE], "resources": {**tables, **pool},
                           "ca_bundle": str(tmp_path / "ca.pem")})

    assert _mismatch(dev, running) is None
    assert _mismatch(load_app(root / "template.yaml", {"NameSuffix": "AlexHo"}), running) == (
        "its ConnectionsTable is Connections_dev, not Connections_AlexHo")
    # Its certificate went with it: https://{domainName}/{stage} could not be trusted.
    (tmp_path / "ca.pem").unlink()
    assert _mismatch(dev, running) == f"its gateways' certificate {tmp_path / 'ca.pem'} cannot be read"
