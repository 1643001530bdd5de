"""Cognito: verifying user pool tokens (RS256 JWTs, with PyJWT) and looking users up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import jwt
from botocore.exceptions import ClientError

from chat.domain.errors import InvalidToken
from chat.domain.models import Identity, UserProfile

__all__ = [
    "AccountCheck",
    "CognitoAccountStatus",
    "CognitoJwtVerifier",
    "CognitoUserDirectory",
    "SigningKeys",
    "StaticSigningKeys",
    "jwks_client",
]

_TOKEN_USES = frozenset({"id", "access"})


class SigningKeys(Protocol):
    """Finds the public key a token was signed with (``jwt.PyJWKClient`` fits)."""

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK: ...


def jwks_client(url: str) -> jwt.PyJWKClient:
    """A JWKS client that keeps keys for the life of the process.

    Cognito rotates keys rarely; an unknown ``kid`` triggers one refetch, rate-limited by
    PyJWT's cooldown so junk tokens cannot make us hammer the JWKS endpoint.
    """
    return jwt.PyJWKClient(url, cache_keys=True, cache_jwk_set=True, lifespan=3600, timeout=5)


class StaticSigningKeys:
    """Signing keys from a JWKS document already in hand (tests, offline tools)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys}

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        try:
            return self._keys[kid]
        except KeyError:
            raise jwt.PyJWKClientError(f"no signing key with kid {kid!r}") from None


def _display_name(claims: dict[str, Any]) -> str:
    # Access tokens carry "username" instead of "cognito:username".
    for claim in ("name", "cognito:username", "email", "username"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value
    return str(claims["sub"])


class AccountCheck(Protocol):
    """Refuses users whose account can no longer sign in (:class:`CognitoAccountStatus` fits)."""

    def check(self, username: str) -> None:
        """Raises:
        InvalidToken: the account is disabled or gone.
        """
        ...


class CognitoAccountStatus:
    """Whether a user's account is still enabled, with ``cognito-idp:AdminGetUser``.

    Cognito's ``AdminDisableUser`` and ``AdminDeleteUser`` do not revoke tokens already
    issued: an ID token stays valid until it expires (an hour by default). The authorizer
    asks Cognito itself, at most once per connect, and keeps each answer for ``ttl``
    seconds in this (warm) process, so a reconnecting client costs no call.

    A disabled or deleted user may therefore still connect for up to ``ttl`` seconds
    after the change through a process that had just admitted them; ``scripts/disable_user.py``
    closes their connections again once that time has passed.

    When Cognito cannot answer (network error, throttling, a 5xx), an answer up to
    ``stale_ttl`` seconds old is used; without one the error propagates: the authorizer
    fails, API Gateway answers the handshake with 500 and the client retries, rather than
    being told its token is refused.

    Args:
        client: a boto3 ``cognito-idp`` client.
        user_pool_id: the pool the users belong to.
        ttl: seconds an answer is trusted.
        stale_ttl: seconds an answer may still be used while Cognito cannot be reached.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        client: Any,
        user_pool_id: str,
        *,
        ttl: float = 60.0,
        stale_ttl: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._pool = user_pool_id
        self._ttl = ttl
        self._stale_ttl = stale_ttl
        self._clock = clock
        #: username -> (refusal reason or None when enabled, when it was learnt)
        self._answers: dict[str, tuple[str | None, float]] = {}

    def check(self, username: str) -> None:
        now = self._clock()
        cached = self._answers.get(username)
        if cached is not None and now - cached[1] < self._ttl:
            refusal = cached[0]
        else:
            try:
                refusal = self._ask(username)
            except Exception:
                if cached is None or now - cached[1] >= self._stale_ttl:
                    raise
                refusal = cached[0]  # Cognito is unreachable: the last answer stands a while
            else:
                self._answers[username] = (refusal, now)
        if refusal is not None:
            raise InvalidToken(refusal)

    def _ask(self, username: str) -> str | None:
        try:
            user = self._client.admin_get_user(UserPoolId=self._pool, Username=username)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "UserNotFoundException":
                return "user no longer exists"
            raise
        if not user.get("Enabled", True):
            return "user is disabled"
        return None


class CognitoJwtVerifier:
    """Accepts ID and access tokens issued by one user pool to one app client.

    Args:
        issuer: ``https://cognito-idp.<region>.amazonaws.com/<poolId>``; checked against
            ``iss`` even when the keys come from elsewhere (a local emulator signs with
            the real issuer URL).
        client_id: the app client; ID tokens name it in ``aud``, access tokens in ``client_id``.
        keys: where public keys come from, usually :func:`jwks_client`.
        accounts: when given, a token whose user is disabled or deleted is refused too
            (a token alone cannot tell: Cognito does not revoke it).
    """

    def __init__(
        self, *, issuer: str, client_id: str, keys: SigningKeys, accounts: AccountCheck | None = None
    ) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self._keys = keys
        self._accounts = accounts

    def verify(self, token: str) -> Identity:
        claims = self._decode(token)
        token_use = claims.get("token_use")
        if token_use not in _TOKEN_USES:
            raise InvalidToken(f"token_use {token_use!r} is not id or access")
        audience = claims.get("aud") if token_use == "id" else claims.get("client_id")
        if audience != self._client_id:
            raise InvalidToken(f"{token_use} token was issued to another app client")
        if self._accounts is not None:
            # Only for a token that is otherwise good: junk costs no Cognito call.
            username = claims.get("cognito:username") or claims.get("username") or claims["sub"]
            self._accounts.check(str(username))
        return Identity(user_id=str(claims["sub"]), user_name=_display_name(claims))

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            # Not the client's fault: let it surface as a server error, not a denial.
            raise
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise InvalidToken(f"no usable signing key: {type(exc).__name__}") from None
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=self._issuer,
                # aud/client_id depend on token_use, so they are checked after decoding.
                options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token from another issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"missing claim {exc.claim}") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"invalid token: {type(exc).__name__}") from None


class CognitoUserDirectory:
    """Finds users with ``cognito-idp:ListUsers``.

    A ListUsers filter names one attribute, so a search is up to three calls (name, then
    username, then email), stopping once enough users are found.

    Args:
        client: a boto3 ``cognito-idp`` client.
        user_pool_id: the pool to search.
    """

    #: Searched in this order: a match on the display name is the likeliest intent.
    SEARCHED = ("name", "username", "email")

    def __init__(self, client: Any, user_pool_id: str) -> None:
        self._client = client
        self._pool = user_pool_id

    def search(self, query: str, limit: int) -> list[UserProfile]:
        # The domain refuses quotes and backslashes, so the value needs no escaping.
        found: dict[str, UserProfile] = {}
        for attribute in self.SEARCHED:
            for user in self._list(f'{attribute} ^= "{query}"', limit):
                profile = _profile(user)
                if profile is not None:
                    found.setdefault(profile.user_id, profile)
            if len(found) >= limit:
                break
        return list(found.values())[:limit]

    def names_of(self, user_ids: Iterable[str]) -> dict[str, str]:
        names = {}
        for user_id in set(user_ids):
            if '"' in user_id or "\\" in user_id:
                continue  # not a sub; and it must not break out of the filter
            for user in self._list(f'sub = "{user_id}"', 1):
                profile = _profile(user)
                if profile is not None:
                    names[profile.user_id] = profile.name
        return names

    def exists(self, user_id: str) -> bool:
        if '"' in user_id or "\\" in user_id:
            return False  # not a sub; and it must not break out of the filter
        return any(_profile(user) is not None for user in self._list(f'sub = "{user_id}"', 1))

    def _list(self, filter_expression: str, limit: int) -> list[dict[str, Any]]:
        # ListUsers returns at most 60 per call; our limits are far below that.
        response = self._client.list_users(UserPoolId=self._pool, Filter=filter_expression, Limit=min(limit, 60))
        return [user for user in response.get("Users", []) if user.get("Enabled", True)]


def _profile(user: dict[str, Any]) -> UserProfile | None:
    attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
    sub = attributes.get("sub")
    if not sub:
        return None
    username = str(user.get("Username", sub))
    return UserProfile(user_id=sub, name=attributes.get("name") or username, username=username)
