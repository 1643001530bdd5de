"""Start Lambda workers by forking a process that has already imported the heavy libraries.

A Python worker spends most of its cold start importing what every function imports
(awslambdaric, boto3 and botocore, Powertools): 600-800 ms and 45 MB per process. The fork
server imports them once; each worker is then a ``fork()`` of it, which shares those pages
copy-on-write and starts in milliseconds. The function's own module is imported only after
the fork, in the worker, so its module-level init runs per worker and is timed as the cold
start's init, as on AWS, and nothing of one function's state reaches another.

The fork server is a process of its own, started by :class:`ForkServer` with one end of a
Unix socket pair; it never starts a thread, so forking it is safe (forking the asyncio
process that serves the gateway, with its threads and sockets, would not be). Over that
socket it takes one request per worker (the environment, working directory and handler,
plus the write end of a pipe for the worker's output, passed as a file descriptor) and
answers with the worker's pid; when a worker exits it reports the exit status, since only
the parent of a process can wait for it.

Where ``fork()`` is missing (Windows), workers are started as processes of their own instead
(see :mod:`wsstack.runtime`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import importlib
import json
import logging
import os
import re
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from wsstack import lifeline
from wsstack.memory import release_free_memory

__all__ = ["FORK_AVAILABLE", "MODULE_INIT_MARKER", "PRELOAD", "ForkServer", "ForkServerGone", "Preload", "main",
           "scan_code"]

#: ``fork()`` and descriptor passing over Unix sockets exist here.
FORK_AVAILABLE = hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")

#: Modules the fork server imports before it forks: the runtime client's own and what boto3
#: loads when a function creates its first client or resource. A name that does not import is
#: skipped. Not ``awslambdaric.bootstrap`` nor ``awslambdaric.lambda_runtime_client``: loading
#: the native client fixes its endpoint from ``AWS_LAMBDA_RUNTIME_API`` (a static initializer),
#: and bootstrap reads ``AWS_LAMBDA_LOG_FORMAT`` and ``AWS_LAMBDA_LOG_LEVEL`` on import; both are
#: a worker's own, so both are imported in the worker (a few milliseconds).
PRELOAD = (
    "awslambdaric.lambda_context",
    "awslambdaric.lambda_runtime_exception",
    "awslambdaric.lambda_runtime_log_utils",
    "awslambdaric.lambda_runtime_marshaller",
    "http.client",
    "ssl",
    "boto3",
    "boto3.session",
    "boto3.resources.factory",
    "boto3.dynamodb.conditions",
    "boto3.dynamodb.types",
    "botocore.session",
    "botocore.client",
    "botocore.endpoint",
    "botocore.httpsession",
    "botocore.parsers",
    "botocore.serialize",
    "botocore.auth",
    "botocore.regions",
    "botocore.credentials",
    "botocore.handlers",
    "botocore.retries.standard",
    "botocore.retries.special",
    "botocore.retries.adaptive",
    "botocore.discovery",
)
#: Imported too when a function's code names Powertools (see :func:`scan_code`).
POWERTOOLS_PRELOAD = ("aws_lambda_powertools", "aws_lambda_powertools.logging", "aws_lambda_powertools.metrics")

#: A boto3 ``client("name")`` or ``resource("name")`` call with the service named in the code.
_BOTO3_CALL = re.compile(r"""\b(client|resource)\(\s*(?:service_name\s*=\s*)?["']([a-z0-9][a-z0-9-]{0,62})["']""")


@dataclass(frozen=True)
class Preload:
    """What the fork server prepares beyond :data:`PRELOAD`, read from the functions' code.

    Attributes:
        powertools: Import :data:`POWERTOOLS_PRELOAD` too.
        clients: boto3 services the code creates clients for.
        resources: boto3 services the code creates resources for.
    """

    powertools: bool = False
    clients: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()

    def __or__(self, other: Preload) -> Preload:
        return Preload(self.powertools or other.powertools, self.clients | other.clients,
                       self.resources | other.resources)

    def to_json(self) -> str:
        return json.dumps({"powertools": self.powertools, "clients": sorted(self.clients),
                           "resources": sorted(self.resources)})

    @classmethod
    def from_json(cls, text: str) -> Preload:
        data = json.loads(text)
        return cls(bool(data.get("powertools")), frozenset(data.get("clients", ())),
                   frozenset(data.get("resources", ())))

#: What a worker writes on its output once the handler's module is imported, followed by how
#: long that import took in ms and a newline. The import is the function's own init (its
#: module-level code); the rest of a cold start (the fork or spawn, the runtime client) is the
#: stack's. The runtime takes the line out of the function's log and reports both parts (see
#: :mod:`wsstack.runtime`). It starts with a NUL byte, which no text a function logs does.
MODULE_INIT_MARKER = b"\x00wsstack-module-init "

_HEADER = struct.Struct("!I")
#: A request is the environment of one function: far below this.
_MAX_REQUEST = 16 * 2**20


class ForkServerGone(RuntimeError):
    """The fork server exited, or could not start."""


# ------------------------------------------------------------------ the fork server process


def main(argv: list[str] | None = None) -> None:
    """The fork server: import what it preloads, then fork a worker per request on fd ``argv[0]``.

    ``argv[1]``, if given, is a :class:`Preload` as JSON: what else to prepare.
    """
    args = sys.argv[1:] if argv is None else argv
    control = socket.socket(fileno=int(args[0]))
    preload = Preload.from_json(args[1]) if len(args) > 1 else Preload()
    for name in (*PRELOAD, *(POWERTOOLS_PRELOAD if preload.powertools else ())):
        with contextlib.suppress(Exception):  # an optional library, or one that fails to import
            importlib.import_module(name)
    _load_botocore_data(preload)
    # What the imports allocated moves to a generation the collector never scans, so a worker's
    # first collections do not touch (and so copy) the pages it shares with this process.
    gc.collect()
    gc.freeze()
    release_free_memory()
    lifeline.can_die_with_parent()  # loads the C library once, not in every worker
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    # Ctrl-C reaches the stack, which stops us by closing the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children: set[int] = set()
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    _send(control, {"ready": True, "pid": os.getpid()})
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is control:
                    request = _receive(control)
                    if request is None:
                        return  # the stack closed its end: it is stopping, or gone
                    _fork(control, request, children, (wake_read, wake_write))
                else:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_read, 512):
                            pass
            _reap(control, children)
    finally:
        # Workers outlive no stack: what is left goes with us.
        for pid in children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def _load_botocore_data(preload: Preload) -> None:
    """Load, once, the botocore data files a worker's first client reads, and share them.

    Creating a boto3 client parses JSON shipped with botocore (the endpoints, the partitions,
    the service's model and endpoint rules): about 10 MB of objects and 40 ms per worker, the
    same in every one. Each botocore session has a loader that caches what it parsed; here one
    throwaway session creates the clients and resources the functions' code names, and every
    loader created after the fork starts with a copy of that cache. The parsed files are
    botocore's own data, read before any function's code runs, so no state of one function
    reaches another; a worker whose ``AWS_DATA_PATH`` differs from ours reads its own files.
    """
    try:
        import boto3.session
        from botocore import loaders
    except ImportError:
        return
    session = boto3.session.Session(aws_access_key_id="preload", aws_secret_access_key="preload",
                                    region_name="us-east-1")
    # The endpoint is never contacted: creating a client or resource sends nothing.
    endpoint = "http://127.0.0.1:9"
    for create, names in ((session.client, preload.clients), (session.resource, preload.resources)):
        for name in sorted(names):
            with contextlib.suppress(Exception):  # not a service this boto3 knows
                create(name, endpoint_url=endpoint)
    loaded = dict(session._session.get_component("data_loader")._cache)
    data_path = os.environ.get("AWS_DATA_PATH")
    original_init = loaders.Loader.__init__

    def init_with_loaded(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if os.environ.get("AWS_DATA_PATH") == data_path:
            self._cache.update(loaded)

    loaders.Loader.__init__ = init_with_loaded


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    control.sendall(json.dumps(message).encode() + b"\n")


def _receive(control: socket.socket) -> tuple[dict[str, Any], int] | None:
    header = b""
    fds: list[int] = []
    while len(header) < _HEADER.size:
        data, more, _, _ = socket.recv_fds(control, _HEADER.size - len(header), 1)
        if not data:
            return None
        header += data
        fds += more
    (size,) = _HEADER.unpack(header)
    if size > _MAX_REQUEST:
        return None
    body = b""
    while len(body) < size:
        chunk = control.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ValueError("a request must carry exactly one descriptor: the worker's output")
    return json.loads(body), fds[0]


def _fork(
    control: socket.socket, request: tuple[dict[str, Any], int], children: set[int], wake: tuple[int, int]
) -> None:
    spec, output = request
    sys.stdout.flush()
    sys.stderr.flush()
    server = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(output)
        _send(control, {"id": spec["id"], "error": f"fork failed: {exc}"})
        return
    if pid == 0:
        # Before anything else: a worker must not outlive us, even if we are killed and
        # cannot end it (this process never starts a thread, so the thread that forked it
        # is the process). The stack also ends our workers if we die while it runs.
        lifeline.die_with_parent(signal.SIGKILL, server)
        code = 1
        try:
            control.close()
            for fd in wake:
                os.close(fd)
            code = _run_worker(spec, output)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(output)
    children.add(pid)
    _send(control, {"id": spec["id"], "pid": pid})


def _reap(control: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(control, {"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


def _run_worker(spec: dict[str, Any], output: int) -> int:
    """In the forked child: become the function's execution environment and run awslambdaric."""
    # Its own process group, as a spawned worker has: killing the group also ends what the
    # handler started.
    os.setsid()
    with contextlib.suppress(ImportError):
        # `ps` then names the function a worker runs, as for a spawned worker. Before the
        # environment changes: setproctitle finds the room for the title next to it.
        from setproctitle import setproctitle

        setproctitle(f"{sys.executable} -m awslambdaric {spec['handler']}")
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL if signum == signal.SIGCHLD else signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    env: dict[str, str] = spec["env"]
    os.chdir(spec["cwd"])
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    # sys.path as `python -c` would build it with this PYTHONPATH: the working directory, the
    # PYTHONPATH entries, then the interpreter's own (stdlib, site-packages).
    extra = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = ["", *extra, *(entry for entry in sys.path[1:] if entry not in extra)]
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    sys.argv = ["-c", spec["handler"]]
    importlib.invalidate_caches()  # the code may have changed since this process looked
    # Imported here, in the function's environment (see PRELOAD).
    from awslambdaric import bootstrap
    from awslambdaric.lambda_runtime_client import LambdaRuntimeClient

    _time_handler_import(bootstrap)
    bootstrap.run(spec["handler"], LambdaRuntimeClient(env["AWS_LAMBDA_RUNTIME_API"], False))
    return 0


def _time_handler_import(bootstrap: Any) -> None:
    """Have awslambdaric's handler loader report how long the import took (see MODULE_INIT_MARKER).

    The runtime's ``_BOOTSTRAP`` does the same for a spawned worker.
    """
    load = bootstrap._get_handler

    def timed_load(handler: str) -> Any:
        started = time.perf_counter()
        try:
            return load(handler)
        finally:
            os.write(1, MODULE_INIT_MARKER + f"{(time.perf_counter() - started) * 1000:.3f}\n".encode())

    bootstrap._get_handler = timed_load


# ----------------------------------------------------------------------- the stack's side


def scan_code(code_dir: str) -> Preload:
    """What the ``.py`` files directly in ``code_dir`` or one level below use (see :class:`Preload`)."""
    powertools, calls = False, {"client": set(), "resource": set()}
    for root, dirs, files in os.walk(code_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__" and root == code_dir]
        for name in files:
            if name.endswith(".py"):
                with contextlib.suppress(OSError), open(os.path.join(root, name), encoding="utf-8",
                                                        errors="replace") as source:
                    text = source.read()
                powertools = powertools or "aws_lambda_powertools" in text
                for kind, service in _BOTO3_CALL.findall(text):
                    calls[kind].add(service)
    return Preload(powertools, frozenset(calls["client"]), frozenset(calls["resource"]))


def vendors_preloaded(code_dir: str, preload: tuple[str, ...]) -> bool:
    """Whether ``code_dir`` ships its own copy of a preloaded package (then it must not be forked)."""
    tops = {name.split(".")[0] for name in preload}
    return any(os.path.exists(os.path.join(code_dir, top)) or os.path.exists(os.path.join(code_dir, f"{top}.py"))
               for top in tops)


class ForkServer:
    """The stack's handle on one fork server process (see the module's docstring).

    Args:
        python: The interpreter; the fork server runs it, so workers run it too.
        preload: What to prepare before forking beyond :data:`PRELOAD`.
        log: Where its start, and an unexpected exit, are reported.
        env: Its environment: what it imports with (``PYTHONPATH``). Each worker gets its
            own in its request; nothing else of this one reaches a worker.
    """

    def __init__(self, python: str, preload: Preload, log: logging.Logger, env: dict[str, str] | None = None) -> None:
        self.python = python
        self.preload = preload
        self.env = env
        self._log = log
        self._process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._buffer = b""
        self._ready: asyncio.Future[None] | None = None
        self._requests: collections.deque[asyncio.Future[int]] = collections.deque()
        self._ids = 0
        #: pid of each live worker -> called with its return code when it exits.
        self._exits: dict[int, Any] = {}
        self._closing = False
        self.started_at = 0.0

    @property
    def running(self) -> bool:
        return self._control is not None

    async def start(self) -> None:
        """Start the process; returns once it has imported ``preload`` and is ready to fork."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.started_at = time.monotonic()
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.python, "-c", "import sys; from wsstack.forkserver import main; main()",
                str(theirs.fileno()), self.preload.to_json(),
                pass_fds=[theirs.fileno()], stdin=asyncio.subprocess.DEVNULL, env=self.env,
                # Away from our terminal's process group: Ctrl-C stops the stack, which stops it.
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._control = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._readable)
        try:
            await self._ready
        except BaseException:
            await self.close()
            raise
        self._log.debug("fork server %s ready in %.0f ms", self._process.pid,
                        (time.monotonic() - self.started_at) * 1000)

    async def fork(self, handler: str, cwd: str, env: dict[str, str], output: int, on_exit: Any) -> int:
        """Fork a worker running ``handler``; its stdout and stderr go to the descriptor ``output``.

        ``on_exit(returncode)`` is called when it exits (a negative code is the signal that
        ended it, as :mod:`subprocess` reports it). Returns the worker's pid.

        Raises:
            ForkServerGone: The fork server is not running, or died before it answered.
            OSError: The request could not be sent, or the fork failed.
        """
        control = self._control
        if control is None:
            raise ForkServerGone("the fork server is not running")
        self._ids += 1
        body = json.dumps({"id": self._ids, "handler": handler, "cwd": cwd, "env": env}).encode()
        message = _HEADER.pack(len(body)) + body
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._requests.append(future)
        try:
            # A request is a few KB against a socket buffer of hundreds: it goes in one call.
            sent = socket.send_fds(control, [message], [output])
            if sent < len(message):
                control.setblocking(True)
                try:
                    control.sendall(message[sent:])
                finally:
                    control.setblocking(False)
        except OSError:
            self._requests.remove(future)
            raise
        pid = await future
        self._exits[pid] = on_exit
        return pid

    def _readable(self) -> None:
        control = self._control
        if control is None:
            return
        try:
            data = control.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost()
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._handle(json.loads(line))

    def _handle(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif "exited" in message:
            on_exit = self._exits.pop(message["exited"], None)
            if on_exit is not None:
                on_exit(message["returncode"])
        elif self._requests:
            future = self._requests.popleft()
            if future.done():
                return
            if "error" in message:
                future.set_exception(OSError(message["error"]))
            else:
                future.set_result(message["pid"])

    def _lost(self) -> None:
        """The socket closed: the process is gone. Fail what waited on it and end its workers."""
        control, self._control = self._control, None
        if control is None:
            return
        asyncio.get_running_loop().remove_reader(control.fileno())
        control.close()
        gone = ForkServerGone("the fork server exited")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(gone)
        while self._requests:
            future = self._requests.popleft()
            if not future.done():
                future.set_exception(gone)
        if not self._closing:
            status = self._process.returncode if self._process is not None else None
            self._log.error(
                "the fork server (pid %s) exited unexpectedly (%s); its %d workers are stopped, "
                "and the next cold start starts a new one",
                self._process.pid if self._process else None,
                "still exiting" if status is None else f"status {status}", len(self._exits),
            )
        # Orphans of a dead fork server can no longer be waited for: end them and report them
        # killed, so that their invocations fail as a crashed worker's do and they are replaced.
        exits, self._exits = self._exits, {}
        for pid, on_exit in exits.items():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            on_exit(-signal.SIGKILL)

    async def close(self) -> None:
        """Stop the fork server; workers it still has are killed with it."""
        self._closing = True
        self._lost()
        process = self._process
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._closing = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None
