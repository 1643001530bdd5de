"""A whole local stack (moto, gateways, Lambda workers) on free ports, driven from the tests
(see :mod:`wsstack.testing`), and the small fixture apps it runs."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wsstack.testing import LogLines, RunningStack, captured_logs, run_stack

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    with captured_logs() as handler:
        yield handler


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture app to a temporary folder (for tests that edit its code); its template path."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        return target / "template.yaml"

    return copy


@pytest.fixture(name="run_stack")
def run_stack_fixture() -> Callable[..., contextlib.AbstractContextManager[RunningStack]]:
    """``with run_stack(template, **LocalStack options) as stack:`` a started stack."""
    return run_stack


@pytest.fixture(name="fixtures")
def fixtures_fixture() -> Path:
    """The folder of the small fixture apps (``sam_websocket_api``, ``raw_two_apis``)."""
    return FIXTURES


@pytest.fixture(scope="module")
def sam_app() -> Iterator[RunningStack]:
    """The SAM WebSocket API fixture app, shared by a module's tests (no hot reload)."""
    with run_stack(FIXTURES / "sam_websocket_api" / "template.yaml", code_check_interval=None) as stack:
        yield stack


@pytest.fixture(scope="module")
def raw_apis() -> Iterator[RunningStack]:
    """The raw two-API fixture app, shared by a module's tests."""
    with run_stack(FIXTURES / "raw_two_apis" / "template.yaml", code_check_interval=None) as stack:
        yield stack


@pytest.fixture(scope="module")
def features() -> Iterator[RunningStack]:
    """The API Gateway features fixture app (API keys, throttling, models, stage variables)."""
    with run_stack(FIXTURES / "apigw_features" / "template.yaml", code_check_interval=None) as stack:
        yield stack
