"""Forked workers, a fork server that dies, scale-in of idle workers, and pre-warm."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal

import psutil
import pytest

from wsstack.forkserver import FORK_AVAILABLE

#: Forked workers only (the runtime fixture would run them spawned too).
needs_fork = pytest.mark.parametrize("worker_start", [
    pytest.param("fork", marks=pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork() here")),
])


class _Records(logging.Handler):
    """The runtime's log records, with an event set when one contains ``wanted``."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.seen = asyncio.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if self.wanted in self.messages[-1]:
            self.seen.set()


@pytest.fixture
def records(caplog):
    """``records(text)``: a handler on the runtime's log that notices a line containing ``text``."""
    caplog.set_level(logging.INFO, logger="wsstack.runtime")
    logger = logging.getLogger("wsstack.runtime")
    handlers = []

    def make(wanted: str) -> _Records:
        handler = _Records(wanted)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield make
    for handler in handlers:
        logger.removeHandler(handler)


def _fork_servers() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if "wsstack.forkserver" in " ".join(p.cmdline())]


@needs_fork
def test_forked_worker_is_a_child_of_the_fork_server_and_names_its_handler(run_runtime, function):
    async def scenario(runtime):
        result = await runtime.invoke("Echo", {})
        return result, _fork_servers()

    result, servers = run_runtime(scenario, (function("Echo", "handlers.echo"), {}))

    worker = psutil.Process(result.payload["pid"]) if psutil.pid_exists(result.payload["pid"]) else None
    assert result.ok and result.cold_start and result.init_ms is not None
    assert [s.pid for s in servers] and worker is None  # the runtime stopped: the worker is gone
    assert result.payload["pid"] not in [s.pid for s in servers]


@needs_fork
def test_each_forked_worker_runs_its_own_module_init(run_runtime, function):
    # GIVEN two functions of one code directory, forked from the same fork server
    async def scenario(runtime):
        first = await runtime.invoke("A", {"action": "pid"})
        second = await runtime.invoke("B", {"action": "pid"})
        return first, second, [p.cmdline() for p in psutil.Process().children(recursive=True)]

    first, second, cmdlines = run_runtime(
        scenario, (function("A", "handlers.act"), {}), (function("B", "handlers.act"), {}),
    )

    # THEN each is a cold start with an init of its own, in a process of its own
    assert first.cold_start and second.cold_start
    assert first.payload != second.payload
    assert any("handlers.act" in " ".join(c) and "awslambdaric" in " ".join(c) for c in cmdlines)


@needs_fork
def test_a_fork_server_that_dies_fails_running_invocations_and_is_restarted(run_runtime, function, rendezvous,
                                                                           records):
    log = records("fork server restarted")

    async def scenario(runtime):
        async with rendezvous(99) as meeting:
            running = asyncio.ensure_future(runtime.invoke("Act", {"action": "hold", "port": meeting.port}))
            await meeting.arrived.wait()
            # WHEN the fork server is killed while its worker holds an invocation
            (server,) = _fork_servers()
            os.kill(server.pid, signal.SIGKILL)
            failed = await running
        # THEN the next invocation gets a worker from a new fork server
        after = await runtime.invoke("Act", {"action": "pid"})
        await asyncio.wait_for(log.seen.wait(), 5)
        return failed, after, server.pid, _fork_servers()

    failed, after, old, servers = run_runtime(scenario, (function("Act", "handlers.act"), {}))

    assert failed.error["errorType"] == "Runtime.ExitError"
    assert after.ok and after.cold_start
    assert [s.pid for s in servers] and old not in [s.pid for s in servers]
    assert any("fork server" in m and "exited unexpectedly" in m for m in log.messages)


def test_idle_worker_is_stopped_and_the_next_invocation_is_cold(run_runtime, function, records):
    log = records("idle")

    async def scenario(runtime):
        first = await runtime.invoke("Act", {"action": "pid"})
        # WHEN the worker stays idle past the timeout
        await asyncio.wait_for(log.seen.wait(), 10)
        second = await runtime.invoke("Act", {"action": "pid"})
        return first, second

    first, second = run_runtime(scenario, (function("Act", "handlers.act"), {}), idle_timeout=0.2)

    assert first.cold_start and second.cold_start
    assert first.payload != second.payload


def test_prewarmed_function_answers_its_first_invocation_warm(run_runtime, function):
    async def scenario(runtime):
        ready = await runtime.prewarm(["Act"])
        result = await runtime.invoke("Act", {"action": "pid"})
        again = await runtime.prewarm(["Act"])  # it has a worker: nothing more starts
        second = await runtime.invoke("Act", {"action": "pid"})
        return ready, result, again, second

    ready, result, again, second = run_runtime(scenario, (function("Act", "handlers.act"), {}))

    assert ready["Act"] is not None and again == {}
    assert result.ok and not result.cold_start and result.init_ms is None
    assert second.payload == result.payload


@needs_fork
def test_function_that_ships_its_own_boto3_is_spawned_not_forked(run_runtime, function, tmp_path):
    # GIVEN a function whose code folder vendors boto3: the fork server's copy must not shadow it
    (tmp_path / "boto3").mkdir()
    (tmp_path / "boto3" / "__init__.py").write_text("VENDORED = True\n")
    (tmp_path / "app.py").write_text("import os\nimport boto3\n\n"
                                     "def handler(event, context):\n"
                                     "    return {'pid': os.getpid(), 'vendored': getattr(boto3, 'VENDORED', False)}\n")

    async def scenario(runtime):
        result = await runtime.invoke("Vendored", {})
        return result, psutil.Process(result.payload["pid"]).ppid()

    fn = dataclasses.replace(function("Vendored", "app.handler"), code_dir=tmp_path)
    result, parent = run_runtime(scenario, (fn, {}))

    # THEN it runs in a worker of its own, started by the runtime, with its own boto3
    assert result.ok and result.payload["vendored"] is True
    assert parent == os.getpid()


_MODEL_PROBE = """\
import boto3


def handler(event, context):
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                          aws_access_key_id="x", aws_secret_access_key="x")
    return {"probe": hasattr(client, "wsstack_probe"), "scan": hasattr(client, "scan")}
"""


@needs_fork
def test_forked_workers_read_botocore_data_once_loaded_unless_their_data_path_differs(run_runtime, function,
                                                                                      tmp_path):
    # GIVEN a function creating a dynamodb client (so the fork server loads that model before
    # forking), run once as is and once with AWS_DATA_PATH naming a model with one more operation
    from botocore.loaders import Loader

    model = Loader().load_service_model("dynamodb", "service-2")
    model["operations"]["WsstackProbe"] = {**model["operations"]["DescribeLimits"], "name": "WsstackProbe"}
    models = tmp_path / "models"
    (models / "dynamodb" / "2012-08-10").mkdir(parents=True)
    (models / "dynamodb" / "2012-08-10" / "service-2.json").write_text(json.dumps(model))
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(_MODEL_PROBE)
    plain = dataclasses.replace(function("Plain", "app.handler"), code_dir=code)
    custom = dataclasses.replace(function("Custom", "app.handler"), code_dir=code)

    async def scenario(runtime):
        return await runtime.invoke("Plain", {}), await runtime.invoke("Custom", {})

    result, overridden = run_runtime(scenario, (plain, {}), (custom, {"AWS_DATA_PATH": str(models)}))

    # THEN the first gets botocore's model and the second its own, as in a process of its own
    assert result.ok and result.payload == {"probe": False, "scan": True}
    assert overridden.ok and overridden.payload == {"probe": True, "scan": True}
