"""Which functions ``wsstack up --prewarm`` starts before ready, and in what order."""

from __future__ import annotations

from pathlib import Path

from wsstack.stack import prewarm_order
from wsstack.template import load_app

ROOT = Path(__file__).resolve().parents[3]


def test_connect_path_comes_first_then_every_route_once():
    app = load_app(ROOT / "tests" / "fixtures" / "sam_websocket_api" / "template.yaml")

    order = prewarm_order(app)

    assert order[:2] == ["AuthorizerFunction", "ConnectFunction"]
    assert sorted(order[2:]) == ["BoomFunction", "EchoFunction", "PushFunction", "ReplyFunction", "SlowFunction"]


def test_chat_app_prewarms_its_authorizer_and_connect_before_its_routes():
    app = load_app(ROOT / "template.yaml")

    order = prewarm_order(app)

    assert order[:2] == ["AuthorizerFunction", "ConnectFunction"]
    assert "SendMessageFunction" in order and len(order) == len(set(order))
