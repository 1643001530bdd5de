"""The chat app's whole local stack (moto, gateways, Lambda workers) on free ports, driven from
the tests through :mod:`wsstack.testing`, as wsstack's own tests run its fixture apps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from wsstack.testing import LogLines, RunningStack, captured_logs, run_stack


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    with captured_logs() as handler:
        yield handler


@pytest.fixture(name="run_stack")
def run_stack_fixture() -> Callable[..., contextlib.AbstractContextManager[RunningStack]]:
    """``with run_stack(template, **LocalStack options) as stack:`` a started stack."""
    return run_stack
