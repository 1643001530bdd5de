"""A chat written the way AWS's public samples are (tests/fixtures/public_chat) runs end to end
through the pytest plugin alone: its fixture starts the stack, these tests only talk to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# By absolute path: the rootdir is this package's or the repository's, depending on who runs the tests.
TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "public_chat" / "template.yaml"
pytestmark = [pytest.mark.e2e, pytest.mark.wsstack(template=str(TEMPLATE))]

#: Seconds to wait for a frame that should come.
WAIT = 10


def test_a_message_sent_by_one_client_reaches_every_connected_client(wsstack):
    # Given two clients connected to the sample's API
    with wsstack.connect() as alice, wsstack.connect() as bob:
        # When one of them sends a message on the sendmessage route
        alice.send(json.dumps({"action": "sendmessage", "data": "hello, bob"}))
        # Then the function's broadcast through https://{domainName}/{stage} reaches both
        assert bob.recv(timeout=WAIT) == "hello, bob"
        assert alice.recv(timeout=WAIT) == "hello, bob"


def test_connect_stores_the_connection_id_in_the_templates_table(wsstack):
    table = wsstack.resources["ConnectionsTable"]
    dynamodb = wsstack.client("dynamodb")

    def stored() -> set[str]:
        return {item["connectionId"]["S"] for item in dynamodb.scan(TableName=table)["Items"]}

    # Compared by id, not counted: earlier tests' clients may still be leaving ($disconnect
    # runs after their sockets close), which only removes ids.
    before = stored()
    # The gateway answers the upgrade only once $connect has returned, as API Gateway does.
    with wsstack.connect(secure=True):
        assert len(stored() - before) == 1


def test_the_stack_facts_name_the_templates_api_and_region(wsstack):
    assert wsstack.apis[0].api == "SimpleChatWebSocket"
    assert wsstack.apis[0].stage == "Prod"
    assert wsstack.websocket_url.startswith("ws://127.0.0.1:") and wsstack.websocket_url.endswith("/Prod")
    assert wsstack.secure_websocket_url.startswith("wss://")
    assert wsstack.connections_url.endswith("/Prod/@connections")
    assert wsstack.aws_endpoint.startswith("http://127.0.0.1:")
    assert wsstack.region
    assert wsstack.user_pool_id is None  # the sample has no user pool
