"""The terminal chat: what a person types, what they see."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from chatclient.cli import Screen, TerminalChat, build_parser

from .conftest import ALICE, BOB, WAIT, wire_message
from .fake_terminal import FakeTerminal


def test_help_names_the_sign_in_the_stack_and_the_commands():
    text = build_parser().format_help()
    for expected in ("--username", "--password", "--state-file", "--stack-name", "--to", "--to-sub", "/reply",
                     "/quit", "✓✓ read"):
        assert expected in text


def test_username_is_required():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


class Lines(list):
    """What a pipe receives, line by line (the output when stdout is not a terminal)."""

    def __init__(self) -> None:
        super().__init__()
        self._partial = ""

    def write(self, text: str) -> None:
        *whole, self._partial = (self._partial + text).split("\n")
        self.extend(whole)


def chat_over(client) -> tuple[TerminalChat, list[str]]:
    lines = Lines()
    chat = TerminalChat(client, username="alice", screen=Screen(lines.write), color=False)
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


# ---------------------------------------------------------------------- on a terminal and in a pipe

def terminal_chat(client, terminal: FakeTerminal) -> TerminalChat:
    """The chat writing to ``terminal``, whose user types there too (the terminal echoes it)."""
    size = os.terminal_size((terminal.columns, terminal.lines))
    screen = Screen(terminal.feed, interactive=True, echoes_input=True, size=lambda: size)
    chat = TerminalChat(client, username="alice", screen=screen, color=False)
    client.subscribe(chat.on_event)
    return chat


async def type_line(chat: TerminalChat, terminal: FakeTerminal, text: str) -> None:
    terminal.feed(text + "\n")  # the terminal's echo, before the program reads the line
    await chat.handle(text + "\n", echoed=chat.screen.typed(text + "\n"))


async def sent_ids(server, count: int = 1) -> list[str]:
    """The ids of the first ``count`` messages sent, once the server has them."""
    await server.wait_for(lambda: len(server.sent("sendMessage")) >= count)
    return [frame["messageId"] for frame in server.sent("sendMessage")[:count]]


def status_frame(message_id: str, status: str) -> dict:
    return {"type": "status", "messageId": message_id, "conversationId": f"dm_{ALICE}_{BOB}", "status": status,
            "at": "2026-01-01T00:00:01.000Z"}


def test_on_a_terminal_a_sent_message_is_one_line_whose_tick_changes_in_place(chat_server, new_client):
    terminal = FakeTerminal(columns=60)

    async def scenario() -> None:
        async with chat_server() as server:
            client = new_client(server)
            chat = terminal_chat(client, terminal)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle(f"/sub {BOB}")
                await type_line(chat, terminal, "hello bob")
                [message_id] = await sent_ids(server)
                await client.wait_acked(message_id, WAIT)
                for status in ("delivered", "read"):
                    await server.push(status_frame(message_id, status))
                await client.ping(timeout=WAIT)

    asyncio.run(scenario())
    shown = terminal.screen
    assert [row for row in shown if "hello bob" in row] == [shown[-1]]  # typed once, shown once
    assert shown[-1].endswith("you → 5f1e8a3c: hello bob  #1 ✓✓ read")
    assert not any(row.strip().startswith("#1") for row in shown)


def test_a_tick_for_a_line_that_wrapped_or_was_followed_by_others_lands_on_it(chat_server, new_client):
    terminal = FakeTerminal(columns=40)

    async def scenario() -> None:
        async with chat_server() as server:
            client = new_client(server)
            chat = terminal_chat(client, terminal)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle(f"/sub {BOB}")
                await type_line(chat, terminal, "a first line long enough to wrap on a narrow terminal")
                await type_line(chat, terminal, "second")
                first, second = await sent_ids(server, 2)
                await client.wait_acked(second, WAIT)
                await server.push({"type": "message", "message": wire_message("m-1", content="a reply")})
                await server.push(status_frame(first, "read"))
                await client.ping(timeout=WAIT)

    asyncio.run(scenario())
    text = "\n".join(terminal.screen)
    assert text.count("#1") == 1 and text.count("#2") == 1 and text.count("a reply") == 1
    assert "#1 ✓✓ read" in text.replace("\n", "")  # the wrapped line, its last row rewritten
    assert "#2 ✓\n[00:00:00] Bob: a reply\n" in text


def test_through_a_real_tty_the_typed_line_is_replaced_by_the_sent_one(chat_server, new_client):
    terminal = FakeTerminal(columns=80)
    user, program = os.openpty()  # the terminal's side, and the program's stdin and stdout

    def read_all() -> str:
        os.set_blocking(user, False)
        chunks = []
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(user, 65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    async def scenario() -> None:
        async with chat_server() as server:
            client = new_client(server)
            size = os.terminal_size((80, 24))
            screen = Screen(lambda text: os.write(program, text.encode()), interactive=os.isatty(program),
                            echoes_input=os.isatty(program), size=lambda: size)
            chat = TerminalChat(client, username="alice", screen=screen, color=False)
            client.subscribe(chat.on_event)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle(f"/sub {BOB}")
                os.write(user, b"hi from a tty\n")  # typed: the tty echoes it and hands the line over
                line = os.read(program, 1024).decode()
                await chat.handle(line, echoed=screen.typed(line))
                await client.wait_acked((await sent_ids(server))[0], WAIT)
                await client.ping(timeout=WAIT)

    try:
        asyncio.run(scenario())
        terminal.feed(read_all())
    finally:
        os.close(user)
        os.close(program)
    rows = [row for row in terminal.screen if "hi from a tty" in row]
    assert len(rows) == 1 and rows[0].endswith("you → 5f1e8a3c: hi from a tty  #1 ✓")


def test_lines_pasted_at_once_each_become_their_sent_line(chat_server, new_client):
    terminal = FakeTerminal()

    async def scenario() -> None:
        async with chat_server() as server:
            client = new_client(server)
            chat = terminal_chat(client, terminal)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle(f"/sub {BOB}")
                pasted = ["first pasted", "second pasted", "third pasted"]
                terminal.feed("".join(f"{text}\n" for text in pasted))  # all echoed before any is read
                echoes = [chat.screen.typed(text) for text in pasted]
                for text, echoed in zip(pasted, echoes, strict=True):
                    await chat.handle(text, echoed=echoed)
                for message_id in await sent_ids(server, 3):
                    await client.wait_acked(message_id, WAIT)
                await client.ping(timeout=WAIT)

    asyncio.run(scenario())
    assert [row.split(": ", 1)[1] for row in terminal.screen[-3:]] == [
        "first pasted  #1 ✓", "second pasted  #2 ✓", "third pasted  #3 ✓"]


def test_in_a_pipe_nothing_is_rewritten_and_each_tick_step_is_one_line(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            server.double_ack = True
            client = new_client(server)
            chat, lines = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle(f"/sub {BOB}")
                await chat.handle("hello bob\n", echoed=chat.screen.typed("hello bob\n"))  # no echo in a pipe
                [message_id] = await sent_ids(server)
                await client.wait_acked(message_id, WAIT)
                for status in ("delivered", "delivered", "read"):
                    await server.push(status_frame(message_id, status))
                await client.ping(timeout=WAIT)
            return lines

    lines = asyncio.run(scenario())
    assert "\x1b" not in "".join(lines)
    assert sum("hello bob" in line for line in lines) == 1
    assert [line for line in lines if line.startswith("   #1")] == ["   #1 ✓", "   #1 ✓✓", "   #1 ✓✓ read"]


def deleted_frame(message_id: str) -> dict:
    return {"type": "messageDeleted", "messageId": message_id, "conversationId": f"dm_{ALICE}_{BOB}",
            "at": "2026-01-01T00:00:02.000Z"}


def test_on_a_terminal_a_deleted_message_reads_as_deleted_on_its_line(chat_server, new_client):
    terminal = FakeTerminal()

    async def scenario() -> None:
        async with chat_server() as server:
            client = new_client(server)
            chat = terminal_chat(client, terminal)
            async with client:
                await client.wait_online(WAIT)
                await server.push({"type": "message", "message": wire_message("m-1", content="oops, wrong chat")})
                await server.push({"type": "message", "message": wire_message("m-2", content="still here")})
                await client.ping(timeout=WAIT)  # both shown: the conversation with Bob is open
                await type_line(chat, terminal, "mine, to delete")
                [message_id] = await sent_ids(server)
                await client.wait_acked(message_id, WAIT)
                server.answers["deleteMessage"] = deleted_frame(message_id)
                await type_line(chat, terminal, "/delete 1")
                await server.push(deleted_frame("m-1"))
                await client.ping(timeout=WAIT)

    asyncio.run(scenario())
    shown = terminal.screen
    assert "[00:00:00] Bob: (deleted)" in shown
    assert "[00:00:00] Bob: still here" in shown
    assert any(row.endswith("you → Bob: (deleted)  #1 ✓") for row in shown)
    assert not any("oops" in row or "mine, to delete" in row or "was deleted" in row for row in shown)


def test_in_a_pipe_a_deletion_says_whose_message_of_when_was_deleted(chat_server, new_client):
    async def scenario() -> list[str]:
        async with chat_server() as server:
            client = new_client(server)
            _, lines = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                await server.push({"type": "message", "message": wire_message("m-1", content="oops")})
                await server.push(deleted_frame("m-1"))
                await server.push({**deleted_frame("m-0"), "messageId": "m-0"})  # from before this session
                await client.ping(timeout=WAIT)
            return lines

    lines = asyncio.run(scenario())
    assert any(line.endswith("Bob deleted the message sent at 00:00:00") for line in lines)
    assert any(line.endswith("a message in the conversation with Bob was deleted") for line in lines)
    assert not any("m-0" in line or "m-1" in line for line in lines)


@pytest.mark.parametrize("interactive", [True, False], ids=["terminal", "pipe"])
def test_retries_while_offline_are_one_line(chat_server, new_client, interactive):
    terminal = FakeTerminal()

    async def scenario() -> None:
        async with chat_server() as server:
            client = new_client(server)
            size = os.terminal_size((terminal.columns, terminal.lines))
            chat = TerminalChat(client, username="alice", color=False,
                                screen=Screen(terminal.feed, interactive=interactive, size=lambda: size))
            client.subscribe(chat.on_event)
            async with client:
                await client.wait_online(WAIT)
                handshakes = server.handshakes
                server.refuse_handshakes = 3
                server.kill_connections()
                await server.wait_for(lambda: server.handshakes == handshakes + 4 and len(server.connections) == 1)
                await client.wait_online(WAIT)
                await client.ping(timeout=WAIT)

    asyncio.run(scenario())
    shown = terminal.screen
    offline = [row for row in shown if "offline" in row]
    assert len(offline) == 1
    if interactive:
        assert offline[0].endswith("(retry 4)")  # the drop, then three refused handshakes
    assert shown[-1] == "-- back online (caught up)"
    assert shown.index(offline[0]) == len(shown) - 2


def test_opening_a_conversation_reads_what_is_unread_in_it(chat_server, new_client):
    conversation = f"dm_{ALICE}_{BOB}"
    last = wire_message("m-9", content="are you there?")

    async def scenario() -> tuple[list[str], list[dict]]:
        async with chat_server() as server:
            server.answers["listConversations"] = {"type": "conversations", "cursor": None, "hasMore": False,
                                                   "conversations": [{
                                                       "conversationId": conversation, "participants": [ALICE, BOB],
                                                       "otherUser": {"userId": BOB, "name": "Bob"},
                                                       "lastMessage": last, "unreadCount": 2,
                                                       "updatedAt": last["timestamp"]}]}
            server.answers["markRead"] = {"type": "marked", "conversationId": conversation,
                                          "messageIds": ["m-8", "m-9"]}
            client = new_client(server)
            chat, lines = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle("/list")
                assert not server.sent("markRead")  # listing reads nothing
                await chat.handle("/open 1")
            return lines, server.sent("markRead")

    lines, marks = asyncio.run(scenario())
    assert "   1. Bob (2 unread): are you there?" in lines
    # The client's own requestId is not what this test is about.
    assert [{k: v for k, v in mark.items() if k != "requestId"} for mark in marks] == [
        {"action": "markRead", "conversationId": conversation, "upTo": "m-9"}
    ]
    assert any(line.endswith("2 unread marked read; the last: [00:00:00] Bob: are you there?") for line in lines)


def test_a_message_of_a_conversation_not_open_stays_unread_until_it_is_opened(chat_server, new_client):
    async def scenario() -> list[dict]:
        async with chat_server() as server:
            client = new_client(server)
            chat, _ = chat_over(client)
            async with client:
                await client.wait_online(WAIT)
                await chat.handle(f"/sub {BOB}")
                carol = wire_message("m-c", sender="carol-sub", recipient=ALICE, content="psst")
                await server.push({"type": "message", "message": carol})
                await client.ping(timeout=WAIT)
                return server.sent("markRead")

    assert asyncio.run(scenario()) == []
