"""What a person sees on a terminal, rebuilt from the bytes written to it.

A small VT100 screen for the tests of the terminal chat: it wraps at its width, scrolls past
its height, and follows the few control sequences the chat writes (carriage return, newline,
cursor up and down, erase line, erase below, save and restore the cursor, colours ignored).
Anything else is an error, so a sequence the chat starts writing is noticed here.
"""

from __future__ import annotations

import re

__all__ = ["FakeTerminal"]

_SEQUENCE = re.compile(r"\x1b(?:\[([0-9;]*)([A-Za-z])|([78]))")


class FakeTerminal:
    """A terminal ``columns`` wide and ``lines`` high, starting empty with the cursor top left."""

    def __init__(self, columns: int = 80, lines: int = 24) -> None:
        self.columns = columns
        self.lines = lines
        self._rows: list[list[str]] = [[]]  # every row ever shown, the screen being the last ``lines``
        self._row = 0
        self._col = 0
        self._saved = (0, 0)
        self._pending_wrap = False

    # ------------------------------------------------------------------ reading

    @property
    def screen(self) -> list[str]:
        """The rows on screen now, trailing blanks and empty rows at the bottom left out."""
        rows = ["".join(row).rstrip() for row in self._rows[-self.lines:]]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    # ------------------------------------------------------------------ writing

    def feed(self, text: str) -> None:
        """Show ``text`` as the terminal would (output and echoed input alike)."""
        position = 0
        for match in _SEQUENCE.finditer(text):
            self._print(text[position:match.start()])
            self._control(match.group(1), match.group(2), match.group(3))
            position = match.end()
        self._print(text[position:])

    def _top(self) -> int:
        return max(0, len(self._rows) - self.lines)

    def _print(self, text: str) -> None:
        for char in text:
            if char == "\n":
                self._newline()
            elif char == "\r":
                self._col, self._pending_wrap = 0, False
            elif char == "\x1b":
                raise AssertionError(f"an escape sequence the fake terminal does not know: {text!r}")
            else:
                if self._pending_wrap:
                    self._newline()
                row = self._rows[self._row]
                row.extend(" " * (self._col + 1 - len(row)))
                row[self._col] = char
                if self._col == self.columns - 1:
                    self._pending_wrap = True  # like xterm: the wrap happens on the next character
                else:
                    self._col += 1

    def _newline(self) -> None:
        # The tty turns "\n" into "\r\n" (onlcr), as on any terminal in its usual mode.
        self._row += 1
        self._col, self._pending_wrap = 0, False
        if self._row == len(self._rows):
            self._rows.append([])

    def _control(self, params: str | None, final: str | None, esc: str | None) -> None:
        if esc == "7":
            self._saved = (self._row, self._col)
            return
        if esc == "8":
            self._row, self._col = self._saved
            self._pending_wrap = False
            return
        count = int(params) if params and params.isdigit() else 1
        if final == "m":
            return
        if final == "A":
            self._row = max(self._top(), self._row - count)
        elif final == "B":
            self._row = min(len(self._rows) - 1, self._row + count)
        elif final == "K" and params == "2":
            self._rows[self._row] = []
        elif final == "J" and params in ("", "0"):
            del self._rows[self._row][self._col:]
            for below in range(self._row + 1, len(self._rows)):
                self._rows[below] = []
        else:
            raise AssertionError(f"an escape sequence the fake terminal does not know: ESC[{params}{final}")
        self._pending_wrap = False
