"""What a handler sees: its event, its context, its environment; and where its output goes."""

import asyncio
import json
import logging
import re
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("event", [{"a": {"b": [1, 2]}}, [1, "two"], "text", 42, None])
def test_event_reaches_the_handler_decoded_from_json(run_runtime, function, event):
    async def scenario(runtime):
        return await runtime.invoke("Echo", event)

    result = run_runtime(scenario, (function("Echo", "handlers.echo"), {}))

    assert result.payload["event"] == event
    assert result.payload["type"] == type(event).__name__


def test_handler_sees_the_template_environment_and_what_lambda_sets(run_runtime, function, monkeypatch):
    monkeypatch.setenv("WSSTACK_PARENT_ONLY", "must not leak")

    async def scenario(runtime):
        return await runtime.invoke("Env", {})

    fn = function("Env", "handlers.environment", memory_mb=256)
    env = run_runtime(scenario, (fn, {"TABLE_NAME": "messages", "AWS_REGION": "eu-west-1"})).payload

    assert env["TABLE_NAME"] == "messages"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "Env"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/Env"
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["LAMBDA_TASK_ROOT"] == str(FIXTURES.resolve())
    assert env["_HANDLER"] == "handlers.environment"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    # Our own process's variables stay out (pytest sets PYTEST_CURRENT_TEST while a test runs).
    assert "WSSTACK_PARENT_ONLY" not in env
    assert "PYTEST_CURRENT_TEST" not in env


def test_region_defaults_to_us_east_1(run_runtime, function):
    async def scenario(runtime):
        return await runtime.invoke("Env", {})

    env = run_runtime(scenario, (function("Env", "handlers.environment"), {})).payload

    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_handler_context_describes_the_invocation(run_runtime, function):
    async def scenario(runtime):
        return await runtime.invoke("Ctx", {})

    result = run_runtime(scenario, (function("Ctx", "handlers.lambda_context", timeout=3, memory_mb=512), {}))

    context = result.payload
    assert context["request_id"] == result.request_id
    assert context["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Ctx"
    assert context["function_name"] == "Ctx"
    assert context["memory_limit_in_mb"] == "512"
    assert 0 < context["remaining_ms"] <= 3000


def test_a_function_with_a_function_name_is_known_by_it_as_on_aws(run_runtime, function):
    async def scenario(runtime):
        return await runtime.invoke("Env", {}), await runtime.invoke("Ctx", {})

    env, context = run_runtime(
        scenario,
        (function("Env", "handlers.environment", function_name="websocket-env_dev"), {}),
        (function("Ctx", "handlers.lambda_context", function_name="websocket-ctx_dev"), {}),
    )

    assert env.payload["AWS_LAMBDA_FUNCTION_NAME"] == "websocket-env_dev"
    assert env.payload["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/websocket-env_dev"
    assert context.payload["function_name"] == "websocket-ctx_dev"
    assert context.payload["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:websocket-ctx_dev"


class _Records(logging.Handler):
    """Keeps the records of the ``wsstack`` loggers and wakes a waiter on a matching one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.changed.set()

    async def wait_for(self, logger: str, text: str) -> logging.LogRecord:
        while True:
            for record in self.records:
                if record.name == logger and text in record.getMessage():
                    return record
            self.changed.clear()
            await self.changed.wait()


def test_function_output_and_one_line_per_invocation_are_logged(run_runtime, function, caplog):
    caplog.set_level(logging.INFO, logger="wsstack")
    records = _Records()

    async def scenario(runtime):
        logging.getLogger("wsstack").addHandler(records)
        try:
            result = await runtime.invoke("Logs", {"action": "print", "line": "hello from the handler"})
            line = await records.wait_for("wsstack.fn.Logs", "hello from the handler")
            return result, line
        finally:
            logging.getLogger("wsstack").removeHandler(records)

    result, line = run_runtime(scenario, (function("Logs", "handlers.act"), {}))

    assert line.levelno == logging.INFO
    assert line.getMessage() == "hello from the handler"
    [report] = [r for r in records.records if r.name == "wsstack.runtime" and result.request_id in r.getMessage()]
    assert report.levelno == logging.INFO
    assert report.getMessage().startswith(f"Logs {result.request_id} ")
    assert re.search(r" ms cold \(init \d+\.\d ms; module \d+\.\d ms\) ok$", report.getMessage())
    assert report.ok is True and report.cold_start is True
    assert report.function == "Logs" and report.request_id == result.request_id
    assert report.init_ms > 0
    # The import of the handler's module (the function's own init) is reported as the part of
    # the init it was; the worker's line that told us never reaches the function's log.
    assert 0 < result.module_init_ms < result.init_ms and report.module_init_ms == round(result.module_init_ms, 3)
    assert not [r for r in records.records if r.name == "wsstack.fn.Logs" and "module-init" in r.getMessage()]
    # The function's own line names its function and the invocation it belongs to.
    assert line.function == "Logs" and line.request_id == result.request_id


def test_function_lines_are_logged_at_the_level_they_name(run_runtime, function, caplog):
    caplog.set_level(logging.DEBUG, logger="wsstack")
    records = _Records()
    powertools = json.dumps({"level": "ERROR", "message": "Unhandled error", "service": "chat"})

    async def scenario(runtime):
        logging.getLogger("wsstack").addHandler(records)
        try:
            await runtime.invoke("Logs", {"action": "print", "line": powertools})
            await runtime.invoke("Logs", {"action": "log", "level": "WARNING", "line": "table is slow"})
            await runtime.invoke("Logs", {"action": "print", "line": "plain print"})
            await runtime.invoke("Fail", {})
            return [
                await records.wait_for("wsstack.fn.Logs", "Unhandled error"),
                await records.wait_for("wsstack.fn.Logs", "table is slow"),
                await records.wait_for("wsstack.fn.Logs", "plain print"),
                await records.wait_for("wsstack.fn.Fail", "[ERROR] ValueError"),
            ]
        finally:
            logging.getLogger("wsstack").removeHandler(records)

    lines = run_runtime(scenario, (function("Logs", "handlers.act"), {}), (function("Fail", "handlers.fail"), {}))

    assert [line.levelno for line in lines] == [logging.ERROR, logging.WARNING, logging.INFO, logging.ERROR]
