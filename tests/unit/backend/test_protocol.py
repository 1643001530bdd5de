"""Reading client frames: one sentence naming the bad field; cursors; unknown actions."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chat.domain.errors import ErrorCode, PayloadTooLarge, ValidationFailed
from chat.domain.models import (
    MAX_CONTENT_LENGTH,
    PendingPosition,
    SendMessageRequest,
    SyncMessagesRequest,
    iso_timestamp,
)
from chat.domain.protocol import decode_cursor, encode_cursor, error_frame, parse_frame, reject_unknown_action

VALID = {
    "action": "sendMessage",
    "messageId": "3c2f6a0e-msg",
    "conversationId": "conv-ab",
    "recipientId": "5f1e8a3c-bob",
    "content": "hello",
}


def _send(**changes) -> str:
    frame = {**VALID, **changes}
    return json.dumps({k: v for k, v in frame.items() if v is not None})


def _refusal(model, body) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as refused:
        parse_frame(model, body)
    assert refused.value.code is ErrorCode.VALIDATION_ERROR
    return refused.value


@pytest.mark.parametrize(
    ("changes", "sentence"),
    [
        ({"messageId": None}, "messageId is required."),
        ({"messageId": ""}, "messageId must not be empty."),
        ({"messageId": "x" * 129}, "messageId must be at most 128 characters."),
        ({"conversationId": None}, "conversationId is required."),
        ({"recipientId": "  "}, "recipientId must not be blank."),
        ({"recipientId": 42}, "recipientId must be a string."),
        ({"content": None}, "content is required."),
        ({"content": ""}, "content must not be empty."),
        ({"content": " \n\t "}, "content must not be blank."),
        ({"content": "bad \ud800 half"}, "content must be valid Unicode text."),
        ({"replyToMessageId": 7}, "replyToMessageId must be a string."),
    ],
)
def test_bad_send_frames_are_refused_with_one_sentence_naming_the_field(changes, sentence):
    assert _refusal(SendMessageRequest, _send(**changes)).message == sentence


def test_the_refusal_carries_the_message_id_when_the_frame_had_one():
    assert _refusal(SendMessageRequest, _send(content="")).message_id == "3c2f6a0e-msg"
    assert _refusal(SendMessageRequest, _send(messageId=None, content="")).message_id is None
    assert _refusal(SendMessageRequest, _send(messageId=5)).message_id is None


def test_content_over_the_limit_is_payload_too_large_with_the_same_kind_of_sentence():
    with pytest.raises(PayloadTooLarge) as refused:
        parse_frame(SendMessageRequest, _send(content="x" * (MAX_CONTENT_LENGTH + 1)))

    assert refused.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert (refused.value.message, refused.value.message_id) == ("content must be at most 4000 characters.",
                                                                 "3c2f6a0e-msg")


def test_content_of_exactly_the_maximum_length_is_accepted():
    content = "é" * MAX_CONTENT_LENGTH
    assert parse_frame(SendMessageRequest, _send(content=content)).content == content


def test_content_is_stored_as_sent_not_trimmed():
    assert parse_frame(SendMessageRequest, _send(content="  indented\n")).content == "  indented\n"


@pytest.mark.parametrize("body", [None, "", "not json", "[1, 2]", '"sendMessage"', "42"])
def test_a_body_that_is_not_a_json_object_is_refused(body):
    assert _refusal(SendMessageRequest, body).message == 'The frame must be a JSON object with an "action" field.'


@pytest.mark.parametrize(
    ("frame", "sentence"),
    [
        ({"limit": 0}, "limit must be at least 1."),
        ({"limit": 101}, "limit must be at most 100."),
        ({"limit": "10"}, "limit must be an integer."),
        ({"limit": 2.5}, "limit must be an integer."),
        ({"since": ""}, "since must not be empty."),
        ({"since": 12}, "since must be a string."),
    ],
)
def test_bad_sync_frames_are_refused(frame, sentence):
    assert _refusal(SyncMessagesRequest, json.dumps({"action": "syncMessages", **frame})).message == sentence


def test_sync_limit_defaults_to_50():
    assert parse_frame(SyncMessagesRequest, '{"action": "syncMessages"}').limit == 50


def test_unknown_action_names_the_known_ones():
    with pytest.raises(ValidationFailed) as refused:
        reject_unknown_action('{"action": "dance", "x": 1}')

    assert refused.value.message == (
        "Unknown action 'dance'. Known actions: sendMessage, syncMessages, markRead, ackMessages, listConversations, "
        "findUsers, deleteMessage, getHistory, ping."
    )


@pytest.mark.parametrize("body", ["dance", '{"no": "action"}', '{"action": 3}', "[]", None])
def test_a_frame_without_an_action_is_told_what_a_frame_must_be(body):
    with pytest.raises(ValidationFailed) as refused:
        reject_unknown_action(body)

    assert refused.value.message == 'The frame must be a JSON object with an "action" field.'


def test_cursor_round_trips_for_the_same_user():
    position = PendingPosition(message_id="m-7", timestamp="2026-01-01T12:00:00.123Z")

    assert decode_cursor("bob", encode_cursor("bob", position)) == position


def test_cursor_is_the_pending_index_key_in_url_safe_base64():
    cursor = encode_cursor("bob", PendingPosition(message_id="m-7", timestamp="2026-01-01T12:00:00.123Z"))

    key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert key == {"messageId": "m-7", "pendingFor": "bob", "timestamp": "2026-01-01T12:00:00.123Z"}


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "bm90IGpzb24",  # "not json"
        _b64([1, 2]),
        _b64({"messageId": "m", "timestamp": "t"}),
        _b64({"messageId": "m", "pendingFor": "bob", "timestamp": 5}),
        _b64({"messageId": "m", "pendingFor": "alice", "timestamp": "t"}),
    ],
)
def test_undecodable_or_foreign_cursors_are_validation_errors(cursor):
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor("bob", cursor)

    assert refused.value.message.startswith("since ")


def test_timestamps_are_utc_with_milliseconds_and_a_z():
    moment = datetime(2026, 1, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))

    assert iso_timestamp(moment) == "2026-01-01T12:00:00.123Z"
    assert iso_timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


def test_error_frame_has_message_id_only_when_known():
    assert error_frame(ErrorCode.INTERNAL, "x") == {"type": "error", "code": "INTERNAL", "message": "x"}
    assert error_frame(ErrorCode.VALIDATION_ERROR, "y", "m-1")["messageId"] == "m-1"
