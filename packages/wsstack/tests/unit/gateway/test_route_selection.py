"""Route selection: exact match on the RouteSelectionExpression, else $default, else none."""

from __future__ import annotations

import json

import pytest

from wsstack.gateway.core import select_route, selection_key
from wsstack.model import Route, WebSocketApi


def make_api(expression: str = "$request.body.action", *, default: bool = True) -> WebSocketApi:
    routes = {
        "$connect": Route("$connect", "ConnectFn"),
        "$disconnect": Route("$disconnect", "DisconnectFn"),
        "sendMessage": Route("sendMessage", "SendFn"),
        "42": Route("42", "NumberFn"),
        "true": Route("true", "BoolFn"),
        "chat/send": Route("chat/send", "ChatSendFn"),
    }
    if default:
        routes["$default"] = Route("$default", "DefaultFn")
    return WebSocketApi("Api", "api", expression, routes, ("dev",))


def routed_to(api: WebSocketApi, body: str) -> str | None:
    route = select_route(api, body)
    return None if route is None else route.route_key


def test_exact_match_selects_the_route() -> None:
    assert routed_to(make_api(), json.dumps({"action": "sendMessage", "x": 1})) == "sendMessage"


def test_match_is_case_sensitive() -> None:
    assert routed_to(make_api(), json.dumps({"action": "SendMessage"})) == "$default"


def test_nested_path_is_followed() -> None:
    api = make_api("$request.body.meta.action")
    assert routed_to(api, json.dumps({"meta": {"action": "sendMessage"}})) == "sendMessage"
    assert routed_to(api, json.dumps({"meta": "sendMessage"})) == "$default"


def test_template_expression_joins_several_values() -> None:
    api = make_api("${request.body.service}/${request.body.action}")
    assert routed_to(api, json.dumps({"service": "chat", "action": "send"})) == "chat/send"
    assert routed_to(api, json.dumps({"service": "chat"})) == "$default"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(42, "42"), (True, "true"), (4.5, "4.5"), ("x", "x")],
)
def test_scalar_values_are_stringified(value: object, expected: str) -> None:
    assert selection_key("$request.body.action", json.dumps({"action": value})) == expected


def test_non_string_value_selects_the_stringified_route() -> None:
    assert routed_to(make_api(), json.dumps({"action": 42})) == "42"
    assert routed_to(make_api(), json.dumps({"action": True})) == "true"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"other": "sendMessage"}),  # missing key
        json.dumps({"action": None}),
        json.dumps({"action": {"nested": 1}}),
        json.dumps({"action": ["sendMessage"]}),
        json.dumps({"action": "unknownAction"}),
        "not json at all",
        "",
        json.dumps(["sendMessage"]),  # JSON, but not an object
        json.dumps("sendMessage"),
    ],
)
def test_unselectable_bodies_go_to_default(body: str) -> None:
    assert routed_to(make_api(), body) == "$default"


def test_without_default_an_unmatched_body_has_no_route() -> None:
    api = make_api(default=False)
    assert select_route(api, json.dumps({"action": "nope"})) is None
    assert select_route(api, "not json") is None
    assert routed_to(api, json.dumps({"action": "sendMessage"})) == "sendMessage"


@pytest.mark.parametrize("key", ["$connect", "$disconnect"])
def test_a_body_cannot_select_the_connection_routes(key: str) -> None:
    assert routed_to(make_api(), json.dumps({"action": key})) == "$default"
    assert select_route(make_api(default=False), json.dumps({"action": key})) is None


def test_constant_expression_selects_the_same_route_for_every_body() -> None:
    api = make_api("sendMessage")
    assert routed_to(api, "anything") == "sendMessage"


# Deeply nested JSON: valid JSON that AWS routes, deeper than Python's recursion limit.
DEEP = 5000


def test_deeply_nested_array_goes_to_default() -> None:
    body = "[" * 2000 + "]" * 2000
    assert routed_to(make_api(), body) == "$default"
    assert routed_to(make_api(default=False), body) is None


def test_deeply_nested_object_is_routed_by_its_selection_key() -> None:
    body = json.dumps({"action": "sendMessage", "deep": "@"}).replace('"@"', "[" * DEEP + "]" * DEEP)
    assert routed_to(make_api(), body) == "sendMessage"
    nested_path = '{"meta": ' * DEEP + '"x"' + "}" * DEEP
    assert selection_key("$request.body.meta.meta.meta", nested_path) is None  # an object, not a scalar


def test_deeply_nested_but_malformed_body_goes_to_default() -> None:
    body = '{"action": "sendMessage", "deep": ' + "[" * DEEP + "]" * (DEEP - 1) + "}"
    assert routed_to(make_api(), body) == "$default"


def test_an_integer_beyond_pythons_digit_limit_does_not_unroute_the_message() -> None:
    body = '{"action": "sendMessage", "n": ' + "7" * 5000 + "}"
    assert routed_to(make_api(), body) == "sendMessage"
    assert selection_key("$request.body.n", body) == "7" * 5000
