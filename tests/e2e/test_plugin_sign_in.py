"""wsstack's pytest plugin's Cognito helpers on the chat app's template (the unmarked ``wsstack``
fixture's stack, which the e2e suite shares): a user made with ``create_user`` signs in with
the template's app client, and its ID token opens the token-authorized $connect."""

from __future__ import annotations

import uuid

import pytest
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.e2e

PASSWORD = "Passw0rd-plugin"


def test_a_created_user_signs_in_and_connects_with_its_id_token(wsstack):
    username = f"plugin-{uuid.uuid4().hex[:8]}"
    sub = wsstack.create_user(username, PASSWORD, {"email": f"{username}@example.com"})

    tokens = wsstack.sign_in(username, PASSWORD)

    assert sub
    assert tokens.id_token and tokens.access_token and tokens.expires_in > 0
    with wsstack.connect(token=tokens.id_token) as connection:
        connection.ping().wait(10)
    with wsstack.connect(token=tokens.id_token, secure=True) as connection:
        connection.ping().wait(10)
    wsstack.client("cognito-idp").admin_delete_user(UserPoolId=wsstack.user_pool_id, Username=username)


def test_connect_without_a_token_is_refused_by_the_templates_authorizer(wsstack):
    with pytest.raises(InvalidStatus) as refused:
        wsstack.connect()
    assert refused.value.response.status_code == 401
