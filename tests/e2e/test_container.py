"""The image's command line, run outside Docker on what the image holds, and reached on 127.0.0.1.

No Docker engine is needed: the stack stage's COPY instructions lay out a working directory as
the image's, its CMD runs there (free ports instead of the fixed ones), its HEALTHCHECK command
must then pass, and docker-compose.yml's `seed` command chats through it: signs in to Cognito,
connects past the authorizer and sends messages both ways. Only loopback traffic.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from container_files import ROOT, compose, copies, exec_form, healthcheck_command, stages

from .conftest import READY_LINE, ChildProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(os.environ.get("CHAT_E2E_STACK_NAME")),
                       reason="runs the local stack's image command: not a test of a deployed stack"),
]


def image_workdir(tmp_path: Path) -> Path:
    """A folder laid out as the stack image's WORKDIR: what its COPY instructions put there."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for sources, destination in copies(stages()["stack"]):
        for source in sources:
            target = workdir / destination / Path(source).name if destination.endswith("/") else workdir / destination
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=ignored)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, target)
    (workdir / ".local").mkdir()
    return workdir


def here(argv: list[str]) -> list[str]:
    """The image's argv for this machine: its `python` and `wsstack` are this interpreter's."""
    program, *rest = argv
    if program == "wsstack":
        return [sys.executable, "-m", "wsstack.cli", *rest]
    assert program == "python", argv
    return [sys.executable, *rest]


def test_the_images_command_serves_its_clients_on_127_0_0_1(tmp_path):
    stack_stage = stages()["stack"]
    workdir = image_workdir(tmp_path)
    command = exec_form(stack_stage.last("CMD"))
    assert command[:4] == ["wsstack", "up", "--host", "0.0.0.0"]
    # Fixed ports may be taken on this machine (another stack, another test): free ones.
    argv = [*here(command), "--port", "0", "--tls-port", "0", "--emulator-port", "0", "--site-port", "0"]

    stack = ChildProcess(argv, cwd=workdir)
    try:
        stack.expect(lambda line: line.startswith(READY_LINE), 60, "the image's command did not become ready")
        state = json.loads((workdir / ".local" / "stack.json").read_text())
        with urllib.request.urlopen(state["site_url"], timeout=10) as page:  # the web chat, COPY'd in
            site = (page.status, page.headers["Content-Type"], b"<script" in page.read())
        health = subprocess.run(here(healthcheck_command(stack_stage)), cwd=workdir, capture_output=True,
                                text=True, timeout=30)
        seed = subprocess.run(here(compose()["services"]["seed"]["command"]), cwd=workdir, capture_output=True,
                              text=True, timeout=120)
    finally:
        stack.proc.terminate()  # SIGTERM, as `docker stop` sends
        stopped = stack.proc.wait(timeout=30)

    assert state["host"] == "0.0.0.0"
    for url in (state["websocket_url"], state["connections_url"], state["aws_endpoint"],
                state["apis"][0]["secure_websocket_url"]):
        assert url.split("://", 1)[1].startswith("127.0.0.1:"), url
    assert "Listening on      0.0.0.0 (every interface" in "".join(stack.output)
    assert "reachable from the network: @connections takes SigV4-signed requests only" in "".join(stack.output)
    assert site == (200, "text/html; charset=utf-8", True)
    assert (health.returncode, health.stdout) == (0, "wsstack: healthy\n")
    assert seed.returncode == 0, seed.stdout + seed.stderr
    assert "Demo conversation dm_" in seed.stdout
    assert stopped == 0
    assert not (workdir / ".local" / "stack.json").exists()
