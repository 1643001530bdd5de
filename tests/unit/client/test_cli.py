"""The terminal chat: what a person types, what they see."""

from __future__ import annotations

import asyncio

import pytest

from chatclient.cli import TerminalChat, build_parser

from .conftest import ALICE, BOB, WAIT, wire_message


def test_help_names_the_sign_in_the_stack_and_the_commands():
    text = build_parser().format_help()
    for expected in ("--username", "--password", "--state-file", "--stack-name", "--to", "--to-sub", "/reply",
                     "/quit", "✓✓ read"):
        assert expected in text


def test_username_is_required():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


def chat_over(client) -> tuple[TerminalChat, list[str]]:
    lines: list[str] = []
    chat = TerminalChat(client, username="alice", write=lines.append, color=False)
    client.subscribe(chat.on_event)
    return chat, lines


def test_typed_text_goes_to_the_open_conversation_and_ticks_follow(chat_server, new_client):
    async def scenario() -> tuple[list[str], list[dict]]:
        async with chat_server() as server:
            client = new_client(server)
            chat, lines = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                assert await chat.handle("hello?")  # nothing open yet
                await chat.handle(f"/sub {BOB}")
                await chat.handle("hello bob")
                await server.wait_for(lambda: bool(server.sent("sendMessage")))
                await client.wait_acked(server.sent("sendMessage")[0]["messageId"], WAIT)
                await server.push({"type": "status", "messageId": server.sent("sendMessage")[0]["messageId"],
                                   "conversationId": "c", "status": "read", "at": "2026-01-01T00:00:00.000Z"})
                await client.ping(timeout=WAIT)
                assert not await chat.handle("/quit")
            return lines, server.sent("sendMessage")

    lines, sends = asyncio.run(scenario())
    assert [s["content"] for s in sends] == ["hello bob"]
    assert sends[0]["recipientId"] == BOB
    assert any("no conversation open" in line for line in lines)
    assert any("you → " in line and "hello bob" in line and "#1" in line for line in lines)
    assert "   #1 ✓" in lines
    assert "   #1 ✓✓ read" in lines


def test_an_incoming_message_is_shown_once_opens_the_conversation_and_is_marked_read(chat_server, new_client):
    async def scenario() -> tuple[list[str], list[dict], TerminalChat]:
        async with chat_server() as server:
            client = new_client(server)
            chat, lines = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                for message_id in ("m-1", "m-1", "m-2"):
                    await server.push({"type": "message", "message": wire_message(message_id, content=message_id)})
                await server.wait_for(lambda: len(server.sent("markRead")) == 2)
                await client.ping(timeout=WAIT)
            return lines, server.sent("markRead"), chat

    lines, marks, chat = asyncio.run(scenario())
    assert sum(line.endswith("Bob: m-1") for line in lines) == 1
    assert any(line.endswith("Bob: m-2") for line in lines)
    assert chat.peer is not None and chat.peer.user_id == BOB
    assert [m["messageIds"] for m in marks] == [["m-1"], ["m-2"]]
    # The fake server does not serve markRead: the person is told once, not per message.
    assert sum("read receipts not sent" in line for line in lines) == 1


def test_a_message_from_someone_else_says_how_to_answer_it(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            client = new_client(server)
            chat, lines = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle(f"/sub {BOB}")
                carol = wire_message("m-c", sender="carol-sub", recipient=ALICE, content="psst")
                carol["senderName"] = "Carol"
                await server.push({"type": "message", "message": carol})
                await client.ping(timeout=WAIT)
                await chat.handle("/reply")
            return lines

    lines = asyncio.run(scenario())
    assert any("Carol: psst" in line and "/reply" in line for line in lines)
    assert any("Carol" in line and "is open" in line for line in lines)


def test_unknown_commands_and_failed_lookups_are_explained(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            server.silent_actions.add("markRead")
            client = new_client(server)
            chat, lines = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle("/dance")
                await chat.handle("/list")  # the fake server answers listConversations with an error
                await chat.handle("/to bob")  # found by findUsers
            return [line for line in lines if "online" not in line]

    lines = asyncio.run(scenario())
    assert "unknown command /dance" in lines[0]
    assert "/list failed: VALIDATION_ERROR" in lines[1]
    assert "conversation with Bob" in lines[2]
