"""Log output: text lines for people, one JSON object per line for machines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from wsstack.logs import JsonFormatter, configure_logging, function_line_level


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _record(name: str, message: str, **extra: object) -> logging.LogRecord:
    record = logging.getLogger(name).makeRecord(name, logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_time_level_logger_message_and_the_invocation_fields() -> None:
    record = _record("wsstack.runtime", "EchoFunction r-1 1.20 ms warm ok", function="EchoFunction",
                     request_id="r-1", duration_ms=1.2, cold_start=False)

    line = json.loads(JsonFormatter().format(record))

    assert line["level"] == "INFO"
    assert line["logger"] == "wsstack.runtime"
    assert line["message"] == "EchoFunction r-1 1.20 ms warm ok"
    assert line["time"].endswith("Z")
    assert (line["function"], line["request_id"], line["duration_ms"], line["cold_start"]) == (
        "EchoFunction", "r-1", 1.2, False)
    assert "args" not in line and "msg" not in line  # no LogRecord internals


def test_a_function_powertools_line_is_unpacked_not_nested_as_a_string() -> None:
    powertools = json.dumps({"level": "WARNING", "message": "slow table", "service": "chat", "cold_start": True})
    record = _record("wsstack.fn.SendMessageFunction", powertools, function="SendMessageFunction", request_id="r-2")

    line = json.loads(JsonFormatter().format(record))

    assert line["logger"] == "wsstack.fn.SendMessageFunction"
    assert (line["level"], line["message"]) == ("WARNING", "slow table")
    assert line["log"]["service"] == "chat"
    assert line["request_id"] == "r-2"


def test_a_function_plain_line_stays_as_written() -> None:
    record = _record("wsstack.fn.Echo", "{not json", function="Echo")

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "{not json"
    assert "log" not in line


def test_configure_logging_writes_json_lines_and_quiets_libraries(restore_root_logging) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)

    logging.getLogger("wsstack.gateway").info("connect", extra={"status": 101})
    logging.getLogger("botocore").info("chatter")

    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["status"] == 101


def test_configure_logging_refuses_an_unknown_format(restore_root_logging) -> None:
    with pytest.raises(ValueError, match="text, json"):
        configure_logging("INFO", "yaml")


@pytest.mark.parametrize(("line", "level"), [
    # Powertools Logger, and Lambda's own JSON log format.
    ('{"level":"ERROR","location":"_handle:135","message":"Unhandled error"}', logging.ERROR),
    ('{"level":"WARNING","message":"slow table"}', logging.WARNING),
    ('{"timestamp":"2026-11-26T09:30:12Z","level":"WARN","message":"x"}', logging.WARNING),
    ('{"level":"debug","message":"x"}', logging.DEBUG),
    ('{"level":"CRITICAL","message":"x"}', logging.CRITICAL),
    # awslambdaric's text format: an unhandled exception, and the logging module under Lambda.
    ("[ERROR] KeyError: 'requestContext'\nTraceback (most recent call last):", logging.ERROR),
    ("[WARNING]\t2026-11-26T09:30:12.318Z\tr-1\tretrying", logging.WARNING),
    ("[DEBUG]\t2026-11-26T09:30:12.318Z\tr-1\tdetail", logging.DEBUG),
    # aws-lambda-ric's (Node) console lines, and its report of an uncaught exception at init.
    ("2026-11-30T05:43:46.031Z\tf8954d2c-691f\tERROR\tabout to fail", logging.ERROR),
    ("2026-11-30T05:43:46.031Z\tf8954d2c-691f\tWARN\tslow table", logging.WARNING),
    ("2026-11-30T05:43:46.031Z\tf8954d2c-691f\tINFO\tconnected", logging.INFO),
    ('2026-11-30T05:43:47.219Z\tundefined\tERROR\tUncaught Exception \t{"errorType":"Runtime.UserCodeSyntaxError"}',
     logging.ERROR),
    ("2026 was a good year\tERROR\t", logging.INFO),
    # Anything else is what the function printed: INFO.
    ("hello from the handler", logging.INFO),
    ('{"message": "no level"}', logging.INFO),
    ('{"level": 40}', logging.INFO),
    ("{not json", logging.INFO),
    ("[1, 2, 3]", logging.INFO),
    ("[ERROR]no space", logging.INFO),
    ('{"level":"LOUD","message":"x"}', logging.INFO),
])
def test_a_function_line_keeps_the_level_it_names(line: str, level: int) -> None:
    assert function_line_level(line) == level
