"""ID tokens are refreshed ahead of expiry, and a refused handshake gets one fresh try."""

from __future__ import annotations

import asyncio

import pytest

from chatclient import ClientClosed, CognitoTokenSource, ConnectionState, SignInRequired, Tokens

from .conftest import ALICE, WAIT, FixedTokens, make_tokens

T0 = 1_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Refresher:
    """Cognito's REFRESH_TOKEN_AUTH, scripted: each call issues a token valid for an hour from now."""

    def __init__(self, clock: Clock, *, fail_with: list[Exception] | None = None) -> None:
        self.clock = clock
        self.calls: list[Tokens] = []
        self.fail_with = list(fail_with or [])

    def __call__(self, old: Tokens) -> Tokens:
        self.calls.append(old)
        if self.fail_with:
            raise self.fail_with.pop(0)
        return make_tokens(ALICE, issued_at=self.clock.now, tag=str(len(self.calls) + 1))


class StopLoop(Exception):
    """Ends keep_fresh's loop after a fixed number of sleeps."""


class ScriptedSleep:
    """Advances the fake clock by each delay; stops the loop after ``limit`` sleeps."""

    def __init__(self, clock: Clock, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        if len(self.delays) == self.limit:
            raise StopLoop
        self.delays.append(delay)
        self.clock.now += delay


def test_refresh_is_due_the_margin_before_expiry():
    source = CognitoTokenSource(lambda t: t, make_tokens(issued_at=T0, lifetime=3600), refresh_margin=300)
    assert source.refresh_due_at == T0 + 3600 - 300


def test_a_short_lived_token_is_refreshed_halfway_not_in_a_loop():
    source = CognitoTokenSource(lambda t: t, make_tokens(issued_at=T0, lifetime=120), refresh_margin=300)
    assert source.refresh_due_at == T0 + 60


def test_the_token_is_reused_until_the_refresh_is_due():
    clock = Clock(T0 + 3000)
    refresher = Refresher(clock)
    first = make_tokens(issued_at=T0)
    source = CognitoTokenSource(refresher, first, refresh_margin=300, clock=clock)

    assert asyncio.run(source.id_token()) == first.id_token
    assert refresher.calls == []

    clock.now = T0 + 3300  # the margin starts
    fresh = asyncio.run(source.id_token())
    assert fresh != first.id_token
    assert refresher.calls == [first]
    assert source.tokens.refresh_token == "refresh-2"


def test_keep_fresh_sleeps_until_each_refresh_is_due():
    clock = Clock(T0)
    refresher = Refresher(clock)
    sleep = ScriptedSleep(clock, limit=3)
    source = CognitoTokenSource(refresher, make_tokens(issued_at=T0), refresh_margin=300, clock=clock, sleep=sleep)

    with pytest.raises(StopLoop):
        asyncio.run(source.keep_fresh())

    # 55 minutes to the first refresh; each new token lives an hour, so 55 minutes again.
    assert sleep.delays == [3300, 3300, 3300]
    assert len(refresher.calls) == 3
    assert source.refreshes == 3


def test_keep_fresh_retries_after_a_network_failure_and_stops_when_sign_in_is_required():
    clock = Clock(T0)
    refresher = Refresher(clock, fail_with=[ConnectionError("Cognito unreachable"), SignInRequired("revoked")])
    sleep = ScriptedSleep(clock, limit=10)
    source = CognitoTokenSource(refresher, make_tokens(issued_at=T0), refresh_margin=300, retry_delay=30,
                                clock=clock, sleep=sleep)

    with pytest.raises(SignInRequired):
        asyncio.run(source.keep_fresh())
    assert sleep.delays == [3300, 30, 0]


def test_concurrent_callers_share_one_refresh():
    clock = Clock(T0 + 3500)
    refresher = Refresher(clock)
    source = CognitoTokenSource(refresher, make_tokens(issued_at=T0), refresh_margin=300, clock=clock)

    async def three_at_once() -> set[str]:
        return set(await asyncio.gather(*(source.id_token() for _ in range(3))))

    assert len(asyncio.run(three_at_once())) == 1
    assert len(refresher.calls) == 1


def test_a_refresh_that_returns_another_user_is_refused():
    source = CognitoTokenSource(lambda old: make_tokens("someone-else"), make_tokens(ALICE))
    with pytest.raises(SignInRequired):
        asyncio.run(source.refresh())


def test_client_refreshes_once_when_the_handshake_is_refused_with_403(chat_server, new_client):
    async def scenario() -> tuple[list[str | None], int]:
        async with chat_server(valid_tokens=("fresh",)) as server:
            tokens = FixedTokens("expired", "fresh")
            async with new_client(server, tokens) as client:
                await client.wait_online(WAIT)
            return server.tokens_seen, tokens.forced

    seen, forced = asyncio.run(scenario())
    assert seen == ["expired", "fresh"]
    assert forced == 1


def test_client_stops_when_even_a_fresh_token_is_refused(chat_server, new_client):
    async def scenario() -> tuple[list, str | None]:
        async with chat_server(valid_tokens=("never",)) as server:
            client = new_client(server, FixedTokens("stale", "also-refused", "unused"))
            events = client.events()
            await client.start()
            with pytest.raises(ClientClosed):
                await client.wait_online(WAIT)
            await client.close()
            return [e async for e in events], client.stop_reason

    events, reason = asyncio.run(scenario())
    assert events[-1].state is ConnectionState.CLOSED
    assert reason is not None and "403" in reason


def test_client_stops_when_the_refresh_token_is_refused(chat_server, new_client):
    async def scenario() -> str | None:
        async with chat_server(valid_tokens=("never",)) as server:
            client = new_client(server, FixedTokens("stale"))
            await client.start()
            with pytest.raises(ClientClosed):
                await client.wait_online(WAIT)
            await client.close()
            return client.stop_reason

    assert "sign in again" in (asyncio.run(scenario()) or "")
