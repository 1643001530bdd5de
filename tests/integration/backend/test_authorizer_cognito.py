"""The $connect authorizer with real RS256 tokens from the template's user pool (moto).

moto signs every pool's tokens with one key and serves its JWKS over HTTP only in server
mode, so the verifier is handed moto's public JWKS through the composition root.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import jwt
import pytest
from moto.utilities.utils import load_resource

from chat.adapters.cognito import StaticSigningKeys
from chat.config import override
from chat.handlers import authorizer

EVENT = json.loads((Path(__file__).resolve().parents[3] / "events" / "authorizer.json").read_text())
PASSWORD = "Passw0rd-it"


@pytest.fixture
def cognito(aws):
    return boto3.client("cognito-idp", region_name="us-east-1")


@pytest.fixture
def pool(aws) -> tuple[str, str]:
    return aws["UserPool"], aws["UserPoolClient"]


@pytest.fixture
def authorize(pool, lambda_context):
    """Run the authorizer handler as the template configures it, with moto's keys."""
    pool_id, client_id = pool
    environ = {
        "USER_POOL_ID": pool_id,
        "USER_POOL_CLIENT_ID": client_id,
        "COGNITO_ISSUER": f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}",
        "JWKS_URL": "",
    }
    keys = StaticSigningKeys(load_resource("cognitoidp/resources/jwks-public.json"))

    def run(token: str | None) -> dict:
        event = {**EVENT, "queryStringParameters": {"token": token} if token is not None else None}
        with override(environ=environ, signing_keys=keys):
            return authorizer.lambda_handler(event, lambda_context)

    return run


def _sign_up(cognito, pool_id: str, username: str, name: str) -> str:
    """Create a confirmed user; returns their sub."""
    created = cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "name", "Value": name}, {"Name": "email", "Value": f"{username}@example.com"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub")


def _sign_in(cognito, client_id: str, username: str) -> dict[str, str]:
    return cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]


@pytest.fixture
def alice(cognito, pool) -> tuple[str, dict[str, str]]:
    pool_id, client_id = pool
    sub = _sign_up(cognito, pool_id, "alice", "Alice")
    return sub, _sign_in(cognito, client_id, "alice")


def _resigned(token: str, **changes) -> str:
    """The same claims with ``changes``, signed with the pool's own (moto's) private key."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    key = jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json")).key
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy"})


def _effect(policy: dict) -> str:
    [statement] = policy["policyDocument"]["Statement"]
    assert statement["Resource"] == EVENT["methodArn"]
    assert statement["Action"] == "execute-api:Invoke"
    return statement["Effect"]


def _denial_reasons(caplog) -> list[str]:
    return [r.reason for r in caplog.records if r.getMessage() == "Connection denied"]


def test_a_valid_id_token_is_allowed_with_the_user_in_the_context(authorize, alice):
    sub, tokens = alice

    policy = authorize(tokens["IdToken"])

    assert _effect(policy) == "Allow"
    assert policy["principalId"] == sub
    assert policy["context"] == {"userId": sub, "userName": "Alice"}


def test_a_valid_access_token_is_allowed(authorize, alice):
    sub, tokens = alice

    policy = authorize(tokens["AccessToken"])

    assert _effect(policy) == "Allow"
    assert policy["context"]["userId"] == sub


def test_an_expired_token_is_denied(authorize, alice):
    _, tokens = alice
    now = int(time.time())

    assert _effect(authorize(_resigned(tokens["IdToken"], iat=now - 7200, exp=now - 3600))) == "Deny"


def test_a_token_for_another_app_client_is_denied(authorize, cognito, pool, alice, caplog):
    pool_id, _ = pool
    other_client = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="other-app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]

    tokens = _sign_in(cognito, other_client, "alice")

    assert _effect(authorize(tokens["IdToken"])) == "Deny"
    assert _effect(authorize(tokens["AccessToken"])) == "Deny"
    assert _denial_reasons(caplog) == [
        "id token was issued to another app client",
        "access token was issued to another app client",
    ]


def test_a_token_from_another_pool_is_denied_although_the_signature_checks_out(authorize, cognito, caplog):
    # moto signs all pools with one key: only the issuer check tells the pools apart.
    other_pool = cognito.create_user_pool(PoolName="elsewhere")["UserPool"]["Id"]
    other_client = cognito.create_user_pool_client(
        UserPoolId=other_pool, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    _sign_up(cognito, other_pool, "eve", "Eve")

    tokens = _sign_in(cognito, other_client, "eve")

    assert _effect(authorize(tokens["IdToken"])) == "Deny"
    assert _denial_reasons(caplog) == ["token from another issuer"]


@pytest.mark.parametrize("token_use", ["refresh", "custom"])
def test_a_token_that_is_neither_id_nor_access_is_denied(authorize, alice, token_use):
    _, tokens = alice

    assert _effect(authorize(_resigned(tokens["IdToken"], token_use=token_use))) == "Deny"


@pytest.mark.parametrize("garbage", ["not-a-jwt", "", None])
def test_garbage_or_missing_tokens_are_denied(authorize, garbage):
    assert _effect(authorize(garbage)) == "Deny"


def test_a_denial_is_logged_with_its_reason_and_without_the_token(authorize, alice, caplog):
    _, tokens = alice
    expired = _resigned(tokens["IdToken"], exp=int(time.time()) - 10)

    authorize(expired)

    assert _denial_reasons(caplog) == ["token expired"]
    assert all(expired not in str(vars(record)) for record in caplog.records)


def test_a_disabled_user_is_denied_although_their_token_is_still_valid(authorize, cognito, pool, alice, caplog):
    # Cognito does not revoke tokens on AdminDisableUser: the authorizer must ask.
    pool_id, _ = pool
    _, tokens = alice
    cognito.admin_disable_user(UserPoolId=pool_id, Username="alice")

    assert _effect(authorize(tokens["IdToken"])) == "Deny"
    assert _effect(authorize(tokens["AccessToken"])) == "Deny"
    assert _denial_reasons(caplog) == ["user is disabled", "user is disabled"]

    cognito.admin_enable_user(UserPoolId=pool_id, Username="alice")
    assert _effect(authorize(tokens["IdToken"])) == "Allow"


def test_a_deleted_user_is_denied_not_an_error(authorize, cognito, pool, alice, caplog):
    pool_id, _ = pool
    _, tokens = alice
    cognito.admin_delete_user(UserPoolId=pool_id, Username="alice")

    assert _effect(authorize(tokens["IdToken"])) == "Deny"
    assert _denial_reasons(caplog) == ["user no longer exists"]
