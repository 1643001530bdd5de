"""Finding people, keeping a socket alive, and the per-connection rate limit, over real sockets."""

from __future__ import annotations

import uuid

import jwt
import pytest

from chatclient import ChatSession

pytestmark = pytest.mark.e2e


def _username(tokens) -> str:
    return str(jwt.decode(tokens.id_token, options={"verify_signature": False})["cognito:username"])


def test_find_users_finds_real_pool_users_by_username_name_or_email_but_never_the_caller(stack, new_user):
    label = f"quokka{uuid.uuid4().hex[:6]}"
    quokka, seeker = new_user(label), new_user("seeker")
    username = _username(quokka)
    expected = {"userId": quokka.sub, "name": label.title(), "username": username}
    with ChatSession(stack.target, seeker.id_token) as s, ChatSession(stack.target, quokka.id_token) as q:
        for query in (username[:9], label.title()[:9], f"{username}@exa"):
            s.send("findUsers", query=query)
            assert s.receive_until("users")["users"] == [expected], query

        q.send("findUsers", query=username)
        assert q.receive_until("users")["users"] == []

        s.send("findUsers", query='x" or name ^= "')
        error = s.receive_until("error")
        assert (error["code"], error["message"]) == ("VALIDATION_ERROR", 'query must not contain " or \\.')


def test_ping_is_answered_with_pong(stack, new_user):
    alice = new_user("alice")
    with ChatSession(stack.target, alice.id_token) as a:
        a.send("ping")
        pong = a.receive()

    assert pong["type"] == "pong"
    assert pong["at"].endswith("Z")


def test_a_flooding_connection_is_rate_limited_while_the_users_other_connection_is_not(stack, new_user):
    alice = new_user("alice")
    with ChatSession(stack.target, alice.id_token) as flood, ChatSession(stack.target, alice.id_token) as calm:
        # 61 frames within one 10-second stretch: whatever the window boundaries, one
        # window holds more than the 30 allowed.
        for _ in range(61):
            flood.send("ping")
        answers = [flood.receive() for _ in range(61)]

        limited = [a for a in answers if a.get("type") == "error"]
        assert limited
        assert {(a["code"], a["message"]) for a in limited} == {
            ("RATE_LIMITED", "Too many frames on this connection; wait a few seconds and retry.")
        }
        calm.send("ping")
        assert calm.receive()["type"] == "pong"
        # The flooding socket is still open: it is told to slow down, not cut off.
        assert flood.ws.protocol.state.name == "OPEN"
