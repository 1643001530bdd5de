"""The in-memory user directory behaves like the Cognito one (ListUsers on the template's pool)."""

from __future__ import annotations

import boto3
import pytest
from chat_fakes import InMemoryUserDirectory

from chat.adapters.cognito import CognitoUserDirectory
from chat.domain.models import UserProfile

from .conftest import REGION

PEOPLE = [
    ("bob", "Bob Builder", "bob@example.com"),
    ("bobby", "Robert Tables", "rt@example.com"),
    ("zed", "Zed Bobson", "bobson@example.org"),
    ("alice", "Alice Liddell", "alice@example.com"),
]


@pytest.fixture(params=["memory", "cognito"])
def directory(request):
    """The same four people in either directory; yields (directory, {username: sub})."""
    if request.param == "memory":
        memory = InMemoryUserDirectory()
        subs = {}
        for username, name, email in PEOPLE:
            subs[username] = f"sub-{username}"
            memory.add(UserProfile(subs[username], name, username), email)
        return memory, subs
    pool = request.getfixturevalue("aws")["UserPool"]
    cognito = boto3.client("cognito-idp", region_name=REGION)
    subs = {}
    for username, name, email in PEOPLE:
        user = cognito.admin_create_user(
            UserPoolId=pool, Username=username, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "name", "Value": name}, {"Name": "email", "Value": email}],
        )["User"]
        subs[username] = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    return CognitoUserDirectory(cognito, pool), subs


def test_search_matches_name_then_username_then_email_each_user_once(directory):
    users, subs = directory

    found = users.search("Bob", 10)

    assert [u.user_id for u in found] == [subs["bob"]]
    assert found[0] == UserProfile(subs["bob"], "Bob Builder", "bob")
    assert [u.username for u in users.search("bob", 10)] == ["bob", "bobby", "zed"]


def test_search_stops_at_the_limit_and_finds_nobody_for_no_match(directory):
    users, _ = directory

    assert len(users.search("bob", 2)) == 2
    assert users.search("nobody-here", 5) == []


def test_names_of_known_users_and_nothing_for_unknown_ids(directory):
    users, subs = directory

    assert users.names_of([subs["alice"], subs["zed"], "not-a-sub"]) == {
        subs["alice"]: "Alice Liddell", subs["zed"]: "Zed Bobson"
    }


def test_exists_only_for_users_of_the_pool(directory):
    users, subs = directory

    assert users.exists(subs["alice"]) is True
    assert users.exists("7d0c1e9a-3b5f-4c2d-9e8a-1f2b3c4d5e6f") is False
    assert users.exists("x#y") is False
