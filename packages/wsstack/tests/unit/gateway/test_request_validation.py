"""Request validation of message bodies: model selection and draft-4 schemas, without sockets."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from wsstack.gateway.core import select_model, validate_body
from wsstack.model import Route

NOTE = {
    "type": "object",
    "required": ["action", "text"],
    "properties": {"action": {"type": "string"}, "text": {"type": "string", "minLength": 1}},
}
ANY_OBJECT = {"type": "object"}
ROUTE = Route("note", "Fn", model_selection_expression="$request.body.action", request_models={"note": NOTE})
WITH_DEFAULT = Route("note", "Fn", model_selection_expression="$request.body.kind",
                     request_models={"note": NOTE, "$default": ANY_OBJECT})


def test_a_body_matching_the_selected_model_passes() -> None:
    assert validate_body(ROUTE, json.dumps({"action": "note", "text": "hi"})) is None


def test_a_body_failing_the_model_is_refused_with_the_reason() -> None:
    reason = validate_body(ROUTE, json.dumps({"action": "note", "text": ""}))

    assert reason is not None and "model 'note'" in reason and "text" in reason


def test_no_matching_model_and_no_default_fails_as_on_aws() -> None:
    assert validate_body(ROUTE, json.dumps({"action": "other", "text": "hi"})) is not None
    assert select_model(ROUTE, "{}") == ("", None)


def test_the_default_model_is_the_fallback() -> None:
    assert select_model(WITH_DEFAULT, json.dumps({"kind": "unknown"}))[0] == "$default"
    assert validate_body(WITH_DEFAULT, json.dumps({"kind": "unknown"})) is None
    assert validate_body(WITH_DEFAULT, json.dumps({"kind": "note"})) is not None  # NOTE wants action and text


def test_a_body_that_is_not_json_fails_validation() -> None:
    assert validate_body(WITH_DEFAULT, "hello") == "the body is not JSON"


def test_a_route_without_a_model_selection_expression_validates_nothing() -> None:
    route = Route("note", "Fn", request_models={"note": NOTE})

    assert select_model(route, "not json") == (None, None)
    assert validate_body(route, "not json") is None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(st.sampled_from(["action", "kind", "text", "x"]), JSON_VALUES, max_size=4))
def test_model_selection_and_validation_agree_with_the_schema(document: dict[str, object]) -> None:
    body = json.dumps(document)
    key, schema = select_model(WITH_DEFAULT, body)

    reason = validate_body(WITH_DEFAULT, body)

    expected_key = "note" if document.get("kind") == "note" else "$default"
    assert (key, schema is not None) == (expected_key, True)
    text_ok = isinstance(document.get("text"), str) and len(str(document["text"])) >= 1
    valid_note = isinstance(document.get("action"), str) and text_ok
    assert (reason is None) == (valid_note if key == "note" else True)


@settings(max_examples=300, deadline=None)
@given(body=st.text(max_size=200))
def test_arbitrary_text_never_crashes_validation(body: str) -> None:
    assert validate_body(ROUTE, body) is None or isinstance(validate_body(ROUTE, body), str)
