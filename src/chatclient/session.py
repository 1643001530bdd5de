"""A blocking WebSocket session speaking protocol v1 (for scripts and tests)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from websockets.sync.client import ClientConnection, connect

from chatclient.target import Target

__all__ = ["ChatSession", "conversation_id"]


def conversation_id(user_a: str, user_b: str) -> str:
    """The id of the 1:1 conversation between two users (the same from both sides)."""
    return "dm_" + "_".join(sorted((user_a, user_b)))


def _message_ids(frame: dict[str, Any]) -> list[str]:
    """The ids of the messages a ``message`` or ``sync`` frame carries."""
    if frame.get("type") == "message":
        return [frame["message"]["messageId"]]
    if frame.get("type") == "sync":
        return [m["messageId"] for m in frame.get("messages", [])]
    return []


class ChatSession:
    """One connection of one signed-in user.

    Args:
        confirm: answer every ``message`` frame and every non-empty ``sync`` page that
            :meth:`receive` reads with ``ackMessages``, as an app does once it holds the
            messages. Without it the messages stay pending on the server (no
            ``delivered`` for their senders, and each sync returns them again).
    """

    def __init__(self, target: Target, id_token: str, *, open_timeout: float = 10.0, confirm: bool = True) -> None:
        self.confirm = confirm
        self._resources = contextlib.ExitStack()
        self.ws: ClientConnection = self._resources.enter_context(
            connect(f"{target.websocket_url}?token={quote(id_token)}", open_timeout=open_timeout)
        )

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._resources.close()

    def send(self, action: str, **fields: Any) -> None:
        self.ws.send(json.dumps({"action": action, **fields}))

    def send_message(self, conversation: str, recipient: str, content: str, **extra: Any) -> str:
        """Send a chat message and return its client-chosen messageId."""
        message_id = extra.pop("messageId", None) or str(uuid.uuid4())
        self.send("sendMessage", messageId=message_id, conversationId=conversation,
                  recipientId=recipient, content=content, **extra)
        return message_id

    def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame, decoded; TimeoutError if none arrives in time."""
        frame = json.loads(self.ws.recv(timeout=timeout))
        assert isinstance(frame, dict), frame
        if self.confirm:
            self.ack_messages(_message_ids(frame))
        return frame

    def ack_messages(self, message_ids: list[str]) -> None:
        """Confirm receipt of messages (nothing is sent for an empty list). The server
        ignores ids of messages not sent to this user, so a copy of one's own message
        pushed to another device may be confirmed harmlessly."""
        if message_ids:
            self.send("ackMessages", messageIds=message_ids)

    def request(self, action: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Send ``action`` with a fresh ``requestId`` and return the frame answering it.

        Frames that arrive meanwhile (pushes, answers to other requests) are read and skipped,
        as :meth:`receive_until` does; bounded by ``timeout``.
        """
        request_id = uuid.uuid4().hex
        self.send(action, requestId=request_id, **fields)
        return self._receive_matching(lambda frame: frame.get("requestId") == request_id, timeout)

    def receive_until(self, frame_type: str, timeout: float = 10.0) -> dict[str, Any]:
        """Skip frames until one of ``frame_type`` arrives (bounded by ``timeout``)."""
        return self._receive_matching(lambda frame: frame.get("type") == frame_type, timeout)

    def _receive_matching(self, wanted: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.receive(timeout=max(0.0, deadline - time.monotonic()))
            if wanted(frame):
                return frame
