"""Cognito sign-in (USER_PASSWORD_AUTH) and admin user creation for demos and tests."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import jwt

from chatclient.target import Target

__all__ = ["Tokens", "ensure_user", "sign_in"]


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str | None

    @property
    def sub(self) -> str:
        """The user's id everywhere in the protocol (read without verifying: it is ours)."""
        return str(jwt.decode(self.id_token, options={"verify_signature": False})["sub"])


def sign_in(target: Target, username: str, password: str) -> Tokens:
    """Sign in with USER_PASSWORD_AUTH, as the app does."""
    result = target.cognito().initiate_auth(
        ClientId=target.user_pool_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    return Tokens(result["IdToken"], result["AccessToken"], result.get("RefreshToken"))


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
