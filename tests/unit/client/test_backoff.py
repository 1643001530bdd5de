"""Reconnect delays: exponential, capped, fully jittered, and reset by a connection that worked."""

from __future__ import annotations

import asyncio
import random

import pytest

from chatclient import Backoff, ConnectionState

from .conftest import WAIT


def test_delay_ceiling_doubles_per_attempt_and_stops_at_max_delay():
    backoff = Backoff(base=0.5, factor=2.0, max_delay=8.0, random=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.attempt == 7


def test_delays_are_drawn_from_zero_to_the_ceiling():
    backoff = Backoff(base=1.0, factor=2.0, max_delay=30.0, random=random.Random(7).random)
    delays = [backoff.next_delay() for _ in range(200)]
    for attempt, delay in enumerate(delays):
        assert 0.0 <= delay <= backoff.ceiling(attempt)
    # Full jitter: spread over the window, not clustered at its top.
    capped = delays[10:]
    assert min(capped) < 5.0 and max(capped) > 25.0


def test_a_long_outage_never_overflows_or_exceeds_the_cap():
    backoff = Backoff(base=0.5, max_delay=30.0, random=lambda: 1.0)
    assert backoff.ceiling(100_000) == 30.0


def test_reset_starts_again_from_base():
    backoff = Backoff(base=0.5, max_delay=8.0, random=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize("options", [{"base": 0}, {"factor": 0.5}, {"base": 2.0, "max_delay": 1.0}])
def test_nonsense_settings_are_refused(options):
    with pytest.raises(ValueError):
        Backoff(**options)


def test_client_backs_off_while_refused_and_starts_over_after_a_good_connection(chat_server, new_client):
    async def scenario() -> list[float]:
        async with chat_server() as server:
            server.refuse_handshakes = 3
            client = new_client(server)
            async with client:
                await client.wait_online(WAIT)
                # GIVEN a connection that worked, WHEN it drops
                server.kill_connections()
                await server.wait_for(lambda: server.handshakes == 5 and len(server.sent("syncMessages")) == 2)
                await client.wait_online(WAIT)
            return client._sleep.delays  # type: ignore[attr-defined]

    # THEN the three refusals waited 0.5, 1, 2 and the drop after success only 0.5 again.
    assert asyncio.run(scenario()) == [0.5, 1.0, 2.0, 0.5]


def test_client_reports_reconnecting_with_the_delay_and_the_reason(chat_server, new_client):
    async def scenario() -> list:
        async with chat_server() as server:
            server.refuse_handshakes = 1
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
            return [e async for e in events]

    states = [(e.state, e.retry_in, e.error) for e in asyncio.run(scenario()) if hasattr(e, "state")]
    assert states[:2] == [
        (ConnectionState.CONNECTING, None, None),
        (ConnectionState.RECONNECTING, 0.5, "handshake refused with HTTP 503"),
    ]
    assert [s for s, _, _ in states[2:]] == [
        ConnectionState.CONNECTING, ConnectionState.SYNCING, ConnectionState.ONLINE, ConnectionState.CLOSED,
    ]
