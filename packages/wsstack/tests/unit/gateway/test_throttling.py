"""Route throttling as API Gateway does it: a token bucket per route of a stage, time injected."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wsstack.gateway.core import RouteThrottles, TokenBucket
from wsstack.model import StageSettings, Throttle


def test_a_full_bucket_lets_a_burst_through_then_throttles() -> None:
    bucket = TokenBucket(Throttle(burst_limit=3, rate_limit=1), now=0.0)

    assert [bucket.take(0.0) for _ in range(5)] == [True, True, True, False, False]


def test_the_rate_refills_the_bucket_up_to_the_burst() -> None:
    bucket = TokenBucket(Throttle(burst_limit=2, rate_limit=2), now=0.0)
    assert [bucket.take(0.0), bucket.take(0.0), bucket.take(0.0)] == [True, True, False]

    assert bucket.take(0.5) is True       # one token back after half a second at 2/s
    assert bucket.take(0.5) is False
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]  # never more than the burst


def test_a_burst_of_zero_throttles_everything() -> None:
    bucket = TokenBucket(Throttle(burst_limit=0, rate_limit=100), now=0.0)

    assert [bucket.take(t) for t in (0.0, 1.0, 60.0)] == [False, False, False]


def test_no_limits_set_throttle_nothing() -> None:
    bucket = TokenBucket(Throttle(), now=0.0)

    assert all(bucket.take(0.0) for _ in range(10_000))


def test_each_route_has_its_own_bucket_and_route_settings_override_the_default() -> None:
    throttles = RouteThrottles(StageSettings(
        default_throttle=Throttle(burst_limit=1, rate_limit=1),
        route_throttles={"chatty": Throttle(burst_limit=3, rate_limit=1)},
    ))

    assert [throttles.allow("a", 0.0), throttles.allow("a", 0.0)] == [True, False]
    assert throttles.allow("b", 0.0) is True  # another route, another bucket
    assert [throttles.allow("chatty", 0.0) for _ in range(4)] == [True, True, True, False]


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(Throttle(burst_limit=1, rate_limit=1), now=10.0)
    assert bucket.take(10.0) is True

    assert bucket.take(5.0) is False


@settings(max_examples=200, deadline=None)
@given(burst=st.integers(0, 50), rate=st.floats(0, 100, allow_nan=False),
       gaps=st.lists(st.floats(0, 5, allow_nan=False), max_size=60))
def test_never_more_than_burst_plus_rate_times_elapsed(burst: int, rate: float, gaps: list[float]) -> None:
    bucket = TokenBucket(Throttle(burst_limit=burst, rate_limit=rate), now=0.0)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        allowed += bucket.take(now)

    assert allowed <= burst + rate * now + 1e-6
