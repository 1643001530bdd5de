"""The emulator's child process: lean to start, one stdout line, warmed backends, prompt exit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from wsstack import emulator_server
from wsstack.emulator import Emulator, aws_client

BOUND = 30.0


@contextlib.contextmanager
def child(
    *args: str, module: str = "wsstack.emulator_server", port: int = 0, stderr: Any = subprocess.DEVNULL
) -> Iterator[subprocess.Popen[str]]:
    """The child as :class:`Emulator` starts it; stderr to a file, as a pipe nobody reads fills up."""
    proc = subprocess.Popen(
        [sys.executable, *args, "-m", module, "--port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=BOUND)


def port_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    return json.loads(proc.stdout.readline())


def test_module_level_imports_are_standard_library_only():
    code = (
        "import sys; before = set(sys.modules); import wsstack.emulator_server; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'wsstack'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=BOUND)
    assert out.stdout.strip() == "[]"


def test_child_serves_prints_only_its_port_line_and_imports_nothing_of_the_parent(tmp_path):
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr, child("-X", "importtime", stderr=stderr) as proc:
        port = port_line(proc)["port"]
        url = f"http://127.0.0.1:{port}"
        assert aws_client("dynamodb", url).list_tables()["TableNames"] == []
        assert aws_client("cognito-idp", url).list_user_pools(MaxResults=10)["UserPools"] == []
        # Both backends are set up by now, so the warm-up's own requests are done or nearly:
        # closing stdin (the parent going away) ends the child, and stdout held nothing more.
        out, _ = proc.communicate(input="", timeout=BOUND)
    assert proc.returncode == 0
    err = log.read_text()
    assert out == ""
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")}
    # wsstack.memory (standard library only) frees the warm-up's leftovers.
    own = {"wsstack", "wsstack.emulator_server", "wsstack.memory"}
    assert {name for name in imported if name.startswith("wsstack")} <= own


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_child_exits_at_once_on_a_signal(sig):
    with child() as proc:
        assert "port" in port_line(proc)
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=BOUND) == 0


def test_child_reports_a_port_it_cannot_bind_in_its_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with child(port=taken.getsockname()[1]) as proc:
            said = port_line(proc)
            assert proc.wait(timeout=BOUND) == 0
    assert set(said) == {"error"} and said["error"]


def test_the_old_module_name_still_runs_the_child():
    with child(module="wsstack.emulator") as proc:
        assert isinstance(port_line(proc)["port"], int)


def test_emulator_launches_the_lean_module_under_a_name_tools_still_match():
    emulator = Emulator()
    try:
        url = emulator.start(announce=False)
        cmdline = " ".join(emulator._proc.args)  # type: ignore[union-attr]
        assert "-m wsstack.emulator_server" in cmdline
        assert "wsstack.emulator" in cmdline  # how benchmarks/stackproc.py tells the emulator apart
        assert aws_client("dynamodb", url).list_tables()["TableNames"] == []
    finally:
        emulator.stop()


def test_warm_up_sets_up_both_backends_in_the_default_account_and_region_quietly(capsys):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    answers: list[tuple[str, str]] = []

    def recording(environ: Any, start_response: Any) -> Any:
        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            answers.append((environ["HTTP_X_AMZ_TARGET"], status))
            return start_response(status, headers, exc_info)

        return app(environ, start)

    emulator_server._warm_up(recording)

    assert answers == [
        ("DynamoDB_20120810.ListTables", "200 OK"),
        ("AWSCognitoIdentityProviderService.ListUserPools", "200 OK"),
    ]
    assert set(app.app_instances) >= {"dynamodb", "cognitoidp"}
    from moto.backends import get_backend

    for service in ("dynamodb", "cognitoidp"):
        # The region's backend was made: it is among the keys ("in" counts regions not made yet).
        made = list(get_backend(service)[DEFAULT_ACCOUNT_ID])  # type: ignore[arg-type]
        assert emulator_server.WARM_REGION in made, service
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_a_failing_warm_up_is_swallowed_and_prints_nothing_on_stdout(capsys):
    def broken(environ: Any, start_response: Any) -> Any:
        raise RuntimeError("backend exploded")

    emulator_server._warm_up(broken)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "backend exploded" in captured.err
