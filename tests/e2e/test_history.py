"""getHistory and requestId over real sockets: a new device fills a conversation from
history, page by page; who may read it; every answer names the request it answers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chatclient import ChatSession, conversation_id

from .conftest import frames_within

pytestmark = pytest.mark.e2e


def _history(session: ChatSession, conversation: str, **fields: Any) -> dict[str, Any]:
    session.send("getHistory", conversationId=conversation, **fields)
    return session.receive_until("history")


def _answer(session: ChatSession, request_id: str) -> dict[str, Any]:
    """The frame answering ``request_id``, skipping pushes and other answers (bounded)."""
    deadline = time.monotonic() + 10
    while True:
        frame = session.receive(timeout=max(0.0, deadline - time.monotonic()))
        if frame.get("requestId") == request_id:
            return frame


def test_a_new_device_fills_the_conversation_newest_first_page_by_page_with_tombstones(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
        sent = []
        for n in range(5):
            sender, recipient = (a, bob.sub) if n % 2 == 0 else (b, alice.sub)
            sent.append(sender.send_message(conversation, recipient, f"line {n}"))
            sender.receive_until("ack")
        a.send("deleteMessage", messageId=sent[0])
        a.receive_until("messageDeleted")

    # Alice's new phone: nothing pending for her is left, yet history brings everything back.
    with ChatSession(stack.target, alice.id_token) as phone:
        timings = []
        started = time.perf_counter()
        first = _history(phone, conversation, limit=2, requestId="page-1")
        timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        second = _history(phone, conversation, limit=2, cursor=first["cursor"], requestId="page-2")
        timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        last = _history(phone, conversation, limit=2, cursor=second["cursor"], requestId="page-3")
        timings.append(time.perf_counter() - started)
    # A figure, not an assertion: the first page may include the function's cold start.
    print("\nhistory pages over the local stack (ms):", ", ".join(f"{t * 1000:.0f}" for t in timings))

    pages = [[m["messageId"] for m in page["messages"]] for page in (first, second, last)]
    assert pages == [[sent[4], sent[3]], [sent[2], sent[1]], [sent[0]]]
    assert [(p["hasMore"], p["requestId"]) for p in (first, second, last)] == [
        (True, "page-1"), (True, "page-2"), (False, "page-3")
    ]
    assert last["cursor"] is None
    assert [m["senderId"] for m in first["messages"] + second["messages"]] == [alice.sub, bob.sub, alice.sub, bob.sub]
    tombstone = last["messages"][0]
    assert (tombstone["isDeleted"], tombstone["content"]) == (True, "")
    assert first["messages"][1]["content"] == "line 3"


def test_history_is_forbidden_to_a_third_user_and_refuses_another_users_cursor(stack, new_user):
    alice, bob, carol = new_user("alice"), new_user("bob"), new_user("carol")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a:
        a.send_message(conversation, bob.sub, "one")
        a.receive_until("ack")
        a.send_message(conversation, bob.sub, "two")
        a.receive_until("ack")
        page = _history(a, conversation, limit=1)
        a.send("getHistory", conversationId=conversation, cursor="bm90LWEtY3Vyc29y", requestId="bad-cursor")
        bad = _answer(a, "bad-cursor")

    with ChatSession(stack.target, carol.id_token) as c:
        c.send("getHistory", conversationId=conversation, requestId="peek")
        forbidden = _answer(c, "peek")
        c.send("getHistory", conversationId=conversation, cursor=page["cursor"], requestId="stolen")
        stolen = _answer(c, "stolen")
        c.send("getHistory", conversationId="conv-nobody-has", requestId="nowhere")
        nowhere = _answer(c, "nowhere")

    assert (bad["type"], bad["code"]) == ("error", "VALIDATION_ERROR")
    assert "cursor" in bad["message"]
    assert (forbidden["type"], forbidden["code"]) == ("error", "FORBIDDEN")
    assert (stolen["type"], stolen["code"]) == ("error", "VALIDATION_ERROR")
    assert (nowhere["type"], nowhere["code"]) == ("error", "NOT_FOUND")


def test_the_history_of_a_new_dm_of_the_caller_is_an_empty_page(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    with ChatSession(stack.target, alice.id_token) as a:
        page = _history(a, conversation_id(alice.sub, bob.sub))

    assert (page["messages"], page["cursor"], page["hasMore"]) == ([], None, False)
    assert "requestId" not in page


def test_every_answer_echoes_its_request_id_and_pushes_carry_none(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token, confirm=False) as b:
        message_id = a.send_message(conversation, bob.sub, "hello", requestId="r-send")
        ack = _answer(a, "r-send")
        pushed = b.receive_until("message")
        b.send("syncMessages", requestId="r-sync")
        sync = _answer(b, "r-sync")
        b.send("ackMessages", messageIds=[message_id], requestId="r-confirm")  # answers nothing
        delivered = a.receive_until("status")
        b.send("markRead", conversationId=conversation, upTo=message_id, requestId="r-read")
        marked = _answer(b, "r-read")
        read = a.receive_until("status")
        b.send("listConversations", requestId="r-list")
        listed = _answer(b, "r-list")
        b.send("findUsers", query="Ali", requestId="r-find")
        found = _answer(b, "r-find")
        b.send("ping", requestId="r-ping")
        pong = _answer(b, "r-ping")
        b.send("getHistory", conversationId=conversation, requestId="r-history")
        history = _answer(b, "r-history")
        b.send("typing", requestId="r-unknown")
        unknown = _answer(b, "r-unknown")
        a.send("deleteMessage", messageId=message_id, requestId="r-delete")
        deleted = b.receive_until("messageDeleted")
        a.send("ping")
        bare_pong = a.receive_until("pong")

    answers = {"ack": ack, "sync": sync, "marked": marked, "conversations": listed, "users": found,
               "pong": pong, "history": history, "error": unknown}
    assert {kind: frame["type"] for kind, frame in answers.items()} == {kind: kind for kind in answers}
    assert [m["messageId"] for m in history["messages"]] == [message_id]
    assert (delivered["status"], read["status"]) == ("delivered", "read")
    for push in (pushed, delivered, read, deleted):
        assert "requestId" not in push, push
    assert "requestId" not in bare_pong


@pytest.mark.parametrize("request_id", [42, "", "with space", "x" * 129])
def test_an_invalid_request_id_is_refused_and_nothing_is_done(stack, new_user, request_id):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a, ChatSession(stack.target, bob.id_token) as b:
        message_id = a.send_message(conversation, bob.sub, "never stored", requestId=request_id)
        error = a.receive_until("error")
        seen_by_bob = frames_within(b)
        page = _history(a, conversation)

    assert (error["code"], error["messageId"]) == ("VALIDATION_ERROR", message_id)
    assert "requestId" in error["message"] and "requestId" not in error
    assert seen_by_bob == [] and page["messages"] == []
