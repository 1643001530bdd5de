"""Users from the users file are created in the template's pool and can sign in."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3
import jwt
import pytest
from moto import mock_aws

from wsstack.emulator import Emulator, aws_client, create_resources
from wsstack.template import TemplateError, load_app
from wsstack.users import SeedUser, create_users, load_users

ROOT = Path(__file__).resolve().parents[3]
USERS = ROOT / "users.local.json"


def pool_picks_subs(users: list[SeedUser]) -> list[SeedUser]:
    """The users without the subs the file names: only the emulator's server can set one."""
    return [dataclasses.replace(user, sub=None) for user in users]


@pytest.fixture
def pool(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    app = load_app(ROOT / "template.yaml", {})
    with mock_aws():
        refs = create_resources(app)
        yield boto3.client("cognito-idp", region_name="us-east-1"), refs


def test_the_demo_users_are_created_confirmed_and_sign_in_with_their_password(pool):
    client, refs = pool
    users = pool_picks_subs(load_users(USERS, ["UserPool"]))

    subs = create_users(client, users, {"UserPool": refs["UserPool"]})
    again = create_users(client, users, {"UserPool": refs["UserPool"]})  # a restart meets them again

    assert list(subs) == ["alice", "bob"] and subs == again and all(subs.values())
    alice = client.admin_get_user(UserPoolId=refs["UserPool"], Username="alice")
    assert alice["UserStatus"] == "CONFIRMED"
    assert {"Name": "email", "Value": "alice@example.com"} in alice["UserAttributes"]
    tokens = client.initiate_auth(
        ClientId=refs["UserPoolClient"], AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": users[0].password},
    )
    assert tokens["AuthenticationResult"]["IdToken"]


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "is not valid JSON"),
        ('["alice"]', "must map user pool logical ids to lists of users"),
        ('{"OtherPool": []}', "'OtherPool', which is not a user pool of the template (pools: UserPool)"),
        ('{"UserPool": {"username": "a"}}', "UserPool must be a list of users"),
        ('{"UserPool": [{"username": "a"}]}', "needs a string username and password"),
        ('{"UserPool": [{"username": "a", "password": "p", "attributes": {"age": 3}}]}',
         "attributes of a must map names to strings"),
    ],
)
def test_a_bad_users_file_is_one_sentence_naming_the_file(tmp_path, content, complaint):
    path = tmp_path / "users.json"
    path.write_text(content)

    with pytest.raises(TemplateError) as raised:
        load_users(path, ["UserPool"])

    assert str(raised.value).startswith(f"users file {path}")
    assert complaint in str(raised.value)


def test_a_missing_users_file_is_named(tmp_path):
    with pytest.raises(TemplateError, match=r"users\.json does not exist"):
        load_users(tmp_path / "users.json", ["UserPool"])


def test_a_password_the_pool_refuses_names_the_user(pool, tmp_path):
    client, refs = pool
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"UserPool": [{"username": "carol", "password": "short"}]}))

    with pytest.raises(TemplateError, match=r"user carol of UserPool could not be created"):
        create_users(client, load_users(path, ["UserPool"]), {"UserPool": refs["UserPool"]})


def test_the_default_file_leaves_out_users_of_pools_another_template_lacks():
    # users.local.json serves the chat template; a fixture template run from the same folder
    # has no pool named UserPool, and starts without its users rather than failing.
    assert load_users(USERS, ["OtherPool"], strict=False) == []
    assert [u.username for u in load_users(USERS, ["UserPool"], strict=False)] == ["alice", "bob"]


def test_an_existing_user_keeps_its_sub_and_the_password_it_has(pool):
    client, refs = pool
    users = pool_picks_subs(load_users(USERS, ["UserPool"]))
    subs = create_users(client, users, {"UserPool": refs["UserPool"]})
    # alice changed her password in the app; bob was told by an administrator to reset his.
    client.admin_set_user_password(UserPoolId=refs["UserPool"], Username="alice", Password="Changed-1x",
                                   Permanent=True)
    client.admin_reset_user_password(UserPoolId=refs["UserPool"], Username="bob")

    again = create_users(client, users, {"UserPool": refs["UserPool"]})  # the restart

    assert again == subs

    def sign_in(username: str, password: str) -> dict:
        return client.initiate_auth(ClientId=refs["UserPoolClient"], AuthFlow="USER_PASSWORD_AUTH",
                                    AuthParameters={"USERNAME": username, "PASSWORD": password})

    assert sign_in("alice", "Changed-1x")["AuthenticationResult"]["IdToken"]
    # bob could not sign in with a password as he was, so he gets the file's again.
    assert sign_in("bob", users[1].password)["AuthenticationResult"]["IdToken"]


def test_local_users_get_the_subs_the_file_names_so_the_sample_events_name_them():
    # The sample events' sender and recipient are alice and bob of users.local.json.
    events = ROOT / "events"
    send = json.loads((events / "send_message.json").read_text())
    body = json.loads(send["body"])
    users = {user.username: user for user in load_users(USERS, ["UserPool"])}
    assert (users["alice"].sub, users["bob"].sub) == (send["requestContext"]["authorizer"]["principalId"],
                                                      body["recipientId"])

    emulator = Emulator()
    endpoint = emulator.start(announce=False)
    try:
        refs = create_resources(load_app(ROOT / "template.yaml", {}), endpoint_url=endpoint)
        client = aws_client("cognito-idp", endpoint)
        subs = create_users(client, list(users.values()), {"UserPool": refs["UserPool"]})

        assert subs == {"alice": users["alice"].sub, "bob": users["bob"].sub}
        tokens = client.initiate_auth(ClientId=refs["UserPoolClient"], AuthFlow="USER_PASSWORD_AUTH",
                                      AuthParameters={"USERNAME": "bob", "PASSWORD": users["bob"].password})
        claims = jwt.decode(tokens["AuthenticationResult"]["IdToken"], options={"verify_signature": False})
        assert claims["sub"] == users["bob"].sub
        found = client.list_users(UserPoolId=refs["UserPool"], Filter=f'sub = "{users["bob"].sub}"')["Users"]
        assert [user["Username"] for user in found] == ["bob"]
        # A second user cannot take a sub that is already given.
        taken = SeedUser("UserPool", "carol", "Passw0rd-demo", {}, users["bob"].sub)
        with pytest.raises(TemplateError, match="carol of UserPool could not be given sub"):
            create_users(client, [taken], {"UserPool": refs["UserPool"]})
    finally:
        emulator.stop()


@pytest.mark.parametrize("sub", ["alice", "7D8CA528-4931-4254-9273-EA5EE853F271", 42])
def test_a_sub_that_is_no_uuid_is_one_sentence(tmp_path, sub):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({"UserPool": [{"username": "alice", "password": "Passw0rd-demo", "sub": sub}]}))
    with pytest.raises(TemplateError, match="sub of alice must be a UUID"):
        load_users(path, ["UserPool"])
