"""Workers: warm reuse, cold starts as concurrency grows, the concurrency limit, stop()."""

import asyncio
import contextlib
import dataclasses
from pathlib import Path

import pytest

from wsstack.runtime import LambdaRuntime, ResourceNotFoundException


def test_second_invocation_is_warm_and_reuses_the_worker(run_runtime, function):
    async def scenario(runtime):
        return [await runtime.invoke("Echo", {"n": n}) for n in (1, 2)]

    first, second = run_runtime(scenario, (function("Echo", "handlers.echo"), {}))

    assert first.ok and second.ok
    assert first.cold_start is True
    assert second.cold_start is False
    assert second.payload["pid"] == first.payload["pid"]
    assert first.request_id != second.request_id


@pytest.mark.parametrize(
    ("reserved", "default", "limit"),
    [(2, 10, 2), (None, 3, 3)],
    ids=["reserved-concurrency", "default-concurrency"],
)
def test_concurrency_grows_to_the_limit_and_no_further(run_runtime, function, rendezvous, reserved, default, limit):
    # GIVEN five invocations at once, each holding its worker until `limit` run together
    async def scenario(runtime):
        async with rendezvous(limit) as meeting:
            event = {"action": "hold", "port": meeting.port}
            results = await asyncio.gather(*(runtime.invoke("Act", event) for _ in range(5)))
        return results, meeting.pids

    results, pids = run_runtime(
        scenario,
        (function("Act", "handlers.act", reserved_concurrency=reserved), {}),
        default_concurrency=default,
    )

    # THEN all succeed, `limit` workers served them, and exactly that many were cold starts
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(set(pids)) == limit
    assert {r.payload for r in results} == set(pids)
    assert sum(r.cold_start for r in results) == limit


def test_stop_ends_every_worker_and_fails_what_was_waiting(alive, run_runtime, function, rendezvous):
    # GIVEN one function limited to one worker, busy with an invocation, and a second queued
    async def scenario(runtime):
        async with rendezvous(99) as meeting:
            event = {"action": "hold", "port": meeting.port}
            running = asyncio.ensure_future(runtime.invoke("Act", event))
            await meeting.arrived.wait()
            queued = asyncio.ensure_future(runtime.invoke("Act", event))
            await asyncio.sleep(0)  # let the second invocation reach the queue
            # WHEN the runtime stops (twice: stop() is idempotent)
            await runtime.stop()
            await runtime.stop()
            return await running, await queued, meeting.pids

    running, queued, pids = run_runtime(scenario, (function("Act", "handlers.act", reserved_concurrency=1), {}))

    # THEN neither invocation hangs: both report an error, and the worker is gone
    assert running.error["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: terminated" in running.error["errorMessage"]
    assert queued.error["errorType"] == "ServiceException"
    assert pids and not any(alive(pid) for pid in pids)


def test_stop_leaves_no_worker_alive(alive, run_runtime, function, rendezvous):
    async def scenario(runtime):
        async with rendezvous(3) as meeting:
            event = {"action": "hold", "port": meeting.port}
            await asyncio.gather(*(runtime.invoke("Act", event) for _ in range(3)))
        await runtime.invoke("Echo", {})
        await runtime.stop()
        return meeting.pids

    pids = run_runtime(scenario, (function("Act", "handlers.act"), {}), (function("Echo", "handlers.echo"), {}))

    assert len(set(pids)) == 3
    assert not any(alive(pid) for pid in pids)


def test_unknown_function_is_refused(run_runtime, function):
    async def scenario(runtime):
        with pytest.raises(ResourceNotFoundException, match="Nope"):
            await runtime.invoke("Nope", {})

    run_runtime(scenario, (function("Echo", "handlers.echo"), {}))


def test_submit_hands_back_a_future_of_the_same_result_and_refuses_at_once(run_runtime, function):
    # The gateway's path: no coroutine to wrap in a task, and errors before anything is queued.
    async def scenario(runtime):
        future = runtime.submit("Echo", {"n": 7})
        with pytest.raises(ResourceNotFoundException, match="Nope"):
            runtime.submit("Nope", {})
        return isinstance(future, asyncio.Future), await future

    is_future, result = run_runtime(scenario, (function("Echo", "handlers.echo"), {}))

    assert is_future
    assert result.ok and result.payload["event"] == {"n": 7}


def test_event_that_is_not_json_is_refused_before_any_worker_starts(run_runtime, function):
    async def scenario(runtime):
        with pytest.raises(TypeError):
            await runtime.invoke("Echo", {"when": object()})
        return await runtime.invoke("Echo", {})

    result = run_runtime(scenario, (function("Echo", "handlers.echo"), {}))

    assert result.ok and result.cold_start


def test_invoking_before_start_is_an_error(function):
    async def scenario():
        runtime = LambdaRuntime()
        runtime.add_function(function("Echo", "handlers.echo"), {})
        with pytest.raises(RuntimeError):
            await runtime.invoke("Echo", {})
        await runtime.stop()

    asyncio.run(scenario())


def test_invocation_cancelled_while_queued_never_runs(run_runtime, function, rendezvous):
    # GIVEN a function limited to one worker, busy, and a second invocation queued behind it
    async def scenario(runtime):
        async with rendezvous(99) as meeting:
            hold = {"action": "hold", "port": meeting.port}
            running = asyncio.ensure_future(runtime.invoke("Act", hold))
            await meeting.arrived.wait()
            queued = asyncio.ensure_future(runtime.invoke("Act", hold))
            await asyncio.sleep(0)  # let the second invocation reach the queue
            # WHEN its caller gives up, and the worker then frees up
            queued.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await queued
            meeting.release()
            first = await running
            # THEN the next invocation runs on that worker; a held one would block it here
            after = await runtime.invoke("Act", {"action": "pid"})
            return first, after, meeting.pids

    first, after, pids = run_runtime(scenario, (function("Act", "handlers.act", reserved_concurrency=1), {}))

    assert first.ok and after.ok and not after.cold_start
    assert pids == [first.payload]


@pytest.mark.parametrize(
    ("fields", "environment", "error"),
    [
        ({"runtime": "java21"}, {}, ValueError),
        ({"code_dir": Path("/nonexistent/code")}, {}, ValueError),
        ({}, {"TABLE_NAME": {"Ref": "MessagesTable"}}, TypeError),
    ],
    ids=["unsupported-runtime", "missing-code-dir", "unresolved-environment"],
)
def test_function_that_cannot_run_is_refused_when_added(function, fields, environment, error):
    fn = dataclasses.replace(function("Echo", "handlers.echo"), **fields)

    with pytest.raises(error, match="Echo"):
        LambdaRuntime().add_function(fn, environment)
