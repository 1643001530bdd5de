"""`python -m chatclient`: a person chatting in a terminal with someone on another device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from chatclient import ChatSession, conversation_id

from .conftest import PASSWORD, ROOT, ChildProcess

pytestmark = pytest.mark.e2e

WAIT = 30.0


def where(stack, tmp_path: Path) -> list[str]:
    """The command-line options that point the chat at the stack under test."""
    if not stack.local:
        return ["--stack-name", os.environ["CHAT_E2E_STACK_NAME"], "--region", stack.target.region]
    state_file = tmp_path / "stack.json"
    state_file.write_text(json.dumps(stack.state))
    return ["--state-file", str(state_file)]


class Terminal(ChildProcess):
    """The chat command in a child process, typed into and read line by line."""

    def __init__(self, *args: str) -> None:
        super().__init__([sys.executable, "-m", "chatclient", *args], env={**os.environ, "NO_COLOR": "1"},
                         encoding="utf-8", stdin=subprocess.PIPE)

    @property
    def lines(self) -> list[str]:
        return [line.rstrip("\n") for line in self.output]

    def expect(self, fragment: str, timeout: float = WAIT) -> str:  # type: ignore[override]
        """The next line containing ``fragment`` (bounded by ``timeout``)."""
        return super().expect(lambda line: fragment in line, timeout, f"no line with {fragment!r}").rstrip("\n")

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = WAIT) -> int:
        """Ctrl-D, then the exit status (all the output is then in ``lines``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            status = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self.wait_drained(timeout)
        return status


def test_help_explains_how_to_sign_in_pick_a_peer_and_chat():
    result = subprocess.run([sys.executable, "-m", "chatclient", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    for expected in ("--username", "--password", "--stack-name", "--to", "--to-sub", "/quit", "✓✓ read"):
        assert expected in result.stdout


def test_wrong_password_is_a_clear_error(stack, named_user, tmp_path):
    username, _ = named_user("alice")
    result = subprocess.run(
        [sys.executable, "-m", "chatclient", *where(stack, tmp_path), "--username", username,
         "--password", "not-the-password"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "wrong username or password" in result.stderr
    assert "Traceback" not in result.stderr


def test_print_token_gives_an_id_token_any_websocket_client_can_connect_with(stack, named_user, tmp_path):
    username, tokens = named_user("alice")
    result = subprocess.run(
        [sys.executable, "-m", "chatclient", *where(stack, tmp_path), "--username", username,
         "--password", PASSWORD, "--print-token"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    with ChatSession(stack.target, token) as session:
        session.send("ping")
        assert session.receive_until("pong")["type"] == "pong"
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == tokens.sub


def test_terminal_user_chats_with_another_device_and_sees_the_ticks(stack, named_user, tmp_path):
    alice_name, alice = named_user("alice")
    _, bob = named_user("bob")
    with ChatSession(stack.target, bob.id_token) as bob_phone:
        terminal = Terminal(*where(stack, tmp_path), "--username", alice_name, "--password", PASSWORD,
                            "--to-sub", bob.sub)
        try:
            terminal.expect("online")
            terminal.expect("is open")

            terminal.type("hello from the terminal")
            terminal.expect("you → ")
            pushed = bob_phone.receive_until("message")["message"]
            assert (pushed["content"], pushed["senderId"]) == ("hello from the terminal", alice.sub)
            terminal.expect("#1 ✓")
            terminal.expect("#1 ✓✓")

            bob_phone.send_message(conversation_id(alice.sub, bob.sub), alice.sub, "hi terminal")
            shown = terminal.expect("hi terminal")
            assert "Bob:" in shown
        finally:
            status = terminal.finish()
    assert status == 0
    assert sum("hi terminal" in line for line in terminal.lines) == 1


def test_lines_piped_in_are_stored_in_order_before_the_command_exits(stack, named_user, tmp_path):
    alice_name, _ = named_user("alice")
    _, bob = named_user("bob")
    result = subprocess.run(
        [sys.executable, "-m", "chatclient", *where(stack, tmp_path), "--username", alice_name,
         "--password", PASSWORD, "--to-sub", bob.sub],
        cwd=ROOT, input="first\nsecond\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with ChatSession(stack.target, bob.id_token) as bob_phone:
        bob_phone.send("syncMessages")
        sync = bob_phone.receive_until("sync")
    assert [m["content"] for m in sync["messages"]] == ["first", "second"]


def test_opening_a_conversation_read_on_another_device_clears_its_unread_count(stack, named_user, tmp_path):
    _, alice = named_user("alice")
    bob_name, bob = named_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as alice_phone, \
            ChatSession(stack.target, bob.id_token) as bob_phone:
        sent = []
        for text in ("one", "two"):  # one after the other, so "two" is the conversation's last
            sent.append(alice_phone.send_message(conversation, bob.sub, text))
            alice_phone.receive_until("ack")
        # Bob's phone receives both and confirms them (delivered) but shows neither (unread).
        # (in either order: each sendMessage runs in its own invocation)
        assert sorted(bob_phone.receive_until("message")["message"]["messageId"] for _ in sent) == sorted(sent)
        bob_phone.send("ackMessages", messageIds=sent)

        terminal = Terminal(*where(stack, tmp_path), "--username", bob_name, "--password", PASSWORD)
        try:
            terminal.expect("online")
            terminal.type("/list")
            assert terminal.expect("1. Alice").endswith("1. Alice (2 unread): two")
            terminal.type("/open 1")
            terminal.expect("2 unread marked read; the last:")
            terminal.type("/list")
            assert terminal.expect("1. Alice").endswith("1. Alice: two")
            read = [f for f in (alice_phone.receive_until("status") for _ in range(4)) if f["status"] == "read"]
            assert sorted(f["messageId"] for f in read) == sorted(sent)

            alice_phone.send("deleteMessage", messageId=sent[0])
            terminal.expect("a message in the conversation with Alice was deleted")
        finally:
            status = terminal.finish()
    assert status == 0
    assert not any(message_id in line for line in terminal.lines for message_id in sent)
