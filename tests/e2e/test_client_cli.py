"""`python -m chatclient`: a person chatting in a terminal with someone on another device."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chatclient import ChatSession, conversation_id

from .conftest import PASSWORD, ROOT

pytestmark = pytest.mark.e2e

WAIT = 30.0


def where(stack, tmp_path: Path) -> list[str]:
    """The command-line options that point the chat at the stack under test."""
    if not stack.local:
        return ["--stack-name", os.environ["CHAT_E2E_STACK_NAME"], "--region", stack.target.region]
    state_file = tmp_path / "stack.json"
    state_file.write_text(json.dumps(stack.state))
    return ["--state-file", str(state_file)]


class Terminal:
    """The chat command in a child process, typed into and read line by line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "NO_COLOR": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatclient", *args], cwd=ROOT, env=env, text=True, encoding="utf-8",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, fragment: str, timeout: float = WAIT) -> str:
        """The next line containing ``fragment`` (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line with {fragment!r}; the terminal showed:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if fragment in line:
                return line

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = WAIT) -> int:
        """Ctrl-D, then the exit status (the rest of the output is kept in ``lines``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            status = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
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
