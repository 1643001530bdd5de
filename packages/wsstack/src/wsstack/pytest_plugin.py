"""pytest plugin: test a SAM WebSocket app against a real local stack, started for you.

Installed with wsstack (a ``pytest11`` entry point), so a project only asks for the fixture::

    def test_broadcast(wsstack):
        with wsstack.connect() as alice, wsstack.connect() as bob:
            alice.send('{"action": "sendmessage", "data": "hi"}')
            assert bob.recv(timeout=10) == "hi"

The ``wsstack`` fixture hands a test the running stack of the project's template: a real
``wsstack up`` child process on free ports of 127.0.0.1, with its data in memory only. It is
started the first time a test asks for it and stopped (Ctrl-C, then a bounded wait, then a
kill) when the test run ends, so every test of the run shares one stack per configuration.
A run that dies without stopping it (killed, or its terminal closed) takes the stack with it
(see :class:`StackProcess`).
When a test fails, what the stack logged while it ran is attached to its report (a
``Captured wsstack log`` section).

Configuration, in ``pytest.ini``, or ``[tool.pytest.ini_options]`` of ``pyproject.toml``
(relative paths are resolved against the rootdir, which is also the stack's working folder)::

    wsstack_template = template.yaml          # the default
    wsstack_parameters =                      # template parameters, one Name=Value a line
        Stage=test
    wsstack_env_vars = env.local.json         # sam local's --env-vars format
    wsstack_users = users.local.json          # users to create in the template's user pools
    wsstack_args = --idle-timeout 5           # any other `wsstack up` options
    wsstack_ready_timeout = 60                # seconds to wait for the stack to be ready

Without ``wsstack_env_vars`` or ``wsstack_users``, ``wsstack up``'s defaults apply:
``env.local.json`` and ``users.local.json`` of the rootdir, where present.

To run some tests against another template or other parameters, mark them: the closest
``wsstack`` marker (on the test, its class or its module's ``pytestmark``) changes the
options it names, and tests with the same options share one stack::

    pytestmark = pytest.mark.wsstack(template="tests/fixtures/other_app/template.yaml",
                                     parameters={"TableName": "other"})

The marker takes ``template``, ``parameters`` (a dict, merged over the ini's), ``env_vars``,
``users`` and ``args`` (a list of extra ``wsstack up`` options).

The object a test gets (a :class:`Stack`) has the stack's URLs, region, AWS endpoint, user
pool and app client ids and CA bundle, boto3 clients for the local services
(``wsstack.client("dynamodb")``), ``sign_in``, ``create_user`` and ``connect``. The stack
itself lives for the whole run, while the fixture is resolved per test (that is how markers
reach it); fixtures of a wider scope use ``wsstack_stacks``, the run's pool of stacks::

    from wsstack.pytest_plugin import stack_config

    @pytest.fixture(scope="session")
    def table(wsstack_stacks, pytestconfig):
        stack = wsstack_stacks.get(stack_config(pytestconfig))
        return stack.resources["ConnectionsTable"]

``wsstack_stacks.start(config)`` gives a stack of the caller's own (for tests that must not
share one), stopped with ``wsstack_stacks.stop(stack)`` or at the end of the run. Failing
tests' reports leave the log out with ``--wsstack-no-log``; ``-p no:wsstack`` turns the
plugin off.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

from wsstack.lifeline import ENV_VAR as LIFELINE_VAR
from wsstack.lifeline import Lifeline

if TYPE_CHECKING:  # imported where used, so that loading the plugin stays quick for every test run
    from websockets.sync.client import ClientConnection

    from wsstack.stack import ApiInfo, StackInfo

__all__ = [
    "ChildProcess",
    "Stack",
    "StackConfig",
    "StackProcess",
    "Stacks",
    "Tokens",
    "stack_config",
]

#: What ``wsstack up`` prints once it serves (wsstack.cli.READY_LINE, not imported: the CLI
#: module pulls in the emulator's dependencies, which every test run would then load).
READY_LINE = "wsstack: ready"
#: The credentials the local AWS endpoint takes (any would do; these are wsstack's).
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: Seconds the stack gets to stop after Ctrl-C before it is killed.
STOP_TIMEOUT = 30.0
#: Most log lines attached to one failing test's report (the last ones are kept).
LOG_LINES = 400


# --------------------------------------------------------------------------- processes
class ChildProcess:
    """A child process whose output (stdout and stderr) a thread drains line by line, so the
    child never blocks on a full pipe and tests can wait, bounded, for what it prints."""

    def __init__(self, argv: Sequence[str], **popen: Any) -> None:
        self.proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
        )
        #: Every line printed so far (appended to while the child runs).
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, matches: Callable[[str], bool], timeout: float, failure: str) -> str:
        """The next line for which ``matches`` holds; AssertionError with ``failure`` and the
        output if none comes within ``timeout`` or the child ends first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"{failure}; it printed:\n" + "".join(self.output))
            if matches(line):
                return line

    def wait_drained(self, timeout: float) -> None:
        """Return once everything the (ended) child printed is in ``output``."""
        while self._lines.get(timeout=timeout) is not None:
            pass


class StackProcess(ChildProcess):
    """``wsstack up`` on free ports of 127.0.0.1, writing its URLs to ``state_file``.

    ``args`` are more ``wsstack up`` options; ``popen`` goes to :class:`subprocess.Popen`
    (``cwd``, ``env``).

    The stack stops (as on Ctrl-C) when this process ends, however it ends, even killed
    with SIGKILL: it watches a pipe only this process holds open (see
    :mod:`wsstack.lifeline`), and what it started ends with it.
    """

    def __init__(self, state_file: Path, *args: str, **popen: Any) -> None:
        self.state_file = Path(state_file)
        self._lifeline: Lifeline | None = None
        if os.name == "posix":  # descriptors cannot be passed elsewhere
            self._lifeline = Lifeline()
            env = popen.get("env")
            popen["env"] = {**(os.environ if env is None else env), LIFELINE_VAR: str(self._lifeline.child_fd)}
            popen["pass_fds"] = (*popen.get("pass_fds", ()), self._lifeline.child_fd)
        try:
            super().__init__(
                [sys.executable, "-m", "wsstack.cli", "up", "--port", "0", "--tls-port", "0",
                 "--emulator-port", "0", "--state-file", str(state_file), *args],
                **popen,
            )
        finally:
            if self._lifeline is not None:
                self._lifeline.started()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the stack says it is ready; kill it and raise AssertionError with its
        output if it does not within ``timeout`` seconds or ends first."""
        try:
            self.expect(lambda line: line.startswith(READY_LINE), timeout, "the stack did not become ready")
        except AssertionError:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            if self._lifeline is not None:
                self._lifeline.cut()
            raise

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Ctrl-C, as a user would, then ``timeout`` seconds to stop before a kill; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
            if self._lifeline is not None:
                self._lifeline.cut()


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class StackConfig:
    """What a stack is started with; stacks of equal configurations are shared."""

    template: Path
    #: Template parameters, ``(name, value)`` pairs.
    parameters: tuple[tuple[str, str], ...] = ()
    #: An environment overrides file; None: ``wsstack up``'s default (env.local.json if present).
    env_vars: Path | None = None
    #: A users file; None: ``wsstack up``'s default (users.local.json if present).
    users: Path | None = None
    #: More ``wsstack up`` options.
    args: tuple[str, ...] = ()
    #: The stack's working folder (relative paths of its handlers' environment resolve there).
    cwd: Path = field(default_factory=Path.cwd)
    #: Seconds to wait for the ready line.
    ready_timeout: float = 60.0

    def argv(self) -> list[str]:
        """The ``wsstack up`` options (beyond ports and state file) this configuration means."""
        argv = ["--template", str(self.template), "--no-persist"]
        for name, value in self.parameters:
            argv += ["--parameter", f"{name}={value}"]
        if self.env_vars is not None:
            argv += ["--env-vars", str(self.env_vars)]
        if self.users is not None:
            argv += ["--users", str(self.users)]
        return argv + list(self.args)

    def label(self) -> str:
        """Short name of the stack in reports: its template, relative to its folder if it can be."""
        with contextlib.suppress(ValueError):
            return str(self.template.relative_to(self.cwd))
        return str(self.template)


def _parameters(lines: Sequence[str], source: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for line in lines:
        name, sep, value = line.strip().partition("=")
        if not sep or not name:
            raise pytest.UsageError(f"{source}: {line.strip()!r} must look like Name=Value.")
        pairs.append((name, value))
    return tuple(pairs)


def stack_config(config: pytest.Config, node: pytest.Item | pytest.Collector | None = None) -> StackConfig:
    """The configuration of the ini options, changed by ``node``'s closest ``wsstack`` marker.

    Raises:
        pytest.UsageError: an option or the marker is malformed (the message names it).
    """
    base = config.rootpath
    template = config.getini("wsstack_template") or "template.yaml"
    parameters = dict(_parameters(config.getini("wsstack_parameters"), "wsstack_parameters"))
    env_vars = config.getini("wsstack_env_vars") or None
    users = config.getini("wsstack_users") or None
    args = tuple(config.getini("wsstack_args"))
    timeout_text = config.getini("wsstack_ready_timeout") or "60"
    try:
        ready_timeout = float(timeout_text)
    except ValueError:
        raise pytest.UsageError(f"wsstack_ready_timeout = {timeout_text!r} is not a number of seconds.") from None
    marker = node.get_closest_marker("wsstack") if node is not None else None
    if marker is not None:
        unknown = set(marker.kwargs) - {"template", "parameters", "env_vars", "users", "args"}
        if unknown or marker.args:
            raise pytest.UsageError(
                f"{node.nodeid}: pytest.mark.wsstack takes template=, parameters=, env_vars=, users= and args= "
                f"only (got {', '.join(sorted(unknown)) or 'positional arguments'})."
            )
        template = marker.kwargs.get("template", template)
        parameters.update({str(k): str(v) for k, v in marker.kwargs.get("parameters", {}).items()})
        env_vars = marker.kwargs.get("env_vars", env_vars)
        users = marker.kwargs.get("users", users)
        args = tuple(marker.kwargs.get("args", args))
    return StackConfig(
        template=base / template, parameters=tuple(sorted(parameters.items())),
        env_vars=base / env_vars if env_vars else None, users=base / users if users else None,
        args=args, cwd=base, ready_timeout=ready_timeout,
    )


# --------------------------------------------------------------------------- a running stack
@dataclass(frozen=True)
class Tokens:
    """What a Cognito sign-in (InitiateAuth) gives."""

    id_token: str
    access_token: str
    refresh_token: str
    expires_in: int


class Stack:
    """A running local stack: its facts (what its state file says), clients for it, and its log.

    Attributes:
        process: the ``wsstack up`` child (its ``output`` is every line it printed).
        info: the state file's contents as :class:`wsstack.stack.StackInfo`.
        state: the same as the raw JSON object.
        config: what it was started with.
    """

    def __init__(self, process: StackProcess, config: StackConfig, state: dict[str, Any], workdir: Path) -> None:
        from wsstack.stack import StackInfo

        info = StackInfo.from_dict(state)
        if info is None:
            raise AssertionError(f"the state file {process.state_file} does not describe a stack: {state!r}")
        self.process = process
        self.config = config
        self.state = state
        self.info: StackInfo = info
        self._workdir = workdir
        self._clients: dict[str, Any] = {}
        #: Connections ``connect`` opened that the ``wsstack`` fixture closes after the test.
        self._opened: list[ClientConnection] = []

    # facts --------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.process.state_file

    @property
    def websocket_url(self) -> str:
        """``ws://127.0.0.1:<port>/<stage>`` of the first API's first stage."""
        return self.info.websocket_url

    @property
    def secure_websocket_url(self) -> str:
        """The same stage over TLS (``wss://{domainName}/{stage}``), trusted with ``ca_bundle``."""
        return self.info.apis[0].secure_websocket_url if self.info.apis else ""

    @property
    def connections_url(self) -> str:
        """``http://127.0.0.1:<port>/<stage>/@connections`` of the first API's first stage."""
        return self.info.connections_url

    @property
    def management_url(self) -> str:
        """An ``endpoint_url`` for ``apigatewaymanagementapi`` on the first API's first stage."""
        return self.info.apis[0].management_url if self.info.apis else ""

    @property
    def apis(self) -> list[ApiInfo]:
        """Every served stage of every WebSocket API of the template."""
        return self.info.apis

    @property
    def region(self) -> str:
        return self.info.region

    @property
    def aws_endpoint(self) -> str:
        """The local AWS endpoint (DynamoDB, Cognito, ...) for boto3's ``endpoint_url``."""
        return self.info.aws_endpoint

    @property
    def user_pool_id(self) -> str | None:
        return self.info.user_pool_id

    @property
    def user_pool_client_id(self) -> str | None:
        return self.info.user_pool_client_id

    @property
    def ca_bundle(self) -> str:
        """The PEM file of the certificate of the stack's TLS ports."""
        return self.info.ca_bundle

    @property
    def resources(self) -> dict[str, str]:
        """What ``Ref`` gives for each resource of the template, by logical id (table names, ...)."""
        return self.info.resources

    @property
    def users(self) -> dict[str, str]:
        """Users created from the users file: username -> ``sub``."""
        return self.info.users

    def log(self) -> str:
        """Everything the stack printed so far."""
        return "".join(self.process.output)

    # clients ------------------------------------------------------------------------------
    def client(self, service: str, **options: Any) -> Any:
        """A boto3 client of ``service`` on the local AWS endpoint, with the local credentials;
        clients without ``options`` are made once and shared."""
        import boto3

        if not options and service in self._clients:
            return self._clients[service]
        made = boto3.client(
            service, **{"region_name": self.region, "endpoint_url": self.aws_endpoint, **LOCAL_CREDENTIALS, **options}
        )
        if not options:
            self._clients[service] = made
        return made

    def management_client(self, api: str | None = None, stage: str | None = None) -> Any:
        """A boto3 ``apigatewaymanagementapi`` client for a stage's ``@connections``."""
        return self.client("apigatewaymanagementapi", endpoint_url=self._api(api, stage).management_url)

    def create_user(
        self, username: str, password: str, attributes: Mapping[str, str] | None = None, *,
        user_pool_id: str | None = None,
    ) -> str:
        """Create a confirmed user with a permanent password in the user pool (the stack's first
        one by default); the user's ``sub``."""
        pool = user_pool_id or self._pool()
        cognito = self.client("cognito-idp")
        created = cognito.admin_create_user(
            UserPoolId=pool, Username=username, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": name, "Value": value} for name, value in (attributes or {}).items()],
        )
        cognito.admin_set_user_password(UserPoolId=pool, Username=username, Password=password, Permanent=True)
        return next((a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub"), "")

    def sign_in(self, username: str, password: str, *, client_id: str | None = None) -> Tokens:
        """Sign a user in with the app client (USER_PASSWORD_AUTH, as a client app would)."""
        app_client = client_id or self.user_pool_client_id
        if not app_client:
            raise AssertionError(f"{self.config.label()} has no user pool app client to sign in with")
        result = self.client("cognito-idp").initiate_auth(
            ClientId=app_client, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )["AuthenticationResult"]
        return Tokens(result["IdToken"], result["AccessToken"], result.get("RefreshToken", ""), result["ExpiresIn"])

    def connect(
        self, token: str | None = None, *, api: str | None = None, stage: str | None = None, secure: bool = False,
        query: Mapping[str, str] | None = None, **options: Any,
    ) -> ClientConnection:
        """A connected ``websockets.sync.client`` connection to a stage (the first by default).

        ``token`` goes in the query as ``?token=`` (what a REQUEST authorizer on
        ``route.request.querystring.token`` reads); ``query`` adds other parameters;
        ``secure`` connects over TLS, trusting the stack's CA. ``options`` go to
        :func:`websockets.sync.client.connect` (``additional_headers``, ``subprotocols``,
        ``open_timeout``, ...). The ``wsstack`` fixture closes it after the test if it is
        still open.
        """
        import ssl

        from websockets.sync.client import connect

        target = self._api(api, stage)
        url = target.secure_websocket_url if secure else target.websocket_url
        params = {**({"token": token} if token is not None else {}), **(query or {})}
        if params:
            url += "?" + urlencode(params)
        if secure:
            options.setdefault("ssl", ssl.create_default_context(cafile=self.ca_bundle))
        options.setdefault("open_timeout", 10)
        connection = connect(url, **options)
        self._opened.append(connection)
        return connection

    def close_connections(self, since: int = 0) -> None:
        """Close the connections ``connect`` opened, from the ``since``-th on (a closed one
        is left as it is)."""
        opened, self._opened = self._opened[since:], self._opened[:since]
        for connection in opened:
            connection.close()

    def _api(self, api: str | None, stage: str | None) -> ApiInfo:
        for candidate in self.info.apis:
            if (api is None or candidate.api == api) and (stage is None or candidate.stage == stage):
                return candidate
        served = ", ".join(f"{a.api} ({a.stage})" for a in self.info.apis) or "none"
        wanted = " ".join(part for part in (api, stage) if part)
        raise AssertionError(f"{self.config.label()} serves no stage {wanted!r}; it serves: {served}")

    def _pool(self) -> str:
        if not self.user_pool_id:
            raise AssertionError(f"{self.config.label()} has no user pool")
        return self.user_pool_id

    # life ---------------------------------------------------------------------------------
    def stop(self) -> int:
        """Stop the stack (Ctrl-C, bounded wait, kill); its exit status."""
        self.close_connections()
        try:
            return self.process.stop()
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)


class Stacks:
    """The stacks of one test run: one shared stack per configuration (:meth:`get`), and
    stacks of a caller's own (:meth:`start`), all watched for the failing tests' logs and
    stopped when the run ends."""

    def __init__(self) -> None:
        self.running: list[Stack] = []
        self._shared: dict[StackConfig, Stack] = {}
        self._failed: dict[StackConfig, str] = {}
        self._lock = threading.Lock()

    def get(self, config: StackConfig) -> Stack:
        """The shared stack of ``config``, started on first use; a stack that could not start
        fails every test that asks for it with the same message, without starting again."""
        with self._lock:
            if config in self._failed:
                pytest.fail(self._failed[config], pytrace=False)
            if config not in self._shared:
                try:
                    self._shared[config] = self.start(config)
                except (AssertionError, OSError, ValueError) as exc:
                    self._failed[config] = f"wsstack: the stack of {config.label()} did not start: {exc}"
                    pytest.fail(self._failed[config], pytrace=False)
            return self._shared[config]

    def start(self, config: StackConfig, *args: str) -> Stack:
        """A new stack of ``config`` (and ``args``, more ``wsstack up`` options) for the caller
        alone, once it is ready; the caller stops it with :meth:`stop`."""
        for option, path in (("template", config.template), ("env_vars", config.env_vars),
                             ("users", config.users)):
            if path is not None and not path.is_file():
                raise AssertionError(
                    f"{path} does not exist; set wsstack_{option} in the ini file, or {option}= of "
                    "pytest.mark.wsstack, to a file (relative to the rootdir)"
                )
        workdir = Path(tempfile.mkdtemp(prefix="wsstack-"))
        state_file = workdir / "stack.json"
        process = StackProcess(state_file, *config.argv(), *args, cwd=config.cwd)
        try:
            process.wait_ready(config.ready_timeout)
            stack = Stack(process, config, json.loads(state_file.read_text(encoding="utf-8")), workdir)
        except BaseException:
            process.stop()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self.running.append(stack)
        return stack

    def stop(self, stack: Stack) -> int:
        """Stop a stack of this run; its exit status."""
        with contextlib.suppress(ValueError):
            self.running.remove(stack)
        for config, shared in list(self._shared.items()):
            if shared is stack:
                del self._shared[config]
        return stack.stop()

    def close(self) -> None:
        """Stop every stack still running."""
        for stack in list(self.running):
            self.stop(stack)


# --------------------------------------------------------------------------- pytest hooks
_STACKS = pytest.StashKey[Stacks]()
#: Per test: how many lines each running stack had printed when the test started.
_LOG_MARKS = pytest.StashKey[dict[Stack, int]]()
#: Per test: the stack its ``wsstack`` fixture gave it, whose log alone its report shows.
_USED = pytest.StashKey[Stack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("wsstack_template", "SAM template the wsstack fixture runs (default: template.yaml)", default="")
    parser.addini("wsstack_parameters", "template parameters of the wsstack fixture, one Name=Value a line",
                  type="linelist", default=[])
    parser.addini("wsstack_env_vars", "environment overrides file of the wsstack fixture (sam local's --env-vars)",
                  default="")
    parser.addini("wsstack_users", "users file of the wsstack fixture", default="")
    parser.addini("wsstack_args", "more `wsstack up` options for the wsstack fixture", type="args", default=[])
    parser.addini("wsstack_ready_timeout", "seconds the wsstack fixture waits for the stack to be ready (default: 60)",
                  default="60")
    group = parser.getgroup("wsstack")
    group.addoption("--wsstack-no-log", action="store_true", default=False,
                    help="do not attach the local stack's log to failing tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wsstack(template=, parameters=, env_vars=, users=, args=): run the wsstack fixture's stack of these "
        "tests with these options instead of the ini's",
    )
    config.stash[_STACKS] = Stacks()


def pytest_unconfigure(config: pytest.Config) -> None:
    # Normally done by wsstack_stacks' teardown; this covers a run interrupted before it.
    stacks = config.stash.get(_STACKS, None)
    if stacks is not None:
        stacks.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    stacks = item.config.stash[_STACKS]
    item.stash[_LOG_MARKS] = {stack: len(stack.process.output) for stack in stacks.running}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed and not item.config.getoption("wsstack_no_log"):
        marks = item.stash.get(_LOG_MARKS, {})
        # The stack the test asked for; other stacks of the run (another marker's) may log at
        # any time, which says nothing about this test. A test that reached its stacks some
        # other way (through wsstack_stacks) gets every stack that logged meanwhile.
        used = item.stash.get(_USED, None)
        for stack in [used] if used is not None else item.config.stash[_STACKS].running:
            # A stack started while this test was set up shows its whole log.
            lines = stack.process.output[marks.get(stack, 0):]
            if not lines:
                continue
            skipped = len(lines) - LOG_LINES
            text = "".join(lines[-LOG_LINES:])
            if skipped > 0:
                text = f"[{skipped} earlier lines not shown]\n{text}"
            report.sections.append((f"Captured wsstack log {call.when} ({stack.config.label()})", text))
    return report


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def wsstack_stacks(pytestconfig: pytest.Config) -> Iterator[Stacks]:
    """The run's stacks: ``get(stack_config(pytestconfig))`` is the stack the ``wsstack``
    fixture gives unmarked tests, for fixtures of a session or module scope."""
    stacks = pytestconfig.stash[_STACKS]
    yield stacks
    stacks.close()


@pytest.fixture
def wsstack(request: pytest.FixtureRequest, wsstack_stacks: Stacks) -> Iterator[Stack]:
    """The running local stack of the project's template (or of the test's ``wsstack`` marker),
    shared by the whole run; connections the test opened with ``connect`` are closed after it
    (those of wider fixtures set up before it are not)."""
    try:
        config = stack_config(request.config, request.node)
    except pytest.UsageError as exc:
        pytest.fail(str(exc), pytrace=False)
    stack = wsstack_stacks.get(config)
    request.node.stash[_USED] = stack
    # Only what this test opened: a wider fixture's connections stay open for the next tests.
    opened_before = len(stack._opened)
    yield stack
    stack.close_connections(since=opened_before)

