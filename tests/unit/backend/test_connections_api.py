"""The real ``@connections`` notifier against responses shaped as AWS sends them (botocore's
Stubber): a 410 GoneException means "connection gone", and only that connection is forgotten."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from chat_fakes import InMemoryMessageStore

from chat.adapters.connections_api import ConnectionsApiNotifier
from chat.domain.errors import ConnectionGone
from chat.domain.models import Caller, SendMessageRequest
from chat.domain.services import ConnectionService, MessagingService


@pytest.fixture
def stubbed():
    client = boto3.client(
        "apigatewaymanagementapi", region_name="us-east-1",
        endpoint_url="https://abc123.execute-api.us-east-1.amazonaws.com/dev",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield ConnectionsApiNotifier(client), stubber
        stubber.assert_no_pending_responses()


def _accepts(stubber: Stubber, connection_id: str) -> None:
    stubber.add_response("post_to_connection", {}, {"ConnectionId": connection_id, "Data": ANY})


def _gone(stubber: Stubber, connection_id: str) -> None:
    # What API Gateway answers for a closed or unknown connection id.
    stubber.add_client_error(
        "post_to_connection", service_error_code="GoneException", service_message="", http_status_code=410,
        expected_params={"ConnectionId": connection_id, "Data": ANY},
    )


def test_a_post_sends_the_frame_as_compact_utf8_json(stubbed):
    notifier, stubber = stubbed
    expected = {"ConnectionId": "A1", "Data": '{"type":"pong","at":"é"}'.encode()}
    stubber.add_response("post_to_connection", {}, expected)

    notifier.post("A1", {"type": "pong", "at": "é"})


def test_a_410_gone_exception_is_connection_gone_naming_that_connection(stubbed):
    notifier, stubber = stubbed
    _gone(stubber, "B1")

    with pytest.raises(ConnectionGone) as gone:
        notifier.post("B1", {"type": "pong", "at": "now"})

    assert gone.value.connection_id == "B1"


@pytest.mark.parametrize(
    ("code", "status"),
    [("ForbiddenException", 403), ("LimitExceededException", 429), ("PayloadTooLargeException", 413)],
)
def test_other_errors_are_not_mistaken_for_a_gone_connection(stubbed, code, status):
    notifier, stubber = stubbed
    stubber.add_client_error("post_to_connection", service_error_code=code, http_status_code=status)

    with pytest.raises(ClientError) as failed:
        notifier.post("B1", {"type": "pong", "at": "now"})

    assert failed.value.response["Error"]["Code"] == code


def test_a_send_forgets_exactly_the_connection_that_answered_410(
    stubbed, connections, directory, clock, alice, bob
):
    notifier, stubber = stubbed
    for user, connection_id in ((alice, "A1"), (alice, "A2"), (bob, "B1"), (bob, "B2")):
        ConnectionService(connections, clock).open(connection_id, user)
    messaging = MessagingService(messages=InMemoryMessageStore(connections), connections=connections,
                                 directory=directory, notifier=notifier, clock=clock)
    # The message to bob's B1 (gone) and B2, then to alice's A2, and last the ack to the sender.
    _gone(stubber, "B1")
    _accepts(stubber, "B2")
    _accepts(stubber, "A2")
    _accepts(stubber, "A1")

    frame = {"messageId": "m-1", "conversationId": "conv-ab", "recipientId": bob.user_id, "content": "hi"}
    messaging.send(Caller(connection_id="A1", user=alice), SendMessageRequest.model_validate(frame))

    assert set(connections.rows) == {"A1", "A2", "B2"}
    assert connections.connection_ids_by_user([bob.user_id, alice.user_id]) == {
        bob.user_id: ["B2"], alice.user_id: ["A1", "A2"]
    }


def test_the_stubbed_error_has_the_shape_aws_sends():
    # Guard: the stub's 410 carries the error code and status the adapter reads.
    client = boto3.client("apigatewaymanagementapi", region_name="us-east-1", endpoint_url="https://x/dev",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        _gone(stubber, "B1")
        with pytest.raises(ClientError) as raised:
            client.post_to_connection(ConnectionId="B1", Data=json.dumps({}).encode())
    response = raised.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == ("GoneException", 410)
