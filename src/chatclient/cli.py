"""Chat in a terminal as one user, over the asyncio client.

Run two of these (say alice and bob) side by side to try the backend the way two phones
would: messages, ✓ sent / ✓✓ delivered / ✓✓ read ticks, and what happens when one of them
drops off and comes back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import re
import shutil
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatclient.auth import Tokens, sign_in
from chatclient.client import ChatClient
from chatclient.events import (
    ChatClientError,
    ConnectionState,
    ConnectionStateChanged,
    Event,
    MessageAcked,
    MessageDeleted,
    MessageReceived,
    MessageStatusChanged,
    RequestFailed,
    SendFailed,
    ServerError,
)
from chatclient.frames import ChatMessage, ConversationSummary, MessageStatus
from chatclient.target import Target

__all__ = ["Screen", "TerminalChat", "main"]

logger = logging.getLogger(__name__)

EPILOG = """\
commands, once connected:
  <text>            send <text> to the open conversation
  /to <username>    open the conversation with a user (looked up by name, username or email)
  /sub <sub>        open the conversation with a user id (Cognito sub)
  /reply            open the conversation of the last message received
  /users <query>    look users up
  /list             your conversations, newest first, with unread counts
  /open <n>         open conversation n of /list; what is unread in it is marked read
  /delete <n>       delete your message #n
  /whoami           your username and sub
  /help             this list
  /quit             leave (Ctrl-D too)

ticks: ✓ stored by the server, ✓✓ delivered to a device of the recipient, ✓✓ read (shown
in another colour on a terminal) once they saw it. On a terminal the tick changes at the end
of the message's own line, and a deleted message's line reads (deleted); when output goes
to a pipe or a file, each change is one line of its own. Messages typed while offline are
kept and sent, with the same id, when the connection is back.

examples (`make up` starts the local stack with demo users alice and bob, password
Passw0rd-demo; run each in its own terminal):
  python -m chatclient --username alice --to bob
  python -m chatclient --username bob          # the conversation opens when alice writes
  python -m chatclient --stack-name chat-dev --region eu-west-1 --username alice --to bob
  python -m chatclient -u alice -p Passw0rd-demo --print-token   # for wscat, websockets' client...
"""

_TICKS = {MessageStatus.SENT: "✓", MessageStatus.DELIVERED: "✓✓", MessageStatus.READ: "✓✓ read"}
_STEPS = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
_SGR = re.compile(r"\033\[[0-9;]*m")


def _columns_taken(text: str) -> int:
    """How many terminal columns ``text`` takes: colour codes take none, wide characters two."""
    width = 0
    for char in _SGR.sub("", text):
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


@dataclass
class Line:
    """A line written by :class:`Screen`: the row it starts on (counted from the first line
    written) and how many rows it takes once the terminal wraps it."""

    start: int
    rows: int


class Screen:
    """The terminal, as a sequence of lines some of which can be rewritten in place.

    On a terminal, a line still on screen is rewritten by moving the cursor up to it (ANSI
    cursor movement) and back, so a tick or a retry counter changes where it stands instead
    of adding a line. Anywhere else (a pipe, a file) nothing is rewritten:
    :meth:`rewrite` says so and the caller decides what, if anything, to print instead.

    Rows are counted, not read back from the terminal: every line written here, and every
    line the user typed (the terminal echoes it), is counted with its wrapping at the current
    width. Output written while the user is half-way through typing a line lands beside it,
    which this count cannot see; the worst that follows is one tick written a row off.

    Args:
        write: writes text as it is (no newline added) and flushes.
        interactive: output goes to a terminal: lines may be rewritten.
        echoes_input: input comes from that terminal, which shows each typed line itself.
        size: the terminal's columns and lines, asked on every write (it may be resized).
    """

    def __init__(self, write: Callable[[str], None], *, interactive: bool = False, echoes_input: bool = False,
                 size: Callable[[], os.terminal_size] = shutil.get_terminal_size) -> None:
        self._write = write
        self.interactive = interactive
        self.echoes_input = echoes_input and interactive
        self._size = size
        self._rows = 0  # rows written so far, the user's echoed lines included
        # The thread reading the keyboard counts typed lines while the event loop writes.
        self._lock = threading.Lock()

    def _rows_of(self, text: str) -> int:
        columns = max(1, self._size().columns)
        return max(1, -(-_columns_taken(text) // columns))

    def line(self, text: str) -> Line:
        """Write ``text`` as a new line."""
        with self._lock:
            written = Line(self._rows, self._rows_of(text))
            self._rows += written.rows
            self._write(text + "\n")
        return written

    def typed(self, text: str) -> Line | None:
        """Count a line the user typed, which the terminal already shows; None if it does not."""
        if not self.echoes_input:
            return None
        with self._lock:
            echoed = Line(self._rows, self._rows_of(text.rstrip("\r\n")))
            self._rows += echoed.rows
        return echoed

    def rewrite(self, line: Line, text: str) -> bool:
        """Show ``text`` in place of ``line``; False when that cannot be done (not a
        terminal, the line scrolled away, or the new text needs more rows than there are)."""
        if not self.interactive:
            return False
        with self._lock:
            return self._rewrite(line, text)

    def _rewrite(self, line: Line, text: str) -> bool:
        up = self._rows - line.start
        if up > self._size().lines - 1:
            return False  # scrolled off the top
        rows = self._rows_of(text)
        last = line.start + line.rows == self._rows
        if last and rows != line.rows:
            # Nothing below it but the cursor's row: clear from the line down and write it
            # anew, however many rows it takes now.
            self._write(f"\033[{up}A\r\033[J{text}\n")
            self._rows += rows - line.rows
            line.rows = rows
            return True
        if rows > line.rows:
            return False  # it would cover the line below
        # Save the cursor (the user may be typing), clear the line's rows, write, come back.
        clear = "\033[2K\033[1B" * (line.rows - 1) + "\033[2K"
        back_up = f"\033[{line.rows - 1}A" if line.rows > 1 else ""
        self._write(f"\0337\033[{up}A\r{clear}{back_up}{text}\0338")
        return True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chatclient",
        description="Chat in the terminal as one user of the chat backend (local stack by default).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--username", "-u", required=True, help="Cognito username to sign in as")
    parser.add_argument("--password", "-p",
                        help="password (default: $CHAT_PASSWORD, else asked for on the terminal)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--state-file", default=os.environ.get("WSSTACK_STATE_FILE", ".local/stack.json"),
                       help="local stack state file written by `wsstack up` (default: %(default)s)")
    where.add_argument("--stack-name", help="talk to a deployed CloudFormation stack instead of the local one")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"),
                        help="region of --stack-name (default: %(default)s)")
    peer = parser.add_mutually_exclusive_group()
    peer.add_argument("--to", metavar="USERNAME", help="open the conversation with this user (findUsers)")
    peer.add_argument("--to-sub", metavar="SUB", help="open the conversation with this user id")
    parser.add_argument("--linger", type=float, default=10.0, metavar="SECONDS",
                        help="on exit, wait this long for unacknowledged messages (default: %(default)s)")
    parser.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    parser.add_argument("--verbose", "-v", action="store_true", help="log the client's connection details")
    parser.add_argument("--print-token", action="store_true",
                        help="sign in, print the ID token (what ?token= takes) and exit, for another WebSocket client")
    return parser


@dataclass
class _Peer:
    user_id: str
    name: str


@dataclass
class _Sent:
    """A message typed here, as its line shows it: the tick moves and it can be deleted."""

    number: int
    stamp: str
    to: str
    text: str
    shown: Line
    status: MessageStatus | None = None
    deleted: bool = False


@dataclass
class _Shown:
    """A message received and shown, kept so a deletion can be shown on its line."""

    stamp: str
    who: str
    shown: Line


@dataclass
class _Offline:
    """The one line that tells of an outage, updated on each retry."""

    shown: Line
    retries: int = field(default=1)


class TerminalChat:
    """The terminal's state: who we talk to, what we sent, and how to print it.

    Args:
        client: a started or startable client.
        screen: where lines go (stdout by default), rewritten in place on a terminal.
        color: use ANSI colours for read ticks and notices.
    """

    def __init__(self, client: ChatClient, *, username: str, screen: Screen, color: bool) -> None:
        self.client = client
        self.username = username
        self.screen = screen
        self.color = color
        self.peer: _Peer | None = None
        self.last_sender: _Peer | None = None
        self.listed: list[ConversationSummary] = []
        self.names: dict[str, str] = {}
        # Own messages get small numbers so the user can refer to them (/delete 3).
        self.numbers: dict[str, int] = {}
        self.sent_ids: list[str] = []
        self._sent: dict[str, _Sent] = {}
        self._shown: dict[str, _Shown] = {}
        self._offline: _Offline | None = None
        self._read_receipts_failed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._was_online = False

    # ------------------------------------------------------------------ output

    def write(self, text: str) -> Line:
        """Print one line."""
        return self.screen.line(text)

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def notice(self, text: str) -> Line:
        return self.write(self._paint(f"-- {text}", "2"))

    def _stamp(self, message: ChatMessage | None = None) -> str:
        if message is not None and len(message.timestamp) >= 19:
            return message.timestamp[11:19]
        return time.strftime("%H:%M:%S", time.gmtime())

    def _name(self, user_id: str) -> str:
        return self.names.get(user_id) or user_id[:8]

    # ------------------------------------------------------------------ events

    def on_event(self, event: Event) -> None:
        """Print what the client reports (called from the event loop)."""
        if isinstance(event, MessageReceived):
            self._show_message(event.message)
        elif isinstance(event, MessageAcked):
            self._show_tick(event.message_id, MessageStatus.SENT)
        elif isinstance(event, MessageStatusChanged):
            self._show_tick(event.message_id, event.status)
        elif isinstance(event, SendFailed):
            number = self.numbers.get(event.message_id, "?")
            self.write(self._paint(f"   #{number} ✗ not sent: {event.code}: {event.message}", "31"))
        elif isinstance(event, MessageDeleted):
            self._show_deleted(event)
        elif isinstance(event, ServerError):
            self.write(self._paint(f"!! server: {event.code}: {event.message}", "31"))
        elif isinstance(event, ConnectionStateChanged):
            self._show_state(event)

    def _show_state(self, event: ConnectionStateChanged) -> None:
        if event.state is ConnectionState.ONLINE:
            self._offline = None
            self.notice("online" if not self._was_online else "back online (caught up)")
            self._was_online = True
        elif event.state is ConnectionState.RECONNECTING:
            self._show_offline(event)
        elif event.state is ConnectionState.CLOSED:
            self._offline = None
            if event.error:
                self.notice(f"stopped: {event.error}")

    def _show_offline(self, event: ConnectionStateChanged) -> None:
        # One line per outage: on a terminal it counts the retries where it stands; in a
        # pipe it is said once, and "back online" closes it.
        if self._offline is None:
            line = self.notice(f"offline ({event.error}); retrying in {event.retry_in or 0:.1f} s")
            self._offline = _Offline(line)
            return
        self._offline.retries += 1
        text = self._paint(f"-- offline ({event.error}); retrying in {event.retry_in or 0:.1f} s "
                           f"(retry {self._offline.retries})", "2")
        if self.screen.interactive and not self.screen.rewrite(self._offline.shown, text):
            self._offline.shown = self.write(text)

    def _sent_line(self, sent: _Sent) -> str:
        text = "(deleted)" if sent.deleted else sent.text
        tick = ""
        if sent.status is not None:
            tick = " " + (self._paint(_TICKS[sent.status], "34") if sent.status is MessageStatus.READ
                          else _TICKS[sent.status])
        return f"[{sent.stamp}] you → {sent.to}: {text}  #{sent.number}{tick}"

    def _show_tick(self, message_id: str, status: MessageStatus) -> None:
        sent = self._sent.get(message_id)
        if sent is None:
            return  # sent from another device of ours
        if sent.status is not None and _STEPS.index(status) <= _STEPS.index(sent.status):
            return  # an ack that came after the delivery it implies
        sent.status = status
        if self.screen.rewrite(sent.shown, self._sent_line(sent)):
            return
        # Not on a terminal, or scrolled away: each step once, on its own line.
        tick = _TICKS[status]
        shown = self._paint(tick, "34") if status is MessageStatus.READ else tick
        self.write(f"   #{sent.number} {shown}")

    def _show_deleted(self, event: MessageDeleted) -> None:
        sent = self._sent.get(event.message_id)
        if sent is not None:
            sent.deleted = True
            if not self.screen.rewrite(sent.shown, self._sent_line(sent)):
                self.write(f"[{self._stamp()}] you deleted #{sent.number} (sent at {sent.stamp})")
            return
        shown = self._shown.get(event.message_id)
        if shown is not None:
            if not self.screen.rewrite(shown.shown, f"[{shown.stamp}] {shown.who}: (deleted)"):
                self.write(f"[{self._stamp()}] {shown.who} deleted the message sent at {shown.stamp}")
            return
        # Not seen here (sent before this session, or from another device of ours).
        others = [p for p in event.conversation_id.removeprefix("dm_").split("_") if p != self.client.user_id]
        who = self._name(others[0]) if others else "someone"
        self.write(f"[{self._stamp()}] a message in the conversation with {who} was deleted")

    def _show_message(self, message: ChatMessage) -> None:
        mine = message.sender_id == self.client.user_id
        other_id = message.recipient_id if mine else message.sender_id
        if not mine and message.sender_name:
            self.names[message.sender_id] = message.sender_name
        if not mine:
            self.last_sender = _Peer(other_id, self._name(other_id))
            if self.peer is None:
                self.peer = self.last_sender
                self.notice(f"conversation with {self.peer.name} opened (it wrote first)")
        is_open = self.peer is not None and self.peer.user_id == other_id
        where = "" if is_open else self._paint(
            f" [from {self._name(other_id)}, not the open conversation: /reply]", "33")
        who = "you (other device)" if mine else self._name(message.sender_id)
        text = "(deleted)" if message.is_deleted else message.content
        stamp = self._stamp(message)
        line = self.write(f"[{stamp}] {who}: {text}{where}")
        self._shown[message.message_id] = _Shown(stamp, who, line)
        # Read when its conversation is open; the others stay unread (and counted by /list)
        # until the person opens theirs.
        if not mine and not message.is_deleted and is_open:
            self._spawn(self._mark_read(message))

    async def _mark_read(self, message: ChatMessage) -> None:
        # Shown on screen means seen: tell the sender.
        try:
            await self.client.mark_read(message.conversation_id, message_ids=[message.message_id])
        except RequestFailed as exc:
            if not self._read_receipts_failed:
                self._read_receipts_failed = True
                self.notice(f"read receipts not sent ({exc.code}: {exc.message})")
        except ChatClientError as exc:
            logger.info("could not mark %s read: %s", message.message_id, exc)
        except TimeoutError:
            logger.info("marking %s read timed out", message.message_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ input

    async def handle(self, line: str, *, echoed: Line | None = None) -> bool:
        """Act on one line; False when the user asked to quit.

        Args:
            line: the line, as read.
            echoed: where the terminal shows it, if the user typed it there
                (:meth:`Screen.typed`).
        """
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            await self.send(line, echoed=echoed)
            return True
        command, _, argument = line.partition(" ")
        argument = argument.strip()
        if command in ("/quit", "/exit"):
            return False
        handler = self._commands.get(command)
        if handler is None:
            self.notice(f"unknown command {command}; /help lists them")
            return True
        try:
            await handler(self, argument)
        except RequestFailed as exc:
            self.notice(f"{command} failed: {exc.code}: {exc.message}")
        except (ChatClientError, TimeoutError) as exc:
            self.notice(f"{command} failed: {exc or 'no answer in time'}")
        return True

    async def send(self, text: str, *, echoed: Line | None = None) -> None:
        """Send ``text`` to the open conversation and show it, in place of the line the
        terminal echoed as it was typed (``echoed``) when there is one."""
        if self.peer is None:
            self.notice("no conversation open: /to <username> or /sub <sub> first")
            return
        try:
            message_id = await self.client.send_message(self.peer.user_id, text)
        except ValueError as exc:
            self.notice(str(exc))
            return
        number = len(self.sent_ids) + 1
        self.numbers[message_id] = number
        self.sent_ids.append(message_id)
        to = self.names.get(self.peer.user_id, self.peer.name)
        sent = _Sent(number, self._stamp(), to, text, echoed or Line(0, 0))
        if echoed is None or not self.screen.rewrite(echoed, self._sent_line(sent)):
            sent.shown = self.write(self._sent_line(sent))
        self._sent[message_id] = sent

    async def open_by_username(self, username: str) -> bool:
        """Open the conversation with ``username`` via findUsers; False if not found."""
        if not username:
            self.notice("usage: /to <username>")
            return False
        users = await self.client.find_users(username, limit=20)
        exact = [u for u in users if u.username == username] or users
        if not exact:
            self.notice(f"no user matches {username!r}")
            return False
        if len(exact) > 1:
            self.notice("several users match: " + ", ".join(f"{u.username} ({u.name})" for u in exact))
            return False
        user = exact[0]
        self.names[user.user_id] = user.name or user.username
        await self._open(_Peer(user.user_id, self.names[user.user_id]))
        return True

    async def _open(self, peer: _Peer) -> None:
        self.peer = peer
        self.notice(f"conversation with {peer.name} ({peer.user_id}) is open; type to send")
        await self._read_unread(peer)

    async def _read_unread(self, peer: _Peer) -> None:
        # Opening a conversation reads it: what came while it was not open here (on another
        # device, or in another conversation's turn) is marked read up to its last message,
        # so /list stops counting it and the sender sees ✓✓ read.
        try:
            page = await self.client.list_conversations()
            summary = next((c for c in page.conversations if c.other_user_id == peer.user_id), None)
            if summary is None or not summary.unread_count or summary.last_message is None:
                return
            last = summary.last_message
            moved = await self.client.mark_read(summary.conversation_id, up_to=last.message_id)
        except (ChatClientError, TimeoutError) as exc:
            logger.info("could not read the unread messages of %s: %s", peer.user_id, exc)
            return
        if moved:
            latest = "(deleted)" if last.is_deleted else last.content
            who = "you" if last.sender_id == self.client.user_id else self._name(last.sender_id)
            self.notice(f"{len(moved)} unread marked read; the last: [{self._stamp(last)}] {who}: {latest}")

    async def _cmd_to(self, argument: str) -> None:
        try:
            await self.open_by_username(argument)
        except RequestFailed as exc:
            self.notice(f"could not look {argument!r} up ({exc.code}: {exc.message}); "
                        "open the conversation by id with /sub <sub> instead")

    async def _cmd_sub(self, argument: str) -> None:
        if not argument:
            self.notice("usage: /sub <sub>")
            return
        await self._open(_Peer(argument, self._name(argument)))

    async def _cmd_reply(self, argument: str) -> None:
        if self.last_sender is None:
            self.notice("nobody wrote yet")
            return
        await self._open(self.last_sender)

    async def _cmd_users(self, argument: str) -> None:
        users = await self.client.find_users(argument or "a")
        if not users:
            self.notice("no match")
        for user in users:
            self.write(f"   {user.username:<20} {user.name:<24} {user.user_id}")

    async def _cmd_list(self, argument: str) -> None:
        page = await self.client.list_conversations()
        self.listed = list(page.conversations)
        if not self.listed:
            self.notice("no conversations yet")
        for number, item in enumerate(self.listed, 1):
            self.names.setdefault(item.other_user_id, item.other_user_name)
            last = ""
            if item.last_message is not None:
                last = "(deleted)" if item.last_message.is_deleted else item.last_message.content
                if item.last_message.sender_id == self.client.user_id:
                    last = f"you: {last}"
            unread = f" ({item.unread_count} unread)" if item.unread_count else ""
            self.write(f"   {number}. {item.other_user_name or item.other_user_id[:8]}{unread}: {last[:60]}")

    async def _cmd_open(self, argument: str) -> None:
        if not argument.isdigit() or not 1 <= int(argument) <= len(self.listed):
            self.notice("usage: /open <n>, with n from /list")
            return
        item = self.listed[int(argument) - 1]
        await self._open(_Peer(item.other_user_id, item.other_user_name or item.other_user_id[:8]))

    async def _cmd_delete(self, argument: str) -> None:
        if not argument.lstrip("#").isdigit() or not 1 <= int(argument.lstrip("#")) <= len(self.sent_ids):
            self.notice("usage: /delete <n>, with #n one of your messages")
            return
        await self.client.delete_message(self.sent_ids[int(argument.lstrip("#")) - 1])

    async def _cmd_whoami(self, argument: str) -> None:
        self.notice(f"{self.username} (sub {self.client.user_id})")

    async def _cmd_help(self, argument: str) -> None:
        for line in EPILOG.split("\n\n")[0].splitlines()[1:]:
            self.write(line)

    _commands = {
        "/to": _cmd_to, "/sub": _cmd_sub, "/reply": _cmd_reply, "/users": _cmd_users, "/list": _cmd_list,
        "/open": _cmd_open, "/delete": _cmd_delete, "/whoami": _cmd_whoami, "/help": _cmd_help,
    }

    async def linger(self, timeout: float) -> None:
        """Give unacknowledged messages up to ``timeout`` seconds before leaving."""
        pending = [m.message_id for m in self.client.outbox]
        if not pending:
            return
        self.notice(f"waiting up to {timeout:.0f} s for {len(pending)} message(s) to be stored")
        with contextlib.suppress(TimeoutError, ChatClientError):
            async with asyncio.timeout(timeout):
                for message_id in pending:
                    with contextlib.suppress(KeyError):
                        await self.client.wait_acked(message_id)
        left = len(self.client.outbox)
        if left:
            self.notice(f"{left} message(s) were not stored and are dropped")


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class _TypedLines:
    """The lines of stdin, read by a thread from before sign-in, each counted on the screen
    (:meth:`Screen.typed`) the moment it is read: the terminal echoed it just then, so lines
    typed while connecting, or pasted at once, are counted where they show. ``None`` ends them.
    """

    def __init__(self, screen: Screen) -> None:
        self._screen = screen
        self._lock = threading.Lock()
        self._early: list[tuple[str, Line | None] | None] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, Line | None] | None] | None = None

    def start(self) -> None:
        # A daemon thread: stdin has no portable non-blocking read, and a thread stuck in
        # readline must not keep the process alive after /quit.
        threading.Thread(target=self._read, name="chat-stdin", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self._deliver((line, self._screen.typed(line)))
        self._deliver(None)

    def _deliver(self, item: tuple[str, Line | None] | None) -> None:
        with self._lock:
            if self._loop is None or self._queue is None:
                self._early.append(item)  # read before the event loop asked for lines
            else:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def get(self) -> tuple[str, Line | None] | None:
        """The next line and where its echo shows, or None at the end of input."""
        with self._lock:
            if self._queue is None:
                self._loop, self._queue = asyncio.get_running_loop(), asyncio.Queue()
                for item in self._early:
                    self._queue.put_nowait(item)
                self._early.clear()
        return await self._queue.get()


def _password(args: argparse.Namespace) -> str:
    password = args.password or os.environ.get("CHAT_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise SystemExit("error: give --password or set CHAT_PASSWORD when input is not a terminal")
    return getpass.getpass(f"password for {args.username}: ")


def _target(args: argparse.Namespace) -> Target:
    if args.stack_name:
        return Target.from_cloudformation(args.stack_name, args.region)
    return Target.from_state_file(Path(args.state_file))


def _sign_in(target: Target, username: str, password: str) -> Tokens:
    cognito = target.cognito()
    try:
        return sign_in(target, username, password)
    except (cognito.exceptions.NotAuthorizedException, cognito.exceptions.UserNotFoundException):
        raise SystemExit(f"error: wrong username or password for {username!r}") from None


async def _chat(args: argparse.Namespace, target: Target, tokens: Tokens, screen: Screen,
                lines: _TypedLines) -> int:
    color = sys.stdout.isatty() and not args.no_color and "NO_COLOR" not in os.environ
    client = ChatClient.for_target(target, tokens)
    chat = TerminalChat(client, username=args.username, screen=screen, color=color)
    client.subscribe(chat.on_event)
    chat.notice(f"signed in as {args.username} (sub {tokens.sub}); connecting to {target.websocket_url}")
    async with client:
        try:
            await client.wait_online(30)
        except ChatClientError as exc:
            chat.notice(f"could not connect: {exc}")
            return 1
        if args.to_sub:
            await chat.handle(f"/sub {args.to_sub}")
        elif args.to:
            await chat.handle(f"/to {args.to}")
        elif chat.peer is None:
            chat.notice("no conversation open: /to <username>, /sub <sub>, or wait for a message")
        while True:
            item = await lines.get()
            if item is None or not await chat.handle(item[0], echoed=item[1]):
                break
        await chat.linger(args.linger)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m chatclient``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # A dropped connection is reported on screen already; the library's own lines would repeat it.
        logging.getLogger("chatclient").setLevel(logging.ERROR)
    target = _target(args)
    password = _password(args)
    screen = Screen(_write_stdout, interactive=sys.stdout.isatty(), echoes_input=sys.stdin.isatty())
    lines = _TypedLines(screen)
    if not args.print_token:
        lines.start()  # from here on, what the user types is read, and counted where it shows
    tokens = _sign_in(target, args.username, password)
    if args.print_token:
        print(tokens.id_token)
        return 0
    try:
        return asyncio.run(_chat(args, target, tokens, screen, lines))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
