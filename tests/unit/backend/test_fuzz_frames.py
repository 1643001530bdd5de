"""Property-based tests: whatever a client sends, each frame gets exactly one answer that
encodes, with a known code, and nothing leaks.

Frames are generated from arbitrary JSON (deep, wide, lone surrogates, NUL, wrong types,
sizes around every limit) shaped like client frames, routed as API Gateway routes them
(``action`` names a route, else ``$default``), and run through the real handlers over the
in-memory fakes. The counts of what was tried and answered print at the end of the module
(``pytest -s``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from chat_fakes import (
    InMemoryConnectionStore,
    InMemoryConversationStore,
    InMemoryMessageStore,
    InMemoryUserDirectory,
    RecordingNotifier,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.config import override
from chat.domain.errors import ChatError, ErrorCode, ValidationFailed
from chat.domain.models import (
    ID_PATTERN,
    KNOWN_ACTIONS,
    MAX_CONTENT_LENGTH,
    MAX_ID_LENGTH,
    AckMessagesRequest,
    DeleteMessageRequest,
    FindUsersRequest,
    GetHistoryRequest,
    ListConversationsRequest,
    MarkReadRequest,
    SendMessageRequest,
    SyncMessagesRequest,
    UserProfile,
    direct_conversation_id,
)
from chat.domain.protocol import encode_frame, error_frame, parse_frame, reject_unknown_action
from chat.handlers import (
    ack_messages,
    default,
    delete_message,
    find_users,
    get_history,
    list_conversations,
    mark_read,
    ping,
    send_message,
    sync_messages,
)

from .conftest import ALICE, BOB, ENVIRON, FakeLambdaContext, TickingClock, build_ws_event

#: Examples per property; CHAT_FUZZ_EXAMPLES=5000 for a longer run.
EXAMPLES = int(os.environ.get("CHAT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: action -> (handler module, sample event)
ROUTES: dict[str, tuple[Any, str]] = {
    "sendMessage": (send_message, "send_message"),
    "syncMessages": (sync_messages, "sync_messages"),
    "markRead": (mark_read, "mark_read"),
    "ackMessages": (ack_messages, "ack_messages"),
    "listConversations": (list_conversations, "list_conversations"),
    "findUsers": (find_users, "find_users"),
    "deleteMessage": (delete_message, "delete_message"),
    "getHistory": (get_history, "get_history"),
    "ping": (ping, "ping"),
}
#: The fields client frames carry, so generated objects often hit the validators.
FIELDS = ["messageId", "conversationId", "recipientId", "content", "replyToMessageId", "since", "limit",
          "messageIds", "upTo", "cursor", "query", "requestId"]
EDGE_CHARACTERS = ["\ud800", "\udfff", "\udc00", "\x00", "\ufeff", "\u202e", "\U0001f600", "#", '"', "\\", " ",
                   "\n", "_", "dm_"]

KNOWN_CODES = {code.value for code in ErrorCode}

#: What the module tried and how it was answered, printed at teardown.
TALLY: Counter[str] = Counter()

texts = st.lists(st.one_of(st.characters(), st.sampled_from(EDGE_CHARACTERS)), max_size=40).map("".join)
sized = st.sampled_from([0, 1, MAX_ID_LENGTH - 1, MAX_ID_LENGTH, MAX_ID_LENGTH + 1, MAX_CONTENT_LENGTH,
                         MAX_CONTENT_LENGTH + 1]).map(lambda n: "x" * n)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 20, 21, 50, 51, 100, 101]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, sized, st.sampled_from([ALICE.user_id, BOB.user_id]))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=8), st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts), inner, max_size=8)
    ),
    max_leaves=30,
)
actions = st.one_of(st.sampled_from(KNOWN_ACTIONS), texts, scalars)
frames = st.builds(
    lambda action, fields, keep_action: ({"action": action} if keep_action else {}) | fields,
    actions,
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    st.booleans(),
)
# A list of up to 101 items; anything inside.
wide = st.builds(lambda n, item: {"action": "ackMessages", "messageIds": [item] * n},
                 st.sampled_from([0, 1, 100, 101]), scalars)


#: One valid frame per action; ``near_valid`` breaks one field of one of them.
VALID = {
    "sendMessage": {"messageId": "m-1", "conversationId": "conv-ab", "recipientId": BOB.user_id, "content": "hi"},
    "syncMessages": {"limit": 10},
    "markRead": {"conversationId": "conv-ab", "upTo": "m-1"},
    "ackMessages": {"messageIds": ["m-1"]},
    "listConversations": {"limit": 5},
    "findUsers": {"query": "Bo"},
    "deleteMessage": {"messageId": "m-1"},
    "getHistory": {"conversationId": direct_conversation_id(ALICE.user_id, BOB.user_id), "limit": 20},
    "ping": {},
}


def _break(action: str, field: str | None, value: Any, drop: bool) -> dict[str, Any]:
    frame = {"action": action, **VALID[action]}
    if field is not None:
        if drop:
            frame.pop(field, None)
        else:
            frame[field] = value
    return frame


near_valid = st.builds(
    _break, st.sampled_from(list(VALID)), st.one_of(st.none(), st.sampled_from(FIELDS)), json_values, st.booleans()
)


def _deep(depth: int, action: str) -> str:
    return json.dumps({"action": action})[:-1] + ', "messageIds": ' + "[" * depth + "]" * depth + "}"


valid = st.sampled_from(list(VALID)).map(lambda action: {"action": action, **VALID[action]})
#: requestIds valid (ids of every length up to the limit) and not (any other JSON value).
request_ids = st.one_of(
    st.from_regex(ID_PATTERN, fullmatch=True),
    st.sampled_from(["3f2b8c1d-6e4a-4f0b-9d7c-1a2b3c4d5e6f", "x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1)]),
    json_values,
)
with_request_id = st.builds(lambda frame, request_id: frame | {"requestId": request_id},
                            st.one_of(valid, near_valid), request_ids)

bodies = st.one_of(
    valid.map(json.dumps),
    with_request_id.map(json.dumps),
    near_valid.map(json.dumps),
    near_valid.map(json.dumps),
    frames.map(json.dumps),
    wide.map(json.dumps),
    json_values.map(json.dumps),
    texts,
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.builds(_deep, st.integers(min_value=1, max_value=3000), st.sampled_from(KNOWN_ACTIONS)),
)


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[Counter[str]]:
    yield TALLY
    print("\nfuzzed frames:", dict(sorted(TALLY.items())))


def _route(body: str) -> str:
    """API Gateway's route selection on ``$request.body.action``."""
    try:
        action = json.loads(body).get("action")
    except (ValueError, RecursionError, AttributeError):
        return "$default"
    return action if isinstance(action, str) and action in ROUTES else "$default"


def _answers(body: str) -> tuple[str, int, list[dict[str, Any]]]:
    """Run ``body`` through the handler its action routes to; the route, status, and every
    frame the caller got (posts to its connection, or the route response)."""
    connections = InMemoryConnectionStore()
    messages = InMemoryMessageStore(connections)
    directory = InMemoryUserDirectory()
    for user in (ALICE, BOB):
        directory.add(UserProfile(user.user_id, user.user_name, user.user_name.lower()), "x@example.com")
    notifier = RecordingNotifier(["A1"])
    route = _route(body)
    handler, event_name = ROUTES.get(route, (default, "default"))
    event = build_ws_event(event_name, connection_id="A1", user=ALICE)
    event["body"] = body
    with override(environ=ENVIRON, connections=connections, messages=messages,
                  conversations=InMemoryConversationStore(messages), directory=directory,
                  notifier=notifier, clock=TickingClock()):
        result = handler.lambda_handler(event, FakeLambdaContext())
    answers = notifier.frames_for("A1")
    if "body" in result:
        answers.append(json.loads(result["body"]))
    return route, result["statusCode"], answers


@FUZZ
@given(bodies)
def test_every_frame_gets_exactly_one_answer_that_encodes_with_a_known_code(body):
    route, status, answers = _answers(body)

    if route == "ackMessages" and status == 200:
        assert answers == []  # documented: a confirmation answers nothing
        TALLY["ackMessages accepted (no answer)"] += 1
        return
    assert len(answers) == 1, (route, status, answers)
    [answer] = answers
    encode_frame(answer)
    if answer["type"] == "error":
        assert answer["code"] in KNOWN_CODES
        assert answer["code"] != "INTERNAL", answer
        assert "Traceback" not in answer["message"]
        TALLY[answer["code"]] += 1
    else:
        TALLY[f"{answer['type']} (accepted)"] += 1


def _request_id_sent(body: str) -> tuple[bool, Any]:
    """Whether the body is a JSON object with a non-null requestId, and that value."""
    try:
        frame = json.loads(body)
    except (ValueError, RecursionError):
        return False, None
    if not isinstance(frame, dict) or frame.get("requestId") is None:
        return False, None
    return True, frame["requestId"]


@FUZZ
@given(st.one_of(with_request_id.map(json.dumps), bodies))
def test_the_answer_echoes_a_valid_request_id_and_an_invalid_one_is_refused(body):
    _, status, answers = _answers(body)
    sent, request_id = _request_id_sent(body)
    valid_id = sent and isinstance(request_id, str) and ID_PATTERN.fullmatch(request_id) is not None

    for answer in answers:
        if valid_id:
            assert answer["requestId"] == request_id, answer
        else:
            assert "requestId" not in answer, answer
    if sent and not valid_id:
        [answer] = answers
        assert (answer["type"], answer["code"], status) == ("error", "VALIDATION_ERROR", 400), answer
        TALLY["invalid requestId refused"] += 1
    elif valid_id:
        TALLY["requestId echoed"] += len(answers)


REQUESTS = [SendMessageRequest, SyncMessagesRequest, MarkReadRequest, AckMessagesRequest,
            ListConversationsRequest, FindUsersRequest, DeleteMessageRequest, GetHistoryRequest]


@FUZZ
@given(st.sampled_from(REQUESTS), bodies)
def test_parsing_any_body_validates_or_refuses_with_an_encodable_error(model, body):
    try:
        parse_frame(model, body)
    except ChatError as refused:
        assert refused.code in (ErrorCode.VALIDATION_ERROR, ErrorCode.PAYLOAD_TOO_LARGE)
        encode_frame(error_frame(refused.code, refused.message, refused.message_id))
        TALLY[f"parse refused {refused.code.value}"] += 1
    else:
        TALLY["parse accepted"] += 1


@FUZZ
@given(bodies)
def test_an_unknown_action_is_always_refused_with_an_encodable_error(body):
    with pytest.raises(ValidationFailed) as refused:
        reject_unknown_action(body)
    encode_frame(error_frame(refused.value.code, refused.value.message, refused.value.message_id))
    TALLY["$default refused"] += 1
