"""Bounded memories that make the client report each message and status change once.

A message can reach the client twice: pushed live, and again in a sync page when the two
cross (the push lands while the page is being read), or after a resend. Status frames can
cross too (``read`` may overtake ``delivered``). Both memories forget the oldest entries
past ``capacity`` so a long-running client does not grow without bound; an app with a
database dedupes against the database instead.
"""

from __future__ import annotations

from collections import OrderedDict

from chatclient.frames import MessageStatus

__all__ = ["RecentIds", "StatusLedger"]


class RecentIds:
    """The last ``capacity`` message ids seen."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def add(self, message_id: str) -> bool:
        """Remember ``message_id``; True if it was new."""
        if message_id in self._ids:
            self._ids.move_to_end(message_id)
            return False
        self._ids[message_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True


class StatusLedger:
    """The furthest status known for each of the last ``capacity`` messages."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._status: OrderedDict[str, MessageStatus] = OrderedDict()

    def get(self, message_id: str) -> MessageStatus | None:
        return self._status.get(message_id)

    def advance(self, message_id: str, status: MessageStatus) -> bool:
        """Record ``status`` if it moves the message forward; True if it did."""
        current = self._status.get(message_id)
        if current is not None and current.rank >= status.rank:
            return False
        self._status[message_id] = status
        self._status.move_to_end(message_id)
        if len(self._status) > self.capacity:
            self._status.popitem(last=False)
        return True
