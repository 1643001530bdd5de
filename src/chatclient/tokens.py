"""Where the client gets the ID token it connects with, and how it stays fresh.

The authorizer checks the token only when a connection opens: an open connection outlives
its token. Refreshing early matters for the *next* connect, which may come at any moment
(a dropped network, the 2-hour limit), and should not wait for Cognito or fail with 403.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from chatclient.auth import SignInRequired, Tokens, refresh_session
from chatclient.target import Target

__all__ = ["CognitoTokenSource", "StaticTokenSource", "TokenSource"]

logger = logging.getLogger(__name__)


@runtime_checkable
class TokenSource(Protocol):
    """What :class:`~chatclient.client.ChatClient` needs to authenticate."""

    @property
    def user_id(self) -> str:
        """The signed-in user's ``sub``."""
        ...

    async def id_token(self, *, force_refresh: bool = False) -> str:
        """A token valid for a while yet; ``force_refresh`` after the server refused one.

        Raises:
            SignInRequired: no usable token can be had without the user signing in again.
        """
        ...

    async def keep_fresh(self) -> None:
        """Refresh ahead of expiry until cancelled (return at once if there is nothing to do)."""
        ...


class StaticTokenSource:
    """A fixed token (scripts and tests that do not run for an hour)."""

    def __init__(self, tokens: Tokens) -> None:
        self._tokens = tokens

    @property
    def user_id(self) -> str:
        return self._tokens.sub

    async def id_token(self, *, force_refresh: bool = False) -> str:
        if force_refresh:
            raise SignInRequired("the token was refused and this source cannot refresh it")
        return self._tokens.id_token

    async def keep_fresh(self) -> None:
        return None


class CognitoTokenSource:
    """Tokens from Cognito, refreshed with REFRESH_TOKEN_AUTH ahead of expiry.

    The refresh is due ``refresh_margin`` seconds before the ID token expires, or halfway
    through its life if that is sooner (a short-lived token must not be refreshed in a loop).

    Args:
        refresher: blocking call from old tokens to new ones; by default
            :func:`chatclient.auth.refresh_session` against ``target``. It runs in a thread.
        tokens: what sign-in returned.
        refresh_margin: seconds before expiry at which a refresh is due.
        retry_delay: seconds to wait after a refresh failed for a reason other than
            :class:`SignInRequired` (Cognito unreachable) before trying again.
        clock: epoch seconds now; inject a fake one in tests.
        sleep: the sleep :meth:`keep_fresh` uses; inject a fake one in tests.
    """

    def __init__(
        self,
        refresher: Callable[[Tokens], Tokens],
        tokens: Tokens,
        *,
        refresh_margin: float = 300.0,
        retry_delay: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._refresher = refresher
        self._tokens = tokens
        self._user_id = tokens.sub
        self.refresh_margin = refresh_margin
        self.retry_delay = retry_delay
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        #: How many refreshes succeeded (observable by apps and tests).
        self.refreshes = 0

    @classmethod
    def for_target(cls, target: Target, tokens: Tokens, **options: object) -> CognitoTokenSource:
        """Refresh against ``target``'s user pool client."""
        return cls(lambda old: refresh_session(target, old), tokens, **options)  # type: ignore[arg-type]

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def tokens(self) -> Tokens:
        """The current tokens (the app may need the access token for other calls)."""
        return self._tokens

    @property
    def refresh_due_at(self) -> float:
        """Epoch seconds at which the current ID token should be replaced."""
        tokens = self._tokens
        lifetime = max(0.0, tokens.expires_at - tokens.issued_at)
        return tokens.expires_at - min(self.refresh_margin, lifetime / 2)

    async def id_token(self, *, force_refresh: bool = False) -> str:
        if force_refresh or self._clock() >= self.refresh_due_at:
            await self.refresh()
        return self._tokens.id_token

    async def refresh(self) -> Tokens:
        """Get new tokens now; concurrent callers share one Cognito call.

        Raises:
            SignInRequired: Cognito refused the refresh token.
        """
        seen = self._tokens
        async with self._lock:
            if self._tokens is not seen:  # someone refreshed while we waited for the lock
                return self._tokens
            fresh = await asyncio.to_thread(self._refresher, seen)
            if fresh.sub != self._user_id:
                raise SignInRequired("the refreshed token belongs to another user")
            self._tokens = fresh
            self.refreshes += 1
            logger.info("ID token refreshed; valid until %s", time.strftime("%H:%M:%S", time.gmtime(fresh.expires_at)))
            return fresh

    async def keep_fresh(self) -> None:
        """Sleep until the refresh is due, refresh, repeat; stop on :class:`SignInRequired`.

        Raises:
            SignInRequired: the user must sign in again.
        """
        while True:
            await self._sleep(max(0.0, self.refresh_due_at - self._clock()))
            try:
                await self.refresh()
            except SignInRequired:
                raise
            except Exception as exc:  # network trouble: the next connect retries anyway
                logger.warning("token refresh failed (%s); retrying in %.0f s", exc, self.retry_delay)
                await self._sleep(self.retry_delay)
