"""``wsstack up --host``: what it accepts, what URLs name, what the certificate covers, what the banner says."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsstack import cli, hosts
from wsstack.cli import _banner, build_parser
from wsstack.stack import StackInfo


def test_host_defaults_to_this_machine_only_and_takes_every_interface() -> None:
    assert build_parser().parse_args(["up"]).host == "127.0.0.1"
    assert build_parser().parse_args(["up", "--host", "0.0.0.0"]).host == "0.0.0.0"


@pytest.mark.parametrize("value", ["localhost", "::", "300.1.1.1", ""])
def test_a_host_that_is_not_an_ipv4_address_is_refused_before_anything_starts(value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["up", "--host", value])

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--host" in err
    assert "is not an IPv4 address; give 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)" in err


def test_urls_name_127_0_0_1_for_every_interface_and_the_address_itself_otherwise() -> None:
    assert hosts.url_host("0.0.0.0") == "127.0.0.1"
    assert hosts.url_host("127.0.0.1") == "127.0.0.1"
    assert hosts.url_host("192.0.2.7") == "192.0.2.7"


def test_the_certificate_covers_what_workers_local_clients_and_other_devices_use() -> None:
    assert hosts.certificate_names("127.0.0.1") == ["127.0.0.1", "localhost"]
    assert hosts.certificate_names("0.0.0.0", "192.0.2.7") == ["127.0.0.1", "localhost", "192.0.2.7"]
    assert hosts.certificate_names("0.0.0.0", None) == ["127.0.0.1", "localhost"]
    assert hosts.certificate_names("192.0.2.7") == ["127.0.0.1", "localhost", "192.0.2.7"]


def _info(host: str) -> StackInfo:
    return StackInfo(
        websocket_url="ws://127.0.0.1:3001/dev", connections_url="http://127.0.0.1:3001/dev/@connections",
        aws_endpoint="http://127.0.0.1:5005", region="us-east-1", user_pool_id=None, user_pool_client_id=None,
        host=host,
    )


class _NoApis:
    apis: dict[str, object] = {}


def test_the_banner_says_where_another_device_connects_when_bound_to_every_interface(monkeypatch) -> None:
    monkeypatch.setattr(cli, "outward_address", lambda: "192.0.2.7")

    every = _banner(_info("0.0.0.0"), _NoApis(), Path("state.json"), 1.0)
    local = _banner(_info("127.0.0.1"), _NoApis(), Path("state.json"), 1.0)

    assert "Listening on      0.0.0.0 (every interface; from another device: ws://192.0.2.7:3001/dev)" in every
    assert "Listening on" not in local
    network = "reachable from the network: @connections takes SigV4-signed requests only"
    assert network in every
    assert network not in local


def test_the_banner_still_says_every_interface_on_a_machine_without_a_network(monkeypatch) -> None:
    monkeypatch.setattr(cli, "outward_address", lambda: None)

    assert "Listening on      0.0.0.0 (every interface)\n" in _banner(_info("0.0.0.0"), _NoApis(), Path("s"), 1.0)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
     ("0.0.0.0", False), ("192.168.1.20", False), ("example.com", False)],
)
def test_only_loopback_addresses_keep_the_stack_on_this_machine(host: str, loopback: bool) -> None:
    assert hosts.is_loopback(host) is loopback
