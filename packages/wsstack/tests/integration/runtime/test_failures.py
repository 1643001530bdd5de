"""Failures reach the caller as AWS reports them, and the function keeps working after them."""

import re

import pytest

from wsstack.runtime import RequestTooLargeException


def test_timeout_kills_the_worker_and_the_next_call_gets_a_fresh_one(run_runtime, function):
    # GIVEN a warm worker of a function with a 1 s timeout
    async def scenario(runtime):
        before = await runtime.invoke("Act", {"action": "pid"})
        # WHEN an invocation runs past the timeout
        timed_out = await runtime.invoke("Act", {"action": "sleep", "seconds": 20})
        after = await runtime.invoke("Act", {"action": "pid"})
        return before, timed_out, after

    before, timed_out, after = run_runtime(scenario, (function("Act", "handlers.act", timeout=1), {}))

    # THEN it fails as on AWS, and the next invocation is served by a new worker
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z " + timed_out.request_id + r" Task timed out after 1\.00 seconds",
        timed_out.error["errorMessage"],
    )
    assert timed_out.duration_ms >= 1000
    assert after.ok and after.cold_start
    assert after.payload != before.payload


def test_timeout_given_to_invoke_overrides_the_functions(run_runtime, function):
    async def scenario(runtime):
        return await runtime.invoke("Act", {"action": "sleep", "seconds": 20}, timeout=0.5)

    result = run_runtime(scenario, (function("Act", "handlers.act", timeout=30), {}))

    assert result.error["errorType"] == "Sandbox.Timedout"
    assert result.error["errorMessage"].endswith("Task timed out after 0.50 seconds")


def test_worker_exiting_mid_invocation_is_an_exit_error_and_the_next_call_recovers(run_runtime, function):
    async def scenario(runtime):
        before = await runtime.invoke("Act", {"action": "pid"})
        crashed = await runtime.invoke("Act", {"action": "exit", "status": 3})
        after = await runtime.invoke("Act", {"action": "pid"})
        return before, crashed, after

    before, crashed, after = run_runtime(scenario, (function("Act", "handlers.act"), {}))

    assert crashed.error == {
        "errorMessage": f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 3",
        "errorType": "Runtime.ExitError",
    }
    assert after.ok and after.cold_start
    assert after.payload != before.payload


def test_handler_exception_is_passed_through_and_the_worker_stays_warm(run_runtime, function):
    async def scenario(runtime):
        failed = await runtime.invoke("Fail", {"x": 1})
        again = await runtime.invoke("Fail", {"x": 2})
        return failed, again

    failed, again = run_runtime(scenario, (function("Fail", "handlers.fail"), {}))

    assert failed.error["errorType"] == "ValueError"
    assert failed.error["errorMessage"] == "cannot handle {'x': 1}"
    assert failed.error["requestId"] == failed.request_id
    assert any("handlers.py" in frame for frame in failed.error["stackTrace"])
    assert failed.payload is None
    # An exception is the function's answer, not a crash: AWS keeps the environment.
    assert again.error["errorMessage"] == "cannot handle {'x': 2}"
    assert again.cold_start is False


def test_handler_that_cannot_be_imported_fails_each_invocation_with_the_init_error(run_runtime, function):
    async def scenario(runtime):
        return [await runtime.invoke("Broken", {}) for _ in range(2)]

    results = run_runtime(scenario, (function("Broken", "missing_module.handler"), {}))

    for result in results:
        assert result.error["errorType"] == "Runtime.ImportModuleError"
        assert "Unable to import module 'missing_module'" in result.error["errorMessage"]
        assert result.cold_start


def test_process_exiting_during_init_is_an_exit_error(run_runtime, function):
    async def scenario(runtime):
        return await runtime.invoke("Exits", {})

    result = run_runtime(scenario, (function("Exits", "exits_on_import.handler"), {}))

    assert result.error == {
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 7",
        "errorType": "Runtime.ExitError",
    }


def test_response_over_six_megabytes_is_refused_as_on_aws(run_runtime, function):
    async def scenario(runtime):
        too_big = await runtime.invoke("Act", {"action": "big", "size": 7 * 1024 * 1024})
        after = await runtime.invoke("Act", {"action": "pid"})
        return too_big, after

    too_big, after = run_runtime(scenario, (function("Act", "handlers.act"), {}))

    assert too_big.error["errorType"] == "Function.ResponseSizeTooLarge"
    assert after.ok and not after.cold_start


def test_event_over_six_megabytes_is_refused(run_runtime, function):
    async def scenario(runtime):
        with pytest.raises(RequestTooLargeException):
            await runtime.invoke("Echo", {"data": "x" * (7 * 1024 * 1024)})

    run_runtime(scenario, (function("Echo", "handlers.echo"), {}))
