"""Which server takes a new connection on the shared stage port, and what it is handed."""

from __future__ import annotations

import asyncio

import pytest

from wsstack.gateway.listener import MAX_REQUEST_LINE, PortSharer, is_websocket_request


@pytest.mark.parametrize(
    ("request_line", "websocket"),
    [
        (b"GET /dev?token=abc HTTP/1.1", True),
        (b"GET /other HTTP/1.1", True),  # refused by the WebSocket server (403), as a wrong stage is
        (b"POST /dev/@connections/abc%3D HTTP/1.1", False),
        (b"GET /dev/@connections/abc%3D HTTP/1.1", False),
        (b"GET /dev/%40connections/abc%3D HTTP/1.1", False),  # as AWS's signed-request examples send it
        (b"DELETE /dev/@connections/abc%3D HTTP/1.1", False),
        (b"PUT /dev HTTP/1.1", False),
        (b"", False),
    ],
)
def test_only_gets_outside_connections_go_to_the_websocket_server(request_line: bytes, websocket: bool) -> None:
    assert is_websocket_request(request_line) is websocket


class Recorder(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.BaseTransport | None = None
        self.data = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.BaseProtocol | None = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


def hand_over(*chunks: bytes) -> tuple[FakeTransport, list[Recorder]]:
    made: list[Recorder] = []

    def factory(name: str) -> Recorder:
        made.append(Recorder(name))
        return made[-1]

    undecided: set[asyncio.Transport] = set()
    sharer = PortSharer(websocket=lambda: factory("websocket"), http=lambda: factory("http"), undecided=undecided)
    transport = FakeTransport()
    sharer.connection_made(transport)
    assert undecided == {transport}
    for chunk in chunks:
        # As asyncio does: once the protocol is switched, the transport feeds the new one.
        receiver = transport.protocol or sharer
        assert isinstance(receiver, asyncio.Protocol)
        receiver.data_received(chunk)
    return transport, made


def test_a_request_line_split_across_reads_is_handed_over_whole_once_complete() -> None:
    transport, made = hand_over(b"POST /dev/@conn", b"ections/abc HTTP/1.1\r\nHost: x\r\n", b"\r\nbody")

    assert [p.name for p in made] == ["http"]
    assert transport.protocol is made[0] and made[0].transport is transport
    assert made[0].data == b"POST /dev/@connections/abc HTTP/1.1\r\nHost: x\r\n\r\nbody"


def test_nothing_is_handed_over_before_the_request_line_ends() -> None:
    transport, made = hand_over(b"GET /dev HTTP/1.")

    assert made == [] and transport.protocol is None


def test_an_endless_request_line_goes_to_the_http_server_which_refuses_it() -> None:
    _, made = hand_over(b"G" * (MAX_REQUEST_LINE + 1))

    assert [p.name for p in made] == ["http"]
