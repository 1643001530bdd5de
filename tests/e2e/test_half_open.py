"""A half-open connection loses nothing.

When a phone's network dies silently, API Gateway keeps accepting ``@connections`` posts for
its connection until it notices. A message pushed then never arrives, so it must stay
pending until the recipient's device confirms it (``ackMessages``); the next sync, on a new
socket, brings it.

The dead network is a relay between bob's client and the gateway that stops forwarding
without closing either side: the gateway's writes still succeed, and nothing reaches bob.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from chatclient import ChatSession, conversation_id

from .conftest import frames_within

pytestmark = pytest.mark.e2e

WAIT = 10.0


class StallingRelay:
    """A TCP relay on 127.0.0.1 (port 0) to ``upstream`` that can go silent.

    After :meth:`stall`, bytes from either side are read and dropped, as a network that
    died without a FIN or RST does; no socket is closed.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stalled = threading.Event()
        #: Set when the gateway wrote to bob's connection after the stall.
        self.swallowed = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def stall(self) -> None:
        self._stalled.set()

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=WAIT)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            gateway = socket.create_connection(self._upstream, timeout=WAIT)
            gateway.settimeout(None)
            self._sockets += [client, gateway]
            for source, sink, from_gateway in ((client, gateway, False), (gateway, client, True)):
                thread = threading.Thread(target=self._pump, args=(source, sink, from_gateway), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_gateway: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self._stalled.is_set():
                if from_gateway:
                    self.swallowed.set()
                continue
            try:
                sink.sendall(data)
            except OSError:
                return


def _frames_until(session: ChatSession, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """Read frames until ``done(frames)``; each read is bounded."""
    frames: list[dict[str, Any]] = []
    while not done(frames):
        frames.append(session.receive(timeout=WAIT))
    return frames


def _delivered(frames: list[dict[str, Any]], message_id: str) -> int:
    """How many ``status: delivered`` frames for ``message_id`` are among ``frames``."""
    return sum(
        1
        for f in frames
        if (f.get("type"), f.get("messageId"), f.get("status")) == ("status", message_id, "delivered")
    )


def test_a_message_pushed_into_a_half_open_connection_arrives_with_the_next_sync(stack, new_user):
    if not stack.local:
        pytest.skip("relays plain ws:// to the local gateway and reads the emulator's tables")
    gateway_url = urlsplit(stack.target.websocket_url)
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    relay = StallingRelay((gateway_url.hostname or "127.0.0.1", gateway_url.port or 80))
    through_relay = dataclasses.replace(
        stack.target, websocket_url=f"ws://127.0.0.1:{relay.port}{gateway_url.path}"
    )
    try:
        with ChatSession(stack.target, alice.id_token) as a:
            b1 = ChatSession(through_relay, bob.id_token)
            # GIVEN bob's first connection works: he gets a message and confirms it
            before = a.send_message(conversation, bob.sub, "before the network died")
            assert b1.receive_until("message")["message"]["messageId"] == before
            frames = _frames_until(a, lambda seen: _delivered(seen, before) == 1)
            assert _delivered(frames + frames_within(a), before) == 1

            # WHEN his network dies silently and alice writes
            relay.stall()
            lost = a.send_message(conversation, bob.sub, "into the void")
            assert a.receive_until("ack")["messageId"] == lost
            # THEN the gateway accepted the push for the dead connection...
            assert relay.swallowed.wait(WAIT)
            # ...but the message is still pending for bob, not delivered
            item = stack.dynamodb().get_item(
                TableName=stack.table("MessagesTable"), Key={"messageId": {"S": lost}}, ConsistentRead=True
            )["Item"]
            assert (item["status"]["S"], item["pendingFor"]["S"]) == ("sent", bob.sub)

            # WHEN bob reconnects on a new socket and syncs
            with ChatSession(stack.target, bob.id_token) as b2:
                b2.send("syncMessages")
                page = b2.receive_until("sync")
                # THEN the message arrives, and once confirmed alice sees it delivered, once
                assert [m["messageId"] for m in page["messages"]] == [lost]
                frames = _frames_until(a, lambda seen: _delivered(seen, lost) == 1)
                # ...and nothing repeats it in the window after (the old socket's push included).
                assert _delivered(frames + frames_within(a), lost) == 1
                b2.send("syncMessages")
                assert b2.receive_until("sync")["messages"] == []
            relay.close()  # the old socket finally ends; closing it must not wait on the dead relay
            b1.close()
    finally:
        relay.close()
