"""Log output of the local stack: readable lines for people, JSON lines for machines.

Every component logs under ``wsstack``: ``wsstack.gateway`` one line per connect, message and
disconnect; ``wsstack.runtime`` one line per invocation (function, request id, duration,
cold or warm); ``wsstack.fn.<LogicalId>`` each line a function printed, Powertools' JSON
included. The facts of each line also ride on the record as attributes (``function``,
``request_id``, ``duration_ms``, ``cold_start``...), which :class:`JsonFormatter` writes out
as fields. A function's line keeps the level the function gave it (see :func:`function_line_level`),
so ``--log-level WARNING`` shows its warnings and errors and an ERROR stands out as one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["FORMATS", "JsonFormatter", "configure_logging", "function_line_level"]

FORMATS = ("text", "json")

#: Attributes every LogRecord has; anything else on a record was passed as ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: Library loggers kept at WARNING: our own lines say what matters.
_NOISY = ("botocore", "urllib3", "websockets")
_FUNCTION_LOGGER = "wsstack.fn."


#: Level names functions write, as Python's logging, Powertools and awslambdaric spell them.
_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
    "FATAL": logging.CRITICAL,
}
#: awslambdaric's text lines: ``[ERROR] Type: message`` (an unhandled exception) or
#: ``[WARNING]\t<time>\t<request id>\t<message>`` (the logging module under Lambda).
_BRACKETED_LEVEL = re.compile(r"\[([A-Z]+)\](?:\s|$)")
#: aws-lambda-ric's (Node) text lines: ``<time>\t<request id>\t<LEVEL>\t<message>``.
_NODE_LEVEL = re.compile(r"\d{4}-\d\d-\d\dT[^\t]*\t[^\t]*\t([A-Z]+)\t")


def function_line_level(text: str) -> int:
    """The level of one line a function printed: INFO unless the line says otherwise.

    A JSON object with a ``level`` (Powertools Logger, or Lambda's JSON log format) has
    that level; a line that starts with ``[LEVEL]`` (awslambdaric's text format, its
    report of an unhandled exception included) has that one, and so has a line of Node's
    ``console`` under aws-lambda-ric (time, request id, level and message, tab-separated).
    Anything else, ``print`` output say, is INFO, as CloudWatch shows it.
    """
    name = None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("level"), str):
            name = parsed["level"]
    elif text.startswith("["):
        match = _BRACKETED_LEVEL.match(text)
        name = match.group(1) if match else None
    elif text[:1].isdigit():
        match = _NODE_LEVEL.match(text)
        name = match.group(1) if match else None
    return _LEVELS.get(name.upper(), logging.INFO) if name else logging.INFO


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message`` and the record's fields.

    A function's own line that is itself a JSON object (Powertools Logger writes those) is
    not nested as a string: its ``message`` and ``level`` become the line's, and the whole
    object is kept under ``log``.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.name.startswith(_FUNCTION_LOGGER):
            _merge_function_json(entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    """The text format, with the time stamp rendered once per second rather than per line.

    Under load the stack writes a line per message and per invocation; ``time.strftime`` was
    a third of the cost of each.
    """

    def __init__(self, fmt: str, datefmt: str) -> None:
        super().__init__(fmt, datefmt=datefmt)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = super().formatTime(record, datefmt)
            self._second = second
        return self._stamp


def _merge_function_json(entry: dict[str, Any]) -> None:
    text = entry["message"]
    if not text.startswith("{"):
        return
    try:
        parsed = json.loads(text)
    except ValueError:
        return
    if not isinstance(parsed, dict):
        return
    entry["log"] = parsed
    if isinstance(parsed.get("message"), str):
        entry["message"] = parsed["message"]
    if isinstance(parsed.get("level"), str):
        entry["level"] = parsed["level"].upper()


def configure_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send the stack's logs to ``stream`` (stderr by default) as text or JSON lines.

    Args:
        level: the least level shown (DEBUG, INFO, WARNING, ERROR).
        fmt: ``"text"`` (``12:00:01 INFO  wsstack.runtime: ...``) or ``"json"``.
        stream: where lines go.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
