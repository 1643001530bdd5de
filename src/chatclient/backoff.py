"""Reconnect delays: capped exponential backoff with full jitter."""

from __future__ import annotations

import random as _random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays between reconnect attempts.

    The n-th delay since the last :meth:`reset` is drawn uniformly from
    ``[0, min(max_delay, base * factor**n))`` ("full jitter"): when a server restarts, its
    clients come back spread over the window instead of all at the same instant, and the
    window never grows past ``max_delay``.

    Args:
        base: upper bound of the first delay, in seconds.
        factor: how much the bound grows per failed attempt.
        max_delay: the bound never exceeds this, however many attempts fail.
        random: returns a float in ``[0, 1)``; inject a fixed one in tests.
    """

    def __init__(
        self,
        *,
        base: float = 0.5,
        factor: float = 2.0,
        max_delay: float = 30.0,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if base <= 0 or factor < 1 or max_delay < base:
            raise ValueError("need base > 0, factor >= 1 and max_delay >= base")
        self.base = base
        self.factor = factor
        self.max_delay = max_delay
        self._random = random
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many delays were drawn since the last reset."""
        return self._attempt

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay for ``attempt`` (0-based)."""
        bound = self.base
        # Multiply step by step and stop at the cap: base * factor**attempt overflows a
        # float after enough failures, and the cap is reached long before that.
        for _ in range(attempt):
            bound *= self.factor
            if bound >= self.max_delay:
                return self.max_delay
        return min(bound, self.max_delay)

    def next_delay(self) -> float:
        """Draw the next delay and count the attempt."""
        delay = self._random() * self.ceiling(self._attempt)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from ``base``: call after a connection that worked."""
        self._attempt = 0
