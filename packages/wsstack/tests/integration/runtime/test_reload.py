"""Hot reload: with ``code_check_interval`` set, an edited ``.py`` file runs from the next invocation."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from pathlib import Path

import pytest

from wsstack.model import Function

HANDLER = textwrap.dedent(
    """
    import os
    import socket

    VERSION = "one"


    def handler(event, context):
        if "hold" in event:
            # Announce the worker to the test's rendezvous server and wait for its go.
            with socket.create_connection(("127.0.0.1", event["hold"])) as held:
                held.sendall(f"{os.getpid()}\\n".encode())
                held.makefile().readline()
        return {"version": VERSION, "pid": os.getpid()}
    """
)


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "reloadable.py").write_text(HANDLER)
    return tmp_path


def _function(code_dir: Path, name: str = "Fn", **fields: object) -> Function:
    return Function(logical_id=name, handler="reloadable.handler", runtime="python3.13", code_dir=code_dir,
                    **fields)  # type: ignore[arg-type]


def _set_version(code_dir: Path, version: str) -> None:
    path = code_dir / "reloadable.py"
    path.write_text(path.read_text().replace('VERSION = "one"', f'VERSION = "{version}"'))


def test_a_busy_worker_finishes_with_the_old_code_and_the_next_invocation_runs_the_new(
    alive, run_runtime, code_dir, rendezvous
):
    async def scenario(runtime):
        first = await runtime.invoke("Fn", {})  # a warm worker with version one
        async with rendezvous(2) as gate:  # never full: the held handler waits for release()
            running = asyncio.ensure_future(runtime.invoke("Fn", {"hold": gate.port}))
            await asyncio.wait_for(gate.arrived.wait(), 30)  # it now holds the warm worker
            _set_version(code_dir, "two")
            after = await runtime.invoke("Fn", {})
            gate.release()
            held = await running
        again = await runtime.invoke("Fn", {})
        for _ in range(100):  # the retired worker exits once it asks for more work
            if not alive(first.payload["pid"]):
                break
            await asyncio.sleep(0.05)
        return first, held, after, again

    first, held, after, again = run_runtime(scenario, (_function(code_dir), {}), code_check_interval=0)

    assert held.payload == first.payload  # the invocation in flight finished on the old worker
    assert after.payload["version"] == again.payload["version"] == "two"
    assert after.cold_start and not again.cold_start
    assert again.payload["pid"] == after.payload["pid"] != first.payload["pid"]
    assert not alive(first.payload["pid"])


def test_reload_respects_reserved_concurrency(run_runtime, code_dir):
    async def scenario(runtime):
        before = await runtime.invoke("Fn", {})
        _set_version(code_dir, "two")
        return before, await runtime.invoke("Fn", {})

    before, after = run_runtime(scenario, (_function(code_dir, reserved_concurrency=1), {}), code_check_interval=0)

    # With room for one worker only, the old one must be gone before the new one starts.
    assert (before.payload["version"], after.payload["version"]) == ("one", "two")
    assert after.ok and after.cold_start


def test_functions_sharing_a_code_folder_each_reload_on_their_own_next_invocation(
    run_runtime, code_dir, caplog
):
    caplog.set_level(logging.INFO, logger="wsstack.runtime")

    async def scenario(runtime):
        await runtime.invoke("A", {})
        await runtime.invoke("B", {})
        _set_version(code_dir, "two")
        a = await runtime.invoke("A", {})
        reloads_after_a = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reloaded")]
        b = await runtime.invoke("B", {})
        return a, b, reloads_after_a

    a, b, reloads_after_a = run_runtime(
        scenario, (_function(code_dir, "A"), {}), (_function(code_dir, "B"), {}), code_check_interval=0
    )

    assert a.payload["version"] == b.payload["version"] == "two"
    assert reloads_after_a == ["reloaded A (code changed)"]
    reloads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reloaded")]
    assert reloads == ["reloaded A (code changed)", "reloaded B (code changed)"]


def test_files_other_than_python_do_not_restart_workers(run_runtime, code_dir):
    async def scenario(runtime):
        before = await runtime.invoke("Fn", {})
        (code_dir / "notes.txt").write_text("not code")
        (code_dir / "__pycache__").mkdir(exist_ok=True)
        (code_dir / "__pycache__" / "stale.py").write_text("# a cache folder is not code")
        return before, await runtime.invoke("Fn", {})

    before, after = run_runtime(scenario, (_function(code_dir), {}), code_check_interval=0)

    assert after.payload["pid"] == before.payload["pid"]
    assert not after.cold_start


def test_without_an_interval_edits_are_ignored_as_on_aws(run_runtime, code_dir):
    async def scenario(runtime):
        before = await runtime.invoke("Fn", {})
        _set_version(code_dir, "two")
        return before, await runtime.invoke("Fn", {})

    before, after = run_runtime(scenario, (_function(code_dir), {}))

    assert before.payload == after.payload
