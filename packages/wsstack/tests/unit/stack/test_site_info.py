"""What /wsstack.json tells a browser, by the address the browser reached the site at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wsstack.http11 import Request
from wsstack.site import INFO_PATH, SiteServer

INFO = json.dumps({"websocket_url": "ws://127.0.0.1:3001/dev", "aws_endpoint": "http://127.0.0.1:5005",
                   "user_pool_id": "us-east-1_x"})


def info_seen_from(host: str, bound_to: str, tmp_path: Path) -> dict[str, str]:
    site = SiteServer(tmp_path, lambda: INFO, host=bound_to, port=3000)
    response = site.answer(Request("GET", INFO_PATH, {"host": host}, b"", 3000))
    assert response.status == 200
    return json.loads(response.body)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("192.168.1.5:3000", "192.168.1.5"), ("laptop.local:3000", "laptop.local"), ("[fe80::1]:3000", "[fe80::1]")],
)
def test_a_device_on_the_network_is_told_the_address_it_reached(tmp_path, host, expected):
    info = info_seen_from(host, "0.0.0.0", tmp_path)
    assert info["websocket_url"] == f"ws://{expected}:3001/dev"
    assert info["aws_endpoint"] == f"http://{expected}:5005"
    assert info["user_pool_id"] == "us-east-1_x"


@pytest.mark.parametrize("host", ["127.0.0.1:3000", "localhost:3000", ""])
def test_this_machine_keeps_the_loopback_urls(tmp_path, host):
    assert info_seen_from(host, "0.0.0.0", tmp_path) == json.loads(INFO)


def test_a_loopback_stack_never_rewrites(tmp_path):
    assert info_seen_from("192.168.1.5:3000", "127.0.0.1", tmp_path) == json.loads(INFO)
