"""Node.js functions run under aws-lambda-ric against the same Runtime API, with the same fidelity.

The handlers are the Node fixture app's (``tests/fixtures/node_websocket_api/src``): an ES module,
CommonJS async and callback-style handlers, one that throws, one that outlives its timeout, one
that ends its process and one that does not parse. Skipped, saying why, where ``node`` or the
client is missing (``make test`` installs the client where node and npm are).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from wsstack.forkserver import FORK_AVAILABLE
from wsstack.model import Function

SOURCE = Path(__file__).resolve().parents[2] / "fixtures" / "node_websocket_api" / "src"


@pytest.fixture
def worker_start() -> str:
    """The default: Node workers are spawned whatever it says (there is no fork server for them)."""
    return "auto"


@pytest.fixture
def node(node_runtime, run_runtime):
    """``node(scenario, *functions, **options)``: ``run_runtime`` with the client found for these tests."""

    def run(scenario, *functions, **options):
        return run_runtime(scenario, *functions, node_ric=node_runtime.modules.parent, **options)

    return run


def _function(name: str, handler: str, code_dir: Path = SOURCE, **fields: Any) -> Function:
    fields.setdefault("runtime", "nodejs20.x")
    return Function(logical_id=name, handler=handler, code_dir=code_dir, **fields)


def test_a_callback_handler_sees_lambdas_environment_and_context_and_stays_warm(node):
    async def scenario(runtime):
        return [await runtime.invoke("Info", {}) for _ in range(2)]

    first, second = node(scenario, (_function("Info", "info.handler", runtime="nodejs22.x"), {"GREETING": "hi"}))

    info = json.loads(first.payload["body"])
    assert first.cold_start and not second.cold_start
    assert json.loads(second.payload["body"])["pid"] == info["pid"]  # the same warm worker
    assert info["functionName"] == "Info"
    assert info["requestId"] == first.request_id
    assert 0 < info["remainingMs"] <= 3000  # the template's default Timeout, counting down
    assert info["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "Info",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs22.x",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(SOURCE),
        "_HANDLER": "info.handler",
        "GREETING": "hi",
        "API_ID": None,
        "NODE_EXTRA_CA_CERTS": None,  # the stack sets it (see the stack's Node tests)
        "PYTHONPATH": None,
        "TZ": ":UTC",
    }


def test_an_es_module_handler_that_throws_reports_the_error_and_keeps_its_worker(node, caplog):
    caplog.set_level(logging.INFO, logger="wsstack.fn")

    async def scenario(runtime):
        return [await runtime.invoke("Fail", {"body": f"try {n}"}) for n in range(2)]

    failed, again = node(scenario, (_function("Fail", "fail.handler"), {}))

    assert failed.error["errorType"] == "TypeError"
    assert failed.error["errorMessage"] == "cannot handle this"
    assert any("fail.mjs" in frame for frame in failed.error["trace"])
    assert again.error["errorType"] == "TypeError" and again.cold_start is False
    # console.error reaches the function's log at ERROR, with the invocation's request id.
    [line] = [r for r in caplog.records if "about to fail on try 0" in r.getMessage()]
    assert line.name == "wsstack.fn.Fail" and line.levelno == logging.ERROR
    assert line.request_id == failed.request_id


def test_timeout_kills_the_node_worker_and_the_next_call_gets_a_fresh_one(node, alive):
    async def scenario(runtime):
        before = await runtime.invoke("Slow", {"seconds": 0})
        timed_out = await runtime.invoke("Slow", {"seconds": 20})
        after = await runtime.invoke("Slow", {"seconds": 0})
        return before, timed_out, after

    before, timed_out, after = node(scenario, (_function("Slow", "slow.handler", timeout=1), {}))

    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert timed_out.error["errorMessage"].endswith(f"{timed_out.request_id} Task timed out after 1.00 seconds")
    assert after.ok and after.cold_start
    assert after.payload["pid"] != before.payload["pid"]
    assert not alive(before.payload["pid"])


def test_a_node_worker_that_exits_mid_invocation_is_an_exit_error(node):
    async def scenario(runtime):
        crashed = await runtime.invoke("Crash", {"exit": 3})
        return crashed, await runtime.invoke("Crash", {})

    crashed, after = node(scenario, (_function("Crash", "crash.handler"), {}))

    assert crashed.error == {
        "errorMessage": f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 3",
        "errorType": "Runtime.ExitError",
    }
    assert after.ok and after.cold_start


def test_a_module_that_does_not_parse_fails_each_invocation_with_the_init_error(node):
    async def scenario(runtime):
        return [await runtime.invoke("Broken", {}) for _ in range(2)]

    results = node(scenario, (_function("Broken", "broken.handler"), {}))

    for result in results:
        assert result.error["errorType"] == "Runtime.UserCodeSyntaxError"
        assert "SyntaxError" in result.error["errorMessage"]
        assert result.cold_start


def test_reserved_concurrency_bounds_the_node_pool(node):
    async def scenario(runtime):
        return await asyncio.gather(*(runtime.invoke("Slow", {"seconds": 0.2}) for _ in range(3)))

    results = node(scenario, (_function("Slow", "slow.handler", reserved_concurrency=1), {}))

    assert all(r.ok for r in results), [r.error for r in results]
    assert len({r.payload["pid"] for r in results}) == 1
    assert [r.cold_start for r in results].count(True) == 1


def test_an_edited_js_file_runs_from_the_next_invocation(node, tmp_path):
    code_dir = tmp_path / "src"
    shutil.copytree(SOURCE, code_dir)
    info = code_dir / "info.js"

    async def scenario(runtime):
        before = await runtime.invoke("Info", {})
        info.write_text(info.read_text().replace("statusCode: 200", "statusCode: 201"))
        return before, await runtime.invoke("Info", {})

    before, after = node(scenario, (_function("Info", "info.handler", code_dir), {}), code_check_interval=0)

    assert before.payload["statusCode"] == 200
    assert after.payload["statusCode"] == 201 and after.cold_start


def test_an_idle_node_worker_is_stopped_and_the_next_invocation_is_cold(node, alive, caplog):
    caplog.set_level(logging.INFO, logger="wsstack.runtime")
    stopped = asyncio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "idle" in record.getMessage():
                stopped.set()

    seen = Seen()
    logging.getLogger("wsstack.runtime").addHandler(seen)

    async def scenario(runtime):
        first = await runtime.invoke("Crash", {})
        await asyncio.wait_for(stopped.wait(), 10)
        return first, await runtime.invoke("Crash", {})

    try:
        first, second = node(scenario, (_function("Crash", "crash.handler"), {}), idle_timeout=0.2)
    finally:
        logging.getLogger("wsstack.runtime").removeHandler(seen)

    assert first.cold_start and second.cold_start
    assert first.payload["pid"] != second.payload["pid"]
    assert not alive(first.payload["pid"])


@pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork() here")
def test_node_workers_are_spawned_even_where_workers_are_told_to_fork(node):
    async def scenario(runtime):
        result = await runtime.invoke("Crash", {})
        workers = list(runtime._pools["Crash"].workers)
        return result, workers

    result, workers = node(scenario, (_function("Crash", "crash.handler"), {}), worker_start="fork")

    assert result.ok and result.cold_start
    assert [w.forked for w in workers] == [False]
