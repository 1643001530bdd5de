"""Verifies Cognito user pool tokens (RS256 JWTs) with PyJWT."""

from __future__ import annotations

from typing import Any, Protocol

import jwt

from chat.domain.errors import InvalidToken
from chat.domain.models import Identity

__all__ = ["CognitoJwtVerifier", "SigningKeys", "StaticSigningKeys", "jwks_client"]

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
