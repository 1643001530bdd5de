"""Nothing ``wsstack up`` starts outlives it, and a stack started by the pytest plugin's
launcher does not outlive the process that started it, however either one dies.

Real processes throughout: a ``wsstack up`` child (started as the plugin starts it), its
emulator, fork server, Lambda workers (one of them busy in a long handler) and seed command.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from websockets.sync.client import connect

from wsstack.pytest_plugin import StackProcess

pytestmark = pytest.mark.e2e

#: Seconds for anything to end or start (generous: two shared cores).
BOUND = 30.0
LINUX = sys.platform.startswith("linux")

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::WebSocketApi
    Properties:
      StageName: dev
      RouteSelectionExpression: $request.body.action
      Routes:
        $default:
          FunctionArn: !GetAtt BusyFunction.Arn
  BusyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.13
      CodeUri: src/
      Handler: app.handler
      Timeout: 900
"""

HANDLER = """\
import time


def handler(event, context):
    print("handler busy", flush=True)
    time.sleep(600)  # far longer than any test waits
    return {"statusCode": 200}
"""

#: A seed command that runs until it is stopped.
SEED = f"{sys.executable} -c \"import time; print('seed running', flush=True); time.sleep(600)\""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(HANDLER)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    return tmp_path


@pytest.fixture
def stacks() -> Iterator[list[StackProcess]]:
    """Stacks a test starts, stopped at its end whatever became of them."""
    started: list[StackProcess] = []
    yield started
    for stack in started:
        stack.stop()


def start(app: Path, stacks: list[StackProcess], *args: str) -> StackProcess:
    stack = StackProcess(app / "stack.json", "--no-persist", *args, cwd=app)
    stacks.append(stack)
    stack.wait_ready(BOUND)
    return stack


def ports(state_file: Path) -> list[int]:
    """Every port the stack in ``state_file`` listens on: gateway, TLS, emulator."""
    state = json.loads(state_file.read_text())
    urls = [state["aws_endpoint"]]
    for api in state["apis"]:
        urls += [api["websocket_url"], api["secure_websocket_url"]]
    return sorted({urlsplit(url).port for url in urls if urlsplit(url).port})


def free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (as a restarted stack would)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def make_busy(stack: StackProcess) -> None:
    """Send the stack a message whose handler runs for minutes; return once it runs."""
    url = json.loads(stack.state_file.read_text())["apis"][0]["websocket_url"]
    with connect(url, open_timeout=BOUND) as client:
        client.send("work")
        stack.expect(lambda line: "handler busy" in line, BOUND, "the handler did not start")


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def names(processes: list[psutil.Process]) -> list[str]:
    found = []
    for process in processes:
        try:
            found.append(" ".join(process.cmdline()))
        except psutil.Error:
            found.append(f"pid {process.pid} (gone)")
    return found


def assert_all_end(processes: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(processes, timeout=BOUND)
    for process in alive:  # not to leave them to the next test
        process.kill()
    assert not alive, f"still running {BOUND:.0f} s later: {names(alive)}"


@pytest.mark.parametrize("worker_start", ["fork", "spawn"])
def test_a_killed_stack_leaves_no_process_and_no_port_behind(app, stacks, worker_start):
    # GIVEN a stack with a busy worker (and, on Linux, a seed command still running)
    seed = ["--seed", SEED] if LINUX else []
    stack = start(app, stacks, "--worker-start", worker_start, *seed)
    if seed:
        stack.expect(lambda line: "seed running" in line, BOUND, "the seed command did not run")
    make_busy(stack)
    children = descendants(stack.proc.pid)
    expected = {"wsstack.emulator_server", "awslambdaric"} | ({"forkserver"} if worker_start == "fork" else set())
    assert all(any(name in line for line in names(children)) for name in expected), names(children)
    listening = ports(stack.state_file)
    # WHEN it is killed, with no chance to stop anything itself
    stack.proc.kill()
    stack.proc.wait(timeout=BOUND)
    # THEN everything it started ends, the busy worker and the seed command included, and
    # its ports can be taken again
    assert_all_end(children)
    assert [port for port in listening if not free(port)] == []


NODE_HANDLER = """\
exports.handler = async () => {
  console.log("handler busy");
  await new Promise((resolve) => setTimeout(resolve, 600000)); // far longer than any test waits
  return { statusCode: 200 };
};
"""


def test_a_killed_stack_leaves_no_node_worker_behind(tmp_path, stacks, node_runtime):
    # GIVEN a stack whose function runs on Node, busy in a long handler
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.js").write_text(NODE_HANDLER)
    (tmp_path / "template.yaml").write_text(TEMPLATE.replace("python3.13", "nodejs20.x"))
    stack = start(tmp_path, stacks, "--node-ric", str(node_runtime.modules.parent))
    make_busy(stack)
    children = descendants(stack.proc.pid)
    assert any("aws-lambda-ric" in line for line in names(children)), names(children)
    # WHEN the stack is killed
    stack.proc.kill()
    stack.proc.wait(timeout=BOUND)
    # THEN the Node worker ends too, rather than retry the dead Runtime API on and on
    assert_all_end(children)


PARENT = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from wsstack.pytest_plugin import StackProcess

    stack = StackProcess(Path("stack.json"), "--no-persist", "--prewarm")
    stack.wait_ready({bound})
    print(stack.proc.pid, flush=True)
    sys.stdin.read()  # until killed
""")


def test_a_stack_ends_with_the_process_that_launched_it(app):
    # GIVEN a process that starts a stack with the plugin's launcher, as a test run does
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(bound=BOUND)], cwd=app, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # the stack's pid once it is ready (empty if the parent failed)
        stack = psutil.Process(int(line))
        children = descendants(stack.pid)
        assert any("awslambdaric" in line for line in names(children)), names(children)
        listening = ports(app / "stack.json")
        # WHEN that process is killed
        parent.kill()
        parent.wait(timeout=BOUND)
        # THEN the stack stops as on Ctrl-C (its state file removed), with all it started
        assert_all_end([stack, *children])
        assert not (app / "stack.json").exists()
        assert [port for port in listening if not free(port)] == []
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.communicate(timeout=BOUND)


@pytest.mark.skipif(not LINUX, reason="the parent-death signal is Linux's")
def test_a_forked_worker_ends_with_a_killed_fork_server_even_while_the_stack_cannot_act(app, stacks):
    # GIVEN a busy forked worker, and a stack frozen so that it cannot end it itself
    stack = start(app, stacks, "--worker-start", "fork")
    make_busy(stack)
    children = descendants(stack.proc.pid)
    (server,) = [child for child in children if "forkserver" in " ".join(child.cmdline())]
    workers = server.children()
    assert workers
    stack.proc.send_signal(signal.SIGSTOP)
    try:
        # WHEN the fork server is killed
        server.kill()
        # THEN its workers end too
        assert_all_end(workers)
    finally:
        stack.proc.send_signal(signal.SIGCONT)
    # and the stack, running again, still stops cleanly
    assert stack.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_a_closed_terminal_stops_the_stack_as_ctrl_c_does(app, stacks, sig):
    # GIVEN a running stack
    stack = start(app, stacks, "--prewarm")
    children = descendants(stack.proc.pid)
    # WHEN its terminal closes (SIGHUP), or it is told to stop
    stack.proc.send_signal(sig)
    # THEN it stops in order: status 0, its state file removed, nothing left behind
    assert stack.proc.wait(timeout=BOUND) == 0
    stack.wait_drained(BOUND)
    assert "stopping" in "".join(stack.output)
    assert not stack.state_file.exists()
    assert_all_end(children)
