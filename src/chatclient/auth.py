"""Cognito sign-in (USER_PASSWORD_AUTH), token refresh, and admin user creation for demos and tests."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import jwt

from chatclient.target import Target

__all__ = ["SignInRequired", "Tokens", "ensure_user", "refresh_session", "sign_in"]


class SignInRequired(Exception):
    """The refresh token no longer works (expired, revoked, or the user is gone): sign in again."""


@dataclass(frozen=True)
class Tokens:
    """What Cognito hands a signed-in user."""

    id_token: str
    access_token: str
    refresh_token: str | None

    def _claims(self) -> dict[str, object]:
        # Read without verifying: the token came straight from Cognito to us, and the server
        # verifies it anyway. The client only needs to know who it is and when it expires.
        claims = jwt.decode(self.id_token, options={"verify_signature": False})
        return claims if isinstance(claims, dict) else {}

    @property
    def sub(self) -> str:
        """The user's id everywhere in the protocol."""
        return str(self._claims()["sub"])

    @property
    def expires_at(self) -> float:
        """When the ID token expires (``exp``, epoch seconds)."""
        return float(self._claims()["exp"])  # type: ignore[arg-type]

    @property
    def issued_at(self) -> float:
        """When the ID token was issued (``iat``, epoch seconds; ``exp`` - 1 h if absent)."""
        claims = self._claims()
        iat = claims.get("iat")
        return float(iat) if isinstance(iat, int | float) else self.expires_at - 3600.0


def sign_in(target: Target, username: str, password: str) -> Tokens:
    """Sign in with USER_PASSWORD_AUTH, as the app does."""
    result = target.cognito().initiate_auth(
        ClientId=target.user_pool_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    return Tokens(result["IdToken"], result["AccessToken"], result.get("RefreshToken"))


def refresh_session(target: Target, tokens: Tokens) -> Tokens:
    """New ID and access tokens from the refresh token (REFRESH_TOKEN_AUTH).

    Cognito returns no new refresh token unless rotation is on, so the old one is kept then.

    Raises:
        SignInRequired: there is no refresh token, or Cognito refuses it.
    """
    if not tokens.refresh_token:
        raise SignInRequired("no refresh token: sign in again")
    cognito = target.cognito()
    try:
        result = cognito.initiate_auth(
            ClientId=target.user_pool_client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens.refresh_token},
        )["AuthenticationResult"]
    except (cognito.exceptions.NotAuthorizedException, cognito.exceptions.UserNotFoundException) as exc:
        raise SignInRequired(str(exc)) from exc
    return Tokens(result["IdToken"], result["AccessToken"], result.get("RefreshToken") or tokens.refresh_token)


def ensure_user(target: Target, username: str, password: str, *, name: str, email: str) -> None:
    """Create a confirmed user with a permanent password; an existing one gets the password reset."""
    cognito = target.cognito()
    with contextlib.suppress(cognito.exceptions.UsernameExistsException):
        cognito.admin_create_user(
            UserPoolId=target.user_pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "name", "Value": name},
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
    cognito.admin_set_user_password(
        UserPoolId=target.user_pool_id, Username=username, Password=password, Permanent=True
    )
