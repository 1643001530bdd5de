"""The Cognito JWT verifier, with keys made here (no network): what it accepts and refuses."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from chat.adapters.cognito import CognitoAccountStatus, CognitoJwtVerifier, StaticSigningKeys
from chat.domain.errors import InvalidToken

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Unit0Pool"
CLIENT_ID = "3n4b5urk1ft4fl3mg5e62d9ado"
KID = "unit-key-1"


@pytest.fixture(scope="module")
def pool_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def verifier(pool_key):
    public = json.loads(RSAAlgorithm.to_jwk(pool_key.public_key()))
    public.update(kid=KID, alg="RS256", use="sig")
    return CognitoJwtVerifier(issuer=ISSUER, client_id=CLIENT_ID, keys=StaticSigningKeys({"keys": [public]}))


@pytest.fixture
def sign(pool_key):
    def make(*, key=None, kid=KID, algorithm="RS256", drop=(), **overrides) -> str:
        now = int(time.time())
        claims = {
            "sub": "7d8ca528-4931-4254-9273-ea5ee853f271",
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "token_use": "id",
            "cognito:username": "alice",
            "email": "alice@example.com",
            "iat": now,
            "exp": now + 3600,
            **overrides,
        }
        for claim in drop:
            claims.pop(claim)
        return jwt.encode(claims, key or pool_key, algorithm=algorithm, headers={"kid": kid})

    return make


def _reason(verifier, token) -> str:
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(token)
    return refused.value.reason


def test_an_id_token_for_our_client_gives_the_sub_and_the_name(verifier, sign):
    user = verifier.verify(sign(name="Alice Liddell"))

    assert (user.user_id, user.user_name) == ("7d8ca528-4931-4254-9273-ea5ee853f271", "Alice Liddell")


def test_without_a_name_claim_the_username_is_shown(verifier, sign):
    assert verifier.verify(sign()).user_name == "alice"


def test_an_access_token_is_checked_against_client_id(verifier, sign):
    # Access tokens carry "username" and "client_id", and no aud, email or cognito:username.
    token = sign(token_use="access", client_id=CLIENT_ID, username="alice", drop=("aud", "cognito:username", "email"))

    assert verifier.verify(token).user_name == "alice"


def test_an_access_token_for_another_client_is_refused(verifier, sign):
    token = sign(token_use="access", client_id="another-client", drop=("aud",))

    assert "another app client" in _reason(verifier, token)


def test_an_id_token_for_another_client_is_refused(verifier, sign):
    assert "another app client" in _reason(verifier, sign(aud="another-client"))


def test_an_expired_token_is_refused(verifier, sign):
    assert _reason(verifier, sign(exp=int(time.time()) - 60)) == "token expired"


def test_a_token_from_another_pool_is_refused(verifier, sign):
    other_pool = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"

    assert _reason(verifier, sign(iss=other_pool)) == "token from another issuer"


@pytest.mark.parametrize("token_use", ["refresh", None])
def test_a_token_that_is_neither_id_nor_access_is_refused(verifier, sign, token_use):
    token = sign(token_use=token_use) if token_use else sign(drop=("token_use",))

    assert "token_use" in _reason(verifier, token)


def test_a_token_signed_by_another_key_under_our_kid_is_refused(verifier, sign):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    assert _reason(verifier, sign(key=forger)) == "bad signature"


def test_a_token_with_an_unknown_kid_is_refused(verifier, sign):
    assert "signing key" in _reason(verifier, sign(kid="rotated-away"))


def test_an_hmac_signed_token_is_refused(verifier):
    claims = {"sub": "x", "iss": ISSUER, "aud": CLIENT_ID, "token_use": "id", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, "a-shared-secret-the-attacker-chose-32b", algorithm="HS256", headers={"kid": KID})

    with pytest.raises(InvalidToken):
        verifier.verify(token)


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "...."])
def test_garbage_is_refused(verifier, garbage):
    with pytest.raises(InvalidToken):
        verifier.verify(garbage)


def test_a_token_without_exp_is_refused(verifier, sign):
    assert _reason(verifier, sign(drop=("exp",))) == "missing claim exp"


# ------------------------------------------------------------------ account status
#
# Cognito does not revoke a disabled or deleted user's tokens: the verifier asks AdminGetUser.


class FakeCognito:
    """``admin_get_user`` over a dict of usernames -> enabled; counts calls; can be down."""

    def __init__(self, users: dict[str, bool]) -> None:
        self.users = users
        self.calls = 0
        self.down = False

    def admin_get_user(self, *, UserPoolId: str, Username: str) -> dict:
        self.calls += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url="https://cognito-idp.us-east-1.amazonaws.com/")
        if Username not in self.users:
            raise ClientError({"Error": {"Code": "UserNotFoundException", "Message": "User does not exist."}},
                              "AdminGetUser")
        return {"Username": Username, "Enabled": self.users[Username], "UserStatus": "CONFIRMED"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cognito():
    return FakeCognito({"alice": True})


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def checked_verifier(pool_key, cognito, clock):
    public = json.loads(RSAAlgorithm.to_jwk(pool_key.public_key()))
    public.update(kid=KID, alg="RS256", use="sig")
    accounts = CognitoAccountStatus(cognito, "us-east-1_Unit0Pool", ttl=60, stale_ttl=900, clock=clock)
    return CognitoJwtVerifier(
        issuer=ISSUER, client_id=CLIENT_ID, keys=StaticSigningKeys({"keys": [public]}), accounts=accounts
    )


def test_a_disabled_users_token_is_refused(checked_verifier, sign, cognito):
    cognito.users["alice"] = False

    with pytest.raises(InvalidToken, match="user is disabled"):
        checked_verifier.verify(sign())


def test_a_deleted_users_token_is_refused_not_an_error(checked_verifier, sign, cognito):
    del cognito.users["alice"]

    with pytest.raises(InvalidToken, match="user no longer exists"):
        checked_verifier.verify(sign())


def test_an_access_token_is_looked_up_by_its_username_claim(checked_verifier, sign, cognito):
    def access_token(username: str) -> str:
        return sign(token_use="access", client_id=CLIENT_ID, username=username, drop=("aud", "cognito:username"))

    assert checked_verifier.verify(access_token("alice")).user_id
    with pytest.raises(InvalidToken, match="user no longer exists"):
        checked_verifier.verify(access_token("bob"))
    assert cognito.calls == 2


def test_one_lookup_per_user_per_minute_in_a_warm_process(checked_verifier, sign, cognito, clock):
    token = sign()
    for _ in range(5):
        checked_verifier.verify(token)
    assert cognito.calls == 1

    cognito.users["alice"] = False
    clock.now += 59
    checked_verifier.verify(token)  # still the answer of a minute ago
    clock.now += 1
    with pytest.raises(InvalidToken, match="user is disabled"):
        checked_verifier.verify(token)
    assert cognito.calls == 2


def test_junk_tokens_cost_no_lookup(checked_verifier, sign, cognito):
    with pytest.raises(InvalidToken):
        checked_verifier.verify(sign(aud="another-client"))
    assert cognito.calls == 0


def test_when_cognito_is_unreachable_a_recent_answer_stands_else_the_error_surfaces(
    checked_verifier, sign, cognito, clock
):
    token = sign()
    checked_verifier.verify(token)
    cognito.down = True
    clock.now += 600  # past the cache, within the stale allowance
    checked_verifier.verify(token)
    clock.now += 400  # beyond it: not a denial (the client would think its token bad), an error
    with pytest.raises(EndpointConnectionError):
        checked_verifier.verify(token)
