"""Cognito: verifying user pool tokens (RS256 JWTs, with PyJWT) and looking users up."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import jwt

from chat.domain.errors import InvalidToken
from chat.domain.models import Identity, UserProfile

__all__ = ["CognitoJwtVerifier", "CognitoUserDirectory", "SigningKeys", "StaticSigningKeys", "jwks_client"]

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


class CognitoJwtVerifier:
    """Accepts ID and access tokens issued by one user pool to one app client.

    Args:
        issuer: ``https://cognito-idp.<region>.amazonaws.com/<poolId>``; checked against
            ``iss`` even when the keys come from elsewhere (a local emulator signs with
            the real issuer URL).
        client_id: the app client; ID tokens name it in ``aud``, access tokens in ``client_id``.
        keys: where public keys come from, usually :func:`jwks_client`.
    """

    def __init__(self, *, issuer: str, client_id: str, keys: SigningKeys) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self._keys = keys

    def verify(self, token: str) -> Identity:
        claims = self._decode(token)
        token_use = claims.get("token_use")
        if token_use not in _TOKEN_USES:
            raise InvalidToken(f"token_use {token_use!r} is not id or access")
        audience = claims.get("aud") if token_use == "id" else claims.get("client_id")
        if audience != self._client_id:
            raise InvalidToken(f"{token_use} token was issued to another app client")
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
