"""A new user signs up as an app does (Cognito SignUp, ConfirmSignUp), signs in and chats.

What docs/client.md says about the local stack is checked here: its emulator creates the
user unconfirmed, sends no code anywhere, and ConfirmSignUp accepts any code.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from chatclient import ChatSession, conversation_id, remove_user_data, sign_in

pytestmark = pytest.mark.e2e

PASSWORD = "Passw0rd-signup"


def test_a_signed_up_user_is_confirmed_then_signs_in_with_their_display_name_and_chats(stack, new_user):
    if stack.target.aws_endpoint is None:
        pytest.skip("on AWS the confirmation code arrives by email")
    cognito = stack.target.cognito()
    client_id = stack.target.user_pool_client_id
    username = f"dana-{uuid.uuid4().hex[:8]}"
    bob = new_user("bob")
    signed_up = cognito.sign_up(
        ClientId=client_id, Username=username, Password=PASSWORD,
        UserAttributes=[{"Name": "name", "Value": "Dana"}, {"Name": "email", "Value": f"{username}@example.com"}],
    )
    try:
        # Not confirmed yet: no sign-in.
        with pytest.raises(ClientError) as refused:
            sign_in(stack.target, username, PASSWORD)
        cognito.confirm_sign_up(ClientId=client_id, Username=username, ConfirmationCode="000000")
        tokens = sign_in(stack.target, username, PASSWORD)

        conversation = conversation_id(tokens.sub, bob.sub)
        with ChatSession(stack.target, tokens.id_token) as dana, ChatSession(stack.target, bob.id_token) as b:
            dana.send_message(conversation, bob.sub, "hello, I am new")
            received = b.receive_until("message")["message"]
    finally:
        remove_user_data(stack.target, stack.tables, signed_up["UserSub"], username)

    assert signed_up["UserConfirmed"] is False
    assert refused.value.response["Error"]["Code"] == "UserNotConfirmedException"
    assert tokens.sub == signed_up["UserSub"]
    # The display name others see is the `name` attribute given at sign-up.
    assert (received["senderId"], received["senderName"]) == (tokens.sub, "Dana")
