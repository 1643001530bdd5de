"""Which functions ``wsstack up --prewarm`` starts before ready, and which right after."""

from __future__ import annotations

from pathlib import Path

from wsstack.stack import prewarm_order
from wsstack.template import load_app

ROOT = Path(__file__).resolve().parents[3]


def test_connect_path_comes_first_then_every_route_once():
    app = load_app(ROOT / "tests" / "fixtures" / "sam_websocket_api" / "template.yaml")

    connect_path, routes = prewarm_order(app)

    assert connect_path == ["AuthorizerFunction", "ConnectFunction"]
    assert sorted(routes) == ["BoomFunction", "EchoFunction", "PushFunction", "ReplyFunction", "SlowFunction"]


def test_chat_app_prewarms_its_authorizer_and_connect_before_its_routes():
    app = load_app(ROOT / "template.yaml")

    connect_path, routes = prewarm_order(app)

    assert connect_path == ["AuthorizerFunction", "ConnectFunction"]
    assert "SendMessageFunction" in routes and len(routes) == len(set(routes))
