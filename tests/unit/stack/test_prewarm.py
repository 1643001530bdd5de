"""Which functions ``wsstack up --prewarm`` starts before ready, and which right after."""

from __future__ import annotations

from pathlib import Path

from wsstack.stack import prewarm_order
from wsstack.template import load_app

ROOT = Path(__file__).resolve().parents[3]


def test_connect_path_comes_first_then_every_route_once():
    app = load_app(ROOT / "packages" / "wsstack" / "tests" / "fixtures" / "sam_websocket_api" / "template.yaml")

    first, routes = prewarm_order(app)

    assert first == ["AuthorizerFunction", "ConnectFunction"]  # it has no $default route
    assert sorted(routes) == ["BoomFunction", "EchoFunction", "PushFunction", "ReplyFunction", "SlowFunction"]


def test_default_route_is_warmed_with_the_connect_path():
    app = load_app(ROOT / "benchmarks" / "app" / "template.yaml")

    first, routes = prewarm_order(app)

    assert first == ["AuthorizerFunction", "ConnectFunction", "EchoFunction"]
    assert "EchoFunction" not in routes and "DisconnectFunction" in routes


def test_chat_app_prewarms_its_authorizer_connect_and_default_before_its_routes():
    app = load_app(ROOT / "template.yaml")

    first, routes = prewarm_order(app)

    assert first == ["AuthorizerFunction", "ConnectFunction", "DefaultFunction"]
    assert "SendMessageFunction" in routes and len(routes) == len(set(routes))
