"""Run Lambda functions locally the way AWS runs them, without Docker.

Every function runs in worker processes under the runtime interface client AWS's own images
use: awslambdaric for Python (see ``_BOOTSTRAP`` for how it is started), aws-lambda-ric for
``nodejs20.x`` and ``nodejs22.x`` (see :mod:`wsstack.node`). The client talks HTTP to a
Lambda Runtime API that :class:`LambdaRuntime` serves on 127.0.0.1.

Each worker gets its own Runtime API endpoint, as each AWS execution environment has its own;
that tells us which process holds which invocation, so a timeout kills the right worker and a
crash fails the right invocation. All workers of a function draw from one queue, so whichever
worker is idle takes the next invocation. Dispatch is push-based (asyncio futures, no polling),
so a warm invocation costs two local HTTP requests and no process start. The Runtime API is
served by :mod:`wsstack.http11`, a server cut to what the runtime clients send.

Reproduced AWS behaviour:

* warm reuse: a worker that answered polls ``/next`` again and serves the next invocation;
* cold starts when concurrency grows, bounded by ``ReservedConcurrentExecutions`` (or a default);
* the function's ``Timeout``: on expiry the worker is killed and the invocation fails with
  ``Sandbox.Timedout``; a worker that exits mid-invocation fails it with ``Runtime.ExitError``;
* init errors (``/init/error``) and handler exceptions reach the caller as the runtime client
  posted them;
* the environment AWS gives a function (``AWS_LAMBDA_*``, ``AWS_REGION``, ``LAMBDA_TASK_ROOT``,
  ``_HANDLER``, ``TZ``) plus the template's variables, and nothing else from our own process.

Not AWS behaviour, but what ``sam local`` users expect: with ``code_check_interval`` set, an
edit to a source file (``.py``, ``.js``, ``.mjs``, ``.cjs``) under a function's code directory
takes effect on its next invocation.
The check is a scan of file modification times when an invocation arrives (at most once per
interval), so an idle stack does no work; idle workers holding the old code are retired and
busy ones finish their invocation first, exactly as a new deployment replaces execution
environments on AWS. Sockets held by the gateway are not involved.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import functools
import itertools
import json
import logging
import operator
import os
import signal
import socket
import sys
import sysconfig
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from wsstack import forkserver
from wsstack.forkserver import FORK_AVAILABLE, ForkServer, ForkServerGone
from wsstack.http11 import HttpError, Request, Response, ServerProtocol
from wsstack.lifeline import Lifeline
from wsstack.logs import function_line_level
from wsstack.model import Function, InvocationResult
from wsstack.node import NodeRuntime, NodeUnavailable, find_node_runtime, is_node

__all__ = [
    "DEFAULT_CONCURRENCY", "WORKER_STARTS", "LambdaRuntime", "RequestTooLargeException", "ResourceNotFoundException",
    "UnsupportedRuntime",
]

#: AWS: "The Init phase is limited to 10 seconds".
INIT_TIMEOUT = 10.0
#: Seconds a worker gets to exit after SIGTERM before it is killed, on stop().
STOP_GRACE = 2.0
#: Synchronous invocation payload limit, request and response (the figure AWS's error quotes).
MAX_PAYLOAD = 6_291_556
#: Workers per function when neither the template nor the caller sets a limit: two per CPU.
#: A worker spends much of an invocation waiting on its own calls (DynamoDB, @connections),
#: so one per CPU leaves the CPUs idle under load: measured with the bench's echo function at
#: 20 x 50 on 2 CPUs, 2 workers gave about 760 messages/s, 4 about 850, 6 about 900, at
#: 45 MB per worker. Pools grow only as concurrent invocations need them.
DEFAULT_CONCURRENCY = 2 * (os.cpu_count() or 1)
#: How workers start: ``fork`` from the fork server (see :mod:`wsstack.forkserver`), ``spawn``
#: as processes of their own, ``auto`` forks where it can.
WORKER_STARTS = ("auto", "fork", "spawn")
#: The account id moto and the other local tools use.
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

_API = "/2018-06-01/runtime"
#: What a worker runs: awslambdaric's own bootstrap and Runtime API client, as
#: ``python -m awslambdaric <handler>`` would, except that ``/next`` is polled on the main
#: thread. For python3.12+ awslambdaric polls from a new thread per invocation, so that the
#: main thread can take signals while the environment waits; nothing in the local stack
#: signals an idle worker but to kill it, and that thread costs about a millisecond per warm
#: invocation here (measured: 1.4 ms against 0.25 ms for a handler that returns at once).
#: Run with ``-c``, so the function's directory comes first on ``sys.path``, as with ``-m``.
#: The handler's import is timed as a forked worker times it (``forkserver._time_handler_import``).
_BOOTSTRAP = (
    "import os, sys, time\n"
    # The stack's lifeline (see wsstack.lifeline), inlined: the worker's interpreter may not
    # import wsstack. When the stack ends, however it ends, the worker and what its handler
    # started end too, even mid-invocation.
    "if len(sys.argv) > 2:\n"
    "    import signal, threading\n"
    "    def _watch(fd):\n"
    "        try:\n"
    "            while os.read(fd, 512):\n"
    "                pass\n"
    "        except OSError:\n"
    "            pass\n"
    "        try:\n"
    "            os.killpg(os.getpid(), signal.SIGKILL)\n"
    "        finally:\n"
    "            os.kill(os.getpid(), signal.SIGKILL)\n"
    "    threading.Thread(target=_watch, args=(int(sys.argv.pop(2)),), daemon=True).start()\n"
    "from awslambdaric import bootstrap\n"
    "from awslambdaric.lambda_runtime_client import LambdaRuntimeClient\n"
    "_load = bootstrap._get_handler\n"
    "def _timed_load(handler):\n"
    "    started = time.perf_counter()\n"
    "    try:\n"
    "        return _load(handler)\n"
    "    finally:\n"
    "        took = (time.perf_counter() - started) * 1000\n"
    f"        os.write(1, {forkserver.MODULE_INIT_MARKER!r} + ('%.3f\\n' % took).encode())\n"
    "bootstrap._get_handler = _timed_load\n"
    "bootstrap.run(sys.argv[1], LambdaRuntimeClient(os.environ['AWS_LAMBDA_RUNTIME_API'], False))\n"
)
#: Variables a worker inherits from our process; everything else comes from Lambda or the template.
_INHERITED = ("PATH", "HOME", "LANG", "TMPDIR")
#: Lines longer than this are forwarded in pieces (CloudWatch caps an event at 256 KB).
_MAX_LOG_LINE = 256 * 1024


class ResourceNotFoundException(LookupError):
    """No function with that name was added (AWS's Invoke error of the same name)."""


class RequestTooLargeException(ValueError):
    """The event is larger than Lambda's synchronous payload limit (6 MB)."""


class UnsupportedRuntime(ValueError):
    """A function's runtime cannot run here; the message is one sentence naming what to install."""


class _State(enum.Enum):
    BOOTING = "booting"  # process started, has not polled /next yet
    IDLE = "idle"  # waiting in /next
    BUSY = "busy"  # holds an invocation
    FINISHING = "finishing"  # posted its answer, about to poll /next again
    DEAD = "dead"  # exited or being killed


#: States of a worker that will poll /next soon, so a queued invocation needs no new worker.
_ARRIVING = (_State.BOOTING, _State.FINISHING)


class _Invocation:
    __slots__ = (
        "body", "cold_start", "deadline_ms", "future", "init_ms", "module_init_ms", "report", "request_id", "started",
        "timeout", "timer",
    )

    def __init__(
        self, body: bytes, timeout: float, future: asyncio.Future[InvocationResult], report: bool = True
    ) -> None:
        self.request_id = str(uuid.uuid4())
        self.report = report
        self.body = body
        self.timeout = timeout
        self.future = future
        self.started = 0.0  # time.monotonic() when a worker took it
        self.deadline_ms = 0
        self.cold_start = False
        self.init_ms: float | None = None  # the worker's init duration, on a cold start
        self.module_init_ms: float | None = None  # the part of it that imported the handler's module
        self.timer: asyncio.TimerHandle | None = None


#: Directories never scanned for code changes: caches, VCS and tool folders, installed metadata.
_UNWATCHED_DIRS = ("__pycache__", "node_modules")
#: The files whose changes reload a function: Python and Node sources.
_SOURCE_SUFFIXES = (".py", ".js", ".mjs", ".cjs")


def _scan(code_dirs: list[Path]) -> forkserver.Preload:
    """What the fork server should prepare for functions whose code is in ``code_dirs``."""
    return functools.reduce(operator.or_, (forkserver.scan_code(str(d)) for d in code_dirs), forkserver.Preload())


def _code_fingerprint(root: Path) -> frozenset[tuple[str, int, int]]:
    """``(path, mtime_ns, size)`` of every source file (``.py``, ``.js``...) under ``root``.

    Size joins the modification time because Python's bytecode cache validates a module by
    both; an added, removed or renamed file changes the set too.
    """
    found = []
    pending = [str(root)]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue  # removed while we looked, or unreadable: not code we could run anyway
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not (entry.name.startswith(".") or entry.name in _UNWATCHED_DIRS
                                or entry.name.endswith(".dist-info")):
                            pending.append(entry.path)
                    elif entry.name.endswith(_SOURCE_SUFFIXES):
                        info = entry.stat()
                        found.append((entry.path, info.st_mtime_ns, info.st_size))
                except OSError:
                    continue
    return frozenset(found)


class _CodeWatch:
    """Notices changes to the source files of one code directory (shared by its functions).

    Args:
        root: The code directory.
        interval: Least seconds between two scans; 0 scans on every call.
    """

    def __init__(self, root: Path, interval: float) -> None:
        self.root = root
        self.interval = interval
        #: Bumped on every change seen; pools compare it with the version their workers run.
        self.version = 0
        self._fingerprint = _code_fingerprint(root)
        self._checked = time.monotonic()

    def current(self) -> int:
        """The code's version now, rescanning if the last scan is older than the interval."""
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            fingerprint = _code_fingerprint(self.root)
            if fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                self.version += 1
        return self.version


class _Worker:
    """One runtime client process (awslambdaric, aws-lambda-ric) and the Runtime API endpoint it polls."""

    _ids = itertools.count(1)

    def __init__(self, pool: _Pool) -> None:
        self.id = next(self._ids)
        self.pool = pool
        self.state = _State.BOOTING
        pool.arriving += 1
        #: The version of the function's code this worker loads (see _CodeWatch).
        self.code_version = pool.code_version
        self.port = 0
        self.server: asyncio.Server | None = None
        #: The process (spawned) or its output pipe (forked).
        self.transport: asyncio.BaseTransport | None = None
        self.pid: int | None = None
        self.forked = False
        #: Set when it exits, as subprocess reports it (negative: the signal that ended it).
        self.returncode: int | None = None
        #: The pending answer to its /next long poll while it is idle.
        self.waiter: asyncio.Future[Response] | None = None
        self.current: _Invocation | None = None
        #: The request id of the invocation this worker took last. Output travels on a pipe,
        #: apart from the Runtime API, so a line printed late in an invocation can arrive
        #: after its response: it still belongs to that invocation.
        self.last_request_id: str | None = None
        self.served = 0
        #: Started ahead of any invocation (pre-warm): its first invocation is no cold start.
        self.prewarmed = False
        #: time.monotonic() when it last went idle (see LambdaRuntime's idle_timeout).
        self.idle_since = 0.0
        self.spawned = time.monotonic()
        self.init_ms: float | None = None  # set when it first polls /next
        #: How long importing the handler's module took (the function's own init), as the
        #: worker reported it on its output (see forkserver.MODULE_INIT_MARKER).
        self.module_init_ms: float | None = None
        #: Set when it first polls /next, or is gone before it did.
        self.ready = asyncio.Event()
        self.init_timer: asyncio.TimerHandle | None = None
        self.init_error: dict[str, Any] | None = None
        self.init_timed_out = False
        self.killed = False  # by us: a timeout, an init timeout, stop()
        self.output = bytearray()
        self.output_closed = asyncio.Event()
        #: Resolved once the process is gone and its endpoint closed.
        self.reaped: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def set_state(self, state: _State) -> None:
        # Keep the pool's count of soon-idle workers exact: it decides when to start a new one.
        if self.state in _ARRIVING:
            self.pool.arriving -= 1
        if state in _ARRIVING:
            self.pool.arriving += 1
        self.state = state

    def signal(self, signum: int) -> None:
        """Signal the worker's whole process group (a handler's own children go too)."""
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            # A forked worker makes its own group first thing; signalled before that, it has none.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signum)
        except PermissionError:
            pass

    def forward_output(self, data: bytes) -> None:
        self.output += data
        if b"\n" not in data and len(self.output) < _MAX_LOG_LINE:
            return
        *lines, rest = self.output.split(b"\n")
        self.output = bytearray(rest)
        if len(self.output) >= _MAX_LOG_LINE:
            lines.append(bytes(self.output))
            self.output.clear()
        for line in lines:
            self.log_line(line)

    def flush_output(self) -> None:
        if self.output:
            self.log_line(bytes(self.output))
            self.output.clear()

    def log_line(self, line: bytes) -> None:
        # awslambdaric joins the lines of one error report with "\r" so that CloudWatch keeps
        # them in one event; keep them in one record too, but readable.
        marker = line.find(forkserver.MODULE_INIT_MARKER)
        if marker >= 0:
            self._take_module_init(line[marker + len(forkserver.MODULE_INIT_MARKER):])
            line = line[:marker]  # what the module printed before, with no newline of its own
            if not line:
                return
        text = line.decode("utf-8", "replace").rstrip("\r").replace("\r", "\n")
        extra: dict[str, Any] = {"function": self.pool.name, "worker_pid": self.pid}
        if self.current is not None:
            extra["request_id"] = self.current.request_id
        elif self.last_request_id is not None:
            extra["request_id"] = self.last_request_id
        # At the function's own level: its ERROR lines are errors here too.
        self.pool.log.log(function_line_level(text), text, extra=extra)


    def _take_module_init(self, figure: bytes) -> None:
        if self.module_init_ms is not None:
            return  # reported once, at init: a later line like it is the function's own output
        try:
            self.module_init_ms = float(figure)
        except ValueError:
            return
        # Output and the Runtime API are apart: the first invocation may be dispatched already.
        inv = self.current
        if inv is not None and inv.cold_start and inv.module_init_ms is None:
            inv.module_init_ms = self.module_init_ms


class _WorkerProtocol(asyncio.SubprocessProtocol):
    # A protocol rather than asyncio.subprocess.Process: Process.wait() only returns once the
    # output pipe closes, which a process started by the handler can hold open forever, while
    # process_exited() fires as soon as the worker itself exits.

    def __init__(self, runtime: LambdaRuntime, worker: _Worker) -> None:
        self.runtime = runtime
        self.worker = worker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not always an asyncio.SubprocessTransport subclass (uvloop's is not).
        transport = cast(asyncio.SubprocessTransport, transport)
        self.worker.transport = transport
        self.worker.pid = transport.get_pid()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.worker.forward_output(data if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.worker.flush_output()
        self.worker.output_closed.set()

    def process_exited(self) -> None:
        transport = cast(asyncio.SubprocessTransport, self.worker.transport)
        self.runtime._exited(self.worker, transport.get_returncode())


class _ForkedOutput(asyncio.Protocol):
    """The output pipe of a forked worker (its exit comes from the fork server)."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.worker.transport = transport

    def data_received(self, data: bytes) -> None:
        self.worker.forward_output(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.flush_output()
        self.worker.output_closed.set()


class _Pool:
    """The workers and the queue of one function."""

    def __init__(
        self, fn: Function, env: dict[str, str], region: str, limit: int, watch: _CodeWatch | None,
        node: NodeRuntime | None = None,
    ) -> None:
        self.fn = fn
        #: What runs a Node function's workers; None for a Python function.
        self.node = node
        self.name = fn.logical_id
        self.env = env
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{fn.name}"
        self.limit = limit
        self.pending: collections.deque[_Invocation] = collections.deque()
        self.idle: list[_Worker] = []
        self.workers: set[_Worker] = set()
        #: Workers booting or finishing: each will poll /next soon and can take a queued invocation.
        self.arriving = 0
        self.log = logging.getLogger(f"wsstack.fn.{self.name}")
        #: Watches the code directory when hot reload is on; None otherwise.
        self.watch = watch
        #: The code version new workers load; older workers are retired.
        self.code_version = watch.version if watch is not None else 0


class LambdaRuntime:
    """Serve the Lambda Runtime API and run each function in runtime client worker processes.

    Args:
        host: Address the Runtime API endpoints listen on.
        default_concurrency: Most workers per function when its ``reserved_concurrency`` is
            not set; :data:`DEFAULT_CONCURRENCY` (two per CPU) when None.
        python: Interpreter that runs Python workers; it must be able to import ``awslambdaric``.
        log: Logger for one line per invocation; defaults to ``wsstack.runtime``. The
            functions' own output goes to ``wsstack.fn.<LogicalId>``, one record per line,
            at the level the line names (Powertools' ``"level"``, awslambdaric's ``[ERROR]``).
            Records carry ``function``, ``request_id``, ``duration_ms``, ``cold_start`` and
            ``init_ms`` as attributes, for structured log output.
        code_check_interval: Turns hot reload on: an invocation first checks, at most once
            per this many seconds, whether a ``.py`` file under the function's code
            directory changed, and if so runs on a worker that loads the new code. None
            (the default) never checks, as on AWS.
        worker_start: ``fork`` starts workers by forking a fork server that has imported
            awslambdaric, boto3 and (when the functions use it) Powertools once (see
            :mod:`wsstack.forkserver`): a cold start then costs milliseconds plus the
            function's own init. ``spawn`` starts each as a new interpreter. ``auto`` (the
            default) forks where the platform can, for functions run by our own interpreter
            whose code ships no copy of those libraries, and spawns otherwise.
        idle_timeout: Seconds a worker may stay idle before it is stopped, as Lambda
            reclaims an execution environment nobody uses (the next invocation is a cold
            start again); None keeps idle workers until :meth:`stop`.
        node_ric: The folder holding ``node_modules/aws-lambda-ric`` for Node functions (see
            :func:`wsstack.node.node_ric_dir` for the default). Node workers are always
            spawned: ``node`` on ``PATH`` runs them, whatever version the ``Runtime`` names.

    Example::

        runtime = LambdaRuntime()
        runtime.add_function(fn, {"TABLE_NAME": "messages"})
        await runtime.start()
        try:
            result = await runtime.invoke(fn.logical_id, {"hello": "world"})
        finally:
            await runtime.stop()
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        default_concurrency: int | None = None,
        python: str = sys.executable,
        log: logging.Logger | None = None,
        code_check_interval: float | None = None,
        worker_start: str = "auto",
        idle_timeout: float | None = None,
        node_ric: str | Path | None = None,
    ) -> None:
        self._node_ric = node_ric
        #: Found on the first Node function (see check_function).
        self._node: NodeRuntime | None = None
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self._idle_timeout = idle_timeout
        self._idle_sweep: asyncio.TimerHandle | None = None
        if worker_start not in WORKER_STARTS:
            raise ValueError(f"worker_start must be one of {', '.join(WORKER_STARTS)}")
        if worker_start == "fork" and not FORK_AVAILABLE:
            raise ValueError("workers cannot be forked on this platform; use worker_start='spawn'")
        self._worker_start = worker_start
        self._fork_server: ForkServer | None = None
        self._fork_starting: asyncio.Task[ForkServer | None] | None = None
        self._fork_servers_started = 0
        #: What the fork server prepares; None: decide from the functions added (see prepare()).
        self._preload: forkserver.Preload | None = None
        if default_concurrency is None:
            default_concurrency = DEFAULT_CONCURRENCY
        if default_concurrency < 1:
            raise ValueError("default_concurrency must be at least 1")
        if code_check_interval is not None and code_check_interval < 0:
            raise ValueError("code_check_interval must not be negative")
        self._code_check_interval = code_check_interval
        self._watches: dict[Path, _CodeWatch] = {}
        self._host = host
        self._default_concurrency = default_concurrency
        self._python = python
        self._log = log or logging.getLogger("wsstack.runtime")
        self._pools: dict[str, _Pool] = {}
        self._by_port: dict[int, _Worker] = {}
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False
        #: The pipe spawned workers watch, to end with us (see wsstack.lifeline).
        self._lifeline: Lifeline | None = None

    # -- public API -------------------------------------------------------------------------

    def add_function(self, fn: Function, environment: dict[str, str]) -> None:
        """Register a function; its workers start on demand (the first invocation is cold).

        Args:
            fn: The function from the template.
            environment: Its environment variables, already resolved to strings. They win
                over the variables Lambda itself sets, as on AWS for the non-reserved ones.

        Raises:
            UnsupportedRuntime: Its runtime cannot run here (see :meth:`check_function`).
            ValueError: A function with that logical id was already added, or its code
                directory does not exist.
            TypeError: An environment value is not a string (an unresolved intrinsic, say).
        """
        if fn.logical_id in self._pools:
            raise ValueError(f"function {fn.logical_id!r} was already added")
        node = self.check_function(fn)
        if not Path(fn.code_dir).is_dir():
            raise ValueError(f"{fn.logical_id}: code directory {str(fn.code_dir)!r} does not exist")
        unresolved = sorted(k for k, v in environment.items() if not isinstance(k, str) or not isinstance(v, str))
        if unresolved:
            raise TypeError(f"{fn.logical_id}: environment values must be strings: {', '.join(map(str, unresolved))}")
        region = environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        limit = fn.reserved_concurrency or self._default_concurrency
        watch = None
        if self._code_check_interval is not None:
            # One watch per directory: functions sharing a CodeUri share the scan.
            root = Path(fn.code_dir).resolve()
            watch = self._watches.get(root)
            if watch is None:
                watch = self._watches[root] = _CodeWatch(root, self._code_check_interval)
        self._pools[fn.logical_id] = _Pool(
            fn, self._environment(fn, environment, region, node), region, limit, watch, node
        )

    def check_function(self, fn: Function) -> NodeRuntime | None:
        """Whether ``fn``'s runtime can run here: Python always, Node where ``node`` and its
        runtime interface client are found (what runs it is returned; None for Python).

        A caller that knows the functions early (the stack, before it starts anything) calls
        it to stop at once; :meth:`add_function` calls it too.

        Raises:
            UnsupportedRuntime: One sentence naming the function and what to install.
        """
        if fn.runtime.startswith("python"):
            return None
        if not is_node(fn.runtime):
            raise UnsupportedRuntime(
                f"{fn.logical_id}: runtime {fn.runtime!r} is not supported; use a python3.x or nodejs runtime."
            )
        if self._node is None:
            try:
                self._node = find_node_runtime(self._node_ric)
            except NodeUnavailable as exc:
                raise UnsupportedRuntime(f"{fn.logical_id}: runtime {fn.runtime!r} {exc}.") from None
        return self._node

    def prepare(self, code_dirs: list[Path]) -> None:
        """Begin starting the fork server now, for functions whose code is in ``code_dirs``.

        It imports for most of a second; a caller that knows the functions before it can add
        them (their environment waits on other resources) overlaps that with its own work.
        Optional: :meth:`start` starts it otherwise. Needs a running event loop.
        """
        if self._worker_start == "spawn" or not FORK_AVAILABLE or self._stopped or not code_dirs:
            return
        self._preload = _scan(code_dirs)
        self._spawn_task(self._forker())

    async def start(self) -> None:
        """Start serving the Runtime API. Workers start later, when invocations need them."""
        if self._stopped:
            raise RuntimeError("the runtime was stopped; create a new one")
        self._started = True
        if any(self._forks(pool) for pool in self._pools.values()):
            # It imports for most of a second: begun now, it is ready by the first invocation.
            self._spawn_task(self._forker())
        if self._idle_timeout is not None:
            self._schedule_idle_sweep()

    async def prewarm(self, names: list[str], timeout: float = INIT_TIMEOUT) -> dict[str, float | None]:
        """Start one worker for each named function that has none, and wait until they are ready.

        Like provisioned concurrency on AWS: their init runs now, so the first invocation of
        each is warm (and reported without an init). Waits at most ``timeout`` seconds.

        Returns:
            Each function's init in ms, None for those that were not ready in time or failed.
        """
        workers = []
        for name in names:
            pool = self._pools.get(name)
            if pool is None:
                raise ResourceNotFoundException(f"Function not found: {name}")
            if pool.workers or self._stopped:
                continue
            worker = _Worker(pool)
            worker.prewarmed = True
            pool.workers.add(worker)
            workers.append(worker)
            self._spawn_task(self._launch(worker))
        ready: dict[str, float | None] = {w.pool.name: None for w in workers}
        if workers:
            waits = [asyncio.ensure_future(w.ready.wait()) for w in workers]
            await asyncio.wait(waits, timeout=timeout)
            for wait in waits:
                wait.cancel()
        for worker in workers:
            ready[worker.pool.name] = worker.init_ms
            if worker.init_ms is not None:
                self._log.info("%s: pre-warmed (init %.1f ms)", worker.pool.name, worker.init_ms,
                               extra={"function": worker.pool.name, "init_ms": round(worker.init_ms, 3)})
        return ready

    async def invoke(
        self, name: str, event: Any, *, timeout: float | None = None, report: bool = True
    ) -> InvocationResult:
        """Invoke a function synchronously (``RequestResponse``) and return the outcome.

        A warm worker serves the invocation if one is idle; otherwise a new worker starts if
        the function is below its concurrency limit, else the invocation waits for a worker.

        Args:
            name: The function's logical id.
            event: The event, JSON-serialisable; ``bytes`` are taken as JSON already encoded.
            timeout: Seconds the handler may run, instead of the function's ``Timeout``. Like
                AWS's, the clock starts when a worker takes the invocation: waiting for a
                worker and the cold start are not counted.
            report: Log the invocation's line at INFO. A caller that logs the outcome in a
                line of its own (the gateway, once per message) turns it off; cold starts and
                errors are logged at INFO whatever it says.

        Returns:
            The result. Handler exceptions, init errors, timeouts and crashed workers are
            reported in ``error`` with AWS's ``errorType``, not raised.

        Raises:
            ResourceNotFoundException: No function by that name.
            RequestTooLargeException: The event is over Lambda's 6 MB payload limit.
            TypeError: The event is not JSON-serialisable.
            RuntimeError: The runtime is not started, or stopped.
        """
        pool, inv = self._enqueue(name, event, timeout, report)
        try:
            return await inv.future
        except asyncio.CancelledError:
            # The caller gave up: a queued invocation is dropped; a running one finishes (or
            # times out) in its worker and its result is discarded.
            with contextlib.suppress(ValueError):
                pool.pending.remove(inv)
            raise

    def submit(
        self, name: str, event: Any, *, timeout: float | None = None, report: bool = True
    ) -> asyncio.Future[InvocationResult]:
        """:meth:`invoke` for a caller that never takes back an invocation it made.

        Returns the invocation's future rather than a coroutine, so a caller awaiting it needs
        no task of its own: the gateway makes one invocation per message. The same errors are
        raised at once.
        """
        return self._enqueue(name, event, timeout, report)[1].future

    def _enqueue(
        self, name: str, event: Any, timeout: float | None, report: bool
    ) -> tuple[_Pool, _Invocation]:
        pool = self._pools.get(name)
        if pool is None:
            raise ResourceNotFoundException(f"Function not found: {name}")
        if not self._started or self._stopped:
            raise RuntimeError("the runtime is not running")
        body = event if isinstance(event, bytes) else json.dumps(event, separators=(",", ":")).encode()
        if len(body) > MAX_PAYLOAD:
            raise RequestTooLargeException(
                f"{len(body)} byte payload is too large for the RequestResponse invocation type "
                f"(limit {MAX_PAYLOAD} bytes)"
            )
        future: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        inv = _Invocation(body, pool.fn.timeout if timeout is None else timeout, future, report)
        if pool.watch is not None:
            self._reload_if_changed(pool)
        self._submit(pool, inv)
        return pool, inv

    async def stop(self) -> None:
        """Stop every worker and close the Runtime API. Safe to call more than once.

        Queued invocations fail at once; running ones fail as their worker exits. Workers get
        SIGTERM, then SIGKILL after a short grace period.
        """
        if self._stopped:
            return
        self._stopped = True
        for pool in self._pools.values():
            while pool.pending:
                inv = pool.pending.popleft()
                self._complete(
                    pool,
                    inv,
                    error={
                        "errorMessage": f"RequestId: {inv.request_id} Error: the local runtime stopped "
                        "before the invocation ran",
                        "errorType": "ServiceException",
                    },
                )
        workers = [w for pool in self._pools.values() for w in pool.workers]
        for worker in workers:
            worker.signal(signal.SIGTERM)
        await self._wait_reaped(workers, STOP_GRACE)
        for worker in workers:
            if not worker.reaped.done():
                worker.signal(signal.SIGKILL)
        await self._wait_reaped(workers, 5.0)
        if self._idle_sweep is not None:
            self._idle_sweep.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        for worker in workers:
            self._close_endpoint(worker)
        if self._fork_server is not None:
            await self._fork_server.close()
        if self._lifeline is not None:
            self._lifeline.cut()

    # -- hot reload -------------------------------------------------------------------------

    def _reload_if_changed(self, pool: _Pool) -> None:
        assert pool.watch is not None
        version = pool.watch.current()
        if version == pool.code_version:
            return
        pool.code_version = version
        if not pool.workers:
            return  # nothing loaded yet: the next cold start reads the new code anyway
        self._log.info("reloaded %s (code changed)", pool.name, extra={"function": pool.name})
        # Idle workers go now; busy and booting ones when they next ask for work (_next), so
        # no invocation in flight is lost.
        for worker in list(pool.idle):
            self._kill(worker)

    def _is_stale(self, worker: _Worker) -> bool:
        return worker.code_version != worker.pool.code_version

    # -- dispatch ---------------------------------------------------------------------------

    def _submit(self, pool: _Pool, inv: _Invocation) -> None:
        while pool.idle:
            # The most recently idle worker first: it is the warmest, and the others can age.
            worker = pool.idle.pop()
            waiter = worker.waiter
            if waiter is None or waiter.done():
                continue
            self._dispatch(worker, inv)
            worker.waiter = None
            waiter.set_result(self._invocation_response(pool, inv))
            return
        pool.pending.append(inv)
        self._scale(pool)

    def _scale(self, pool: _Pool) -> None:
        # A cold start for each queued invocation that no booting or finishing worker will
        # take, up to the function's concurrency limit; beyond it invocations wait.
        while not self._stopped and len(pool.pending) > pool.arriving and len(pool.workers) < pool.limit:
            worker = _Worker(pool)
            pool.workers.add(worker)
            self._spawn_task(self._launch(worker))

    def _dispatch(self, worker: _Worker, inv: _Invocation) -> None:
        worker.set_state(_State.BUSY)
        worker.current = inv
        worker.last_request_id = inv.request_id
        inv.cold_start = worker.served == 0 and not worker.prewarmed
        inv.init_ms = worker.init_ms if inv.cold_start else None
        inv.module_init_ms = worker.module_init_ms if inv.cold_start else None
        worker.served += 1
        inv.started = time.monotonic()
        inv.deadline_ms = int(time.time() * 1000 + inv.timeout * 1000)
        inv.timer = asyncio.get_running_loop().call_later(inv.timeout, self._on_timeout, worker, inv)

    def _complete(
        self, pool: _Pool, inv: _Invocation, *, payload: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        if inv.timer is not None:
            inv.timer.cancel()
        duration = (time.monotonic() - inv.started) * 1000 if inv.started else 0.0
        if not inv.future.done():
            inv.future.set_result(
                InvocationResult(
                    request_id=inv.request_id,
                    payload=payload,
                    error=error,
                    duration_ms=round(duration, 3),
                    cold_start=inv.cold_start,
                    init_ms=inv.init_ms,
                    module_init_ms=inv.module_init_ms,
                )
            )
        level = logging.INFO if inv.report or inv.cold_start or error is not None else logging.DEBUG
        if not self._log.isEnabledFor(level):
            return
        # Like the REPORT line Lambda writes: what ran, how long, and a cold start's init cost,
        # with the part of it that was the function module's own import when the worker said.
        start = "warm"
        if inv.cold_start:
            start = "cold"
            if inv.init_ms is not None:
                module = "" if inv.module_init_ms is None else f"; module {inv.module_init_ms:.1f} ms"
                start = f"cold (init {inv.init_ms:.1f} ms{module})"
        self._log.log(
            level,
            "%s %s %.2f ms %s %s",
            pool.name,
            inv.request_id,
            duration,
            start,
            "ok" if error is None else f"error {error.get('errorType', '')}".rstrip(),
            extra={
                "function": pool.name,
                "request_id": inv.request_id,
                "duration_ms": round(duration, 3),
                "cold_start": inv.cold_start,
                "init_ms": None if inv.init_ms is None else round(inv.init_ms, 3),
                "module_init_ms": None if inv.module_init_ms is None else round(inv.module_init_ms, 3),
                "ok": error is None,
                "error_type": None if error is None else error.get("errorType"),
            },
        )

    def _on_timeout(self, worker: _Worker, inv: _Invocation) -> None:
        if worker.current is not inv:
            return
        worker.current = None
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self._complete(
            worker.pool,
            inv,
            error={
                "errorMessage": f"{stamp} {inv.request_id} Task timed out after {inv.timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            },
        )
        # AWS discards the execution environment of a timed-out invocation.
        self._kill(worker)

    def _schedule_idle_sweep(self) -> None:
        assert self._idle_timeout is not None
        # A sweep every quarter of the timeout: a worker goes at most 25% past it.
        interval = min(max(self._idle_timeout / 4, 0.05), 30.0)
        self._idle_sweep = asyncio.get_running_loop().call_later(interval, self._sweep_idle)

    def _sweep_idle(self) -> None:
        """Stop workers idle longer than ``idle_timeout`` (scale-in, as Lambda reclaims them)."""
        assert self._idle_timeout is not None
        if self._stopped:
            return
        now = time.monotonic()
        for pool in self._pools.values():
            for worker in [w for w in pool.idle if now - w.idle_since >= self._idle_timeout]:
                self._log.info("%s: worker %s stopped after %.0f s idle", pool.name, worker.pid,
                               now - worker.idle_since, extra={"function": pool.name, "worker_pid": worker.pid})
                self._kill(worker)
        self._schedule_idle_sweep()

    def _on_init_timeout(self, worker: _Worker) -> None:
        if worker.init_ms is None and worker.state is not _State.DEAD:
            worker.init_timed_out = True
            self._kill(worker)

    def _kill(self, worker: _Worker) -> None:
        self._retire(worker)
        worker.killed = True
        worker.signal(signal.SIGKILL)

    def _retire(self, worker: _Worker) -> None:
        """Take a worker out of service; it still counts against the limit until reaped."""
        worker.set_state(_State.DEAD)
        if worker.init_timer is not None:
            worker.init_timer.cancel()
        with contextlib.suppress(ValueError):
            worker.pool.idle.remove(worker)
        if worker.waiter is not None and not worker.waiter.done():
            worker.waiter.set_exception(_gone())

    # -- worker lifecycle -------------------------------------------------------------------

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _launch(self, worker: _Worker) -> None:
        pool = worker.pool
        loop = asyncio.get_running_loop()
        sock: socket.socket | None = None
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((self._host, 0))
            worker.port = sock.getsockname()[1]
            self._by_port[worker.port] = worker
            # Room above Lambda's 6 MB limit, so an oversized response is read and reported
            # as AWS reports it rather than refused by the server.
            worker.server = await loop.create_server(
                lambda: ServerProtocol(self._route, max_body=2 * MAX_PAYLOAD), sock=sock
            )
            env = dict(pool.env)
            env["AWS_LAMBDA_RUNTIME_API"] = f"{self._host}:{worker.port}"
            env.setdefault("AWS_LAMBDA_LOG_STREAM_NAME", _log_stream_name())
            server = await self._forker() if self._forks(pool) else None
            if server is not None:
                await self._fork(server, worker, env)
            else:
                await self._spawn(worker, env)
        except Exception as exc:  # a missing interpreter, a bad code dir, no free port...
            self._log.error("%s: could not start a worker: %s", pool.name, exc)
            self._retire(worker)
            await self._release(worker)
            if sock is not None:
                sock.close()
            self._fail_init(worker, "Runtime.Unknown", f"could not start the runtime: {exc}")
            self._scale(pool)
            return
        self._log.debug("%s: worker %s %s (pid %s)", pool.name, worker.id,
                        "forked" if worker.forked else "started", worker.pid)
        if self._stopped or worker.state is _State.DEAD:
            worker.signal(signal.SIGKILL)
        else:
            worker.init_timer = loop.call_later(INIT_TIMEOUT, self._on_init_timeout, worker)

    async def _spawn(self, worker: _Worker, env: dict[str, str]) -> None:
        """Start the worker as a process of its own that imports everything itself."""
        pool = worker.pool
        lifeline: tuple[str, ...] = ()
        if os.name == "posix":  # descriptors cannot be passed elsewhere
            if self._lifeline is None:
                self._lifeline = Lifeline()
            lifeline = (str(self._lifeline.child_fd),)
        # A Node worker reads its handler from _HANDLER, as Lambda's Node bootstrap does.
        command = (pool.node.command(lifeline) if pool.node is not None
                   else [self._python, "-c", _BOOTSTRAP, pool.fn.handler, *lifeline])
        await asyncio.get_running_loop().subprocess_exec(
                lambda: _WorkerProtocol(self, worker),
                *command,
                pass_fds=tuple(map(int, lifeline)),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=pool.fn.code_dir,
                env=env,
                # Its own process group: Ctrl-C in our terminal does not reach it, and
                # killing the group also ends processes the handler started.
                start_new_session=True,
            )

    async def _fork(self, server: ForkServer, worker: _Worker, env: dict[str, str]) -> None:
        """Fork the worker from the fork server; its output comes back on a pipe of ours."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        try:
            await loop.connect_read_pipe(lambda: _ForkedOutput(worker), os.fdopen(read_fd, "rb", buffering=0))
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        worker.forked = True
        try:
            worker.pid = await server.fork(
                worker.pool.fn.handler, str(Path(worker.pool.fn.code_dir).resolve()), env, write_fd,
                lambda code: self._exited(worker, code),
            )
        except BaseException:
            if worker.transport is not None:
                worker.transport.close()
            raise
        finally:
            os.close(write_fd)  # the worker holds its own copy: its exit closes the pipe

    def _exited(self, worker: _Worker, returncode: int | None) -> None:
        worker.returncode = returncode
        self._spawn_task(self._reap(worker))

    def _forks(self, pool: _Pool) -> bool:
        """Whether this function's workers are forked (see ``worker_start``)."""
        if self._worker_start == "spawn" or not FORK_AVAILABLE or pool.node is not None:
            return False
        if os.path.realpath(self._python) != os.path.realpath(sys.executable):
            return False  # the fork server runs our interpreter, with our libraries
        preloaded = forkserver.PRELOAD + forkserver.POWERTOOLS_PRELOAD
        return not forkserver.vendors_preloaded(str(pool.fn.code_dir), preloaded)

    async def _forker(self) -> ForkServer | None:
        """The running fork server, started (again) if need be; None if it cannot start."""
        server = self._fork_server
        if server is not None and server.running:
            return server
        if self._fork_starting is None or self._fork_starting.done():
            self._fork_starting = asyncio.get_running_loop().create_task(self._start_fork_server())
        return await asyncio.shield(self._fork_starting)

    async def _start_fork_server(self) -> ForkServer | None:
        preload = self._preload
        if preload is None:
            preload = _scan([pool.fn.code_dir for pool in self._pools.values() if self._forks(pool)])
        # Imports with the same path as a spawned worker; the rest of our environment stays here.
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env["PYTHONPATH"] = os.pathsep.join(self._library_path())
        server = ForkServer(self._python, preload, self._log, env)
        try:
            await server.start()
        except (OSError, ForkServerGone) as exc:
            self._log.error("the fork server could not start (%s): workers start as processes of their own", exc)
            return None
        if self._stopped:
            await server.close()
            return None
        self._fork_servers_started += 1
        if self._fork_servers_started > 1:
            self._log.warning("fork server restarted (pid %s)", server.pid)
        self._fork_server = server
        return server

    async def _reap(self, worker: _Worker) -> None:
        """Account for a worker whose process exited."""
        pool = worker.pool
        code = worker.returncode
        self._retire(worker)
        worker.signal(signal.SIGKILL)  # whatever the handler started dies with the environment
        # Let its last lines (often the traceback that explains the error) reach the log first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.output_closed.wait(), 1.0)
        if worker.transport is not None:
            worker.transport.close()
        status = _exit_status(code)
        inv, worker.current = worker.current, None
        if inv is not None:
            self._complete(
                pool,
                inv,
                error={
                    "errorMessage": f"RequestId: {inv.request_id} Error: Runtime exited with error: {status}",
                    "errorType": "Runtime.ExitError",
                },
            )
        elif worker.init_ms is None and not self._stopped:
            self._fail_init(worker, "Runtime.ExitError", f"Runtime exited with error: {status}")
        elif not (self._stopped or worker.killed):
            self._log.warning("%s: idle worker %s exited (%s)", pool.name, worker.pid, status)
        await self._release(worker)
        self._scale(pool)

    async def _release(self, worker: _Worker) -> None:
        worker.ready.set()
        worker.pool.workers.discard(worker)
        self._by_port.pop(worker.port, None)
        self._close_endpoint(worker)
        if not worker.reaped.done():
            worker.reaped.set_result(None)

    def _fail_init(self, worker: _Worker, error_type: str, message: str) -> None:
        # The worker was started for a queued invocation and never got to take one: that
        # invocation fails with the init error, as the invocation that met a failed cold
        # start does on AWS.
        pool = worker.pool
        if not pool.pending:
            self._log.warning("%s: worker %s failed to start: %s", pool.name, worker.pid, message)
            return
        inv = pool.pending.popleft()
        inv.cold_start = True
        inv.started = worker.spawned  # its duration is the failed init
        if worker.init_error is not None:
            error = worker.init_error
        elif worker.init_timed_out:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            error = {
                "errorMessage": f"{stamp} {inv.request_id} Task timed out after {INIT_TIMEOUT:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }
        else:
            error = {"errorMessage": f"RequestId: {inv.request_id} Error: {message}", "errorType": error_type}
        self._complete(pool, inv, error=error)

    @staticmethod
    def _close_endpoint(worker: _Worker) -> None:
        server, worker.server = worker.server, None
        if server is not None:
            server.close()

    async def _wait_reaped(self, workers: list[_Worker], timeout: float) -> None:
        waiting = [w.reaped for w in workers if not w.reaped.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout)

    def _environment(
        self, fn: Function, environment: dict[str, str], region: str, node: NodeRuntime | None = None
    ) -> dict[str, str]:
        code_dir = str(Path(fn.code_dir).resolve())
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env.update(
            {
                # What Lambda sets for every function.
                "LAMBDA_TASK_ROOT": code_dir,
                "_HANDLER": fn.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "TZ": ":UTC",
            }
        )
        if node is not None:
            # Lambda's NODE_PATH ends with /var/runtime/node_modules (where the client and the
            # AWS SDK live) and /var/task; here the client's folder plays /var/runtime, so an
            # SDK installed beside the client is found by require() as on Lambda.
            env["NODE_PATH"] = os.pathsep.join([str(node.modules), code_dir])
            env.update(environment)
            return env
        env["PYTHONPATH"] = os.pathsep.join([code_dir, *self._library_path()])
        env.update(environment)
        if self._code_check_interval is not None:
            # Python trusts a cached module whose source has the same size and modification
            # second, so an edit made within a second of the cache write could go unseen.
            # Without writing caches (as on Lambda, whose code folder is read-only) every cold
            # start compiles the function's own modules afresh.
            env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        return env

    def _library_path(self) -> list[str]:
        # The function's code first, as /var/task comes first on Lambda; then what our own
        # interpreter can import (site-packages, the project's editable install), so packages
        # the template's functions need but do not vendor still import. Not sys.path[0], the
        # directory we were started from, which is no install location. Only for our own
        # interpreter: another Python version cannot load these compiled extensions.
        if os.path.realpath(self._python) != os.path.realpath(sys.executable):
            return []
        stdlib = {os.path.realpath(sysconfig.get_path(name)) for name in ("stdlib", "platstdlib")}
        entries = []
        for entry in sys.path[1:]:
            if not entry or not os.path.isdir(entry):
                continue
            real = os.path.realpath(entry)
            in_stdlib = any(os.path.commonpath([real, lib]) == lib for lib in stdlib)
            if not in_stdlib or os.path.basename(real) in ("site-packages", "dist-packages"):
                entries.append(entry)
        return entries

    # -- Runtime API ------------------------------------------------------------------------

    def _route(self, request: Request) -> Response | asyncio.Future[Response]:
        """Answer one Runtime API request (see :mod:`wsstack.http11`)."""
        path = request.path
        if not path.startswith(_API):
            raise HttpError(404, "404: Not Found")
        path = path[len(_API):]
        if path == "/invocation/next":
            if request.method != "GET":
                raise HttpError(405, "405: Method Not Allowed")
            return self._next(request)
        if request.method != "POST":
            raise HttpError(405 if path.startswith(("/invocation/", "/init/")) else 404)
        if path == "/init/error":
            return self._init_error(request)
        head, _, outcome = path.rpartition("/")
        prefix = "/invocation/"
        if head.startswith(prefix) and "/" not in head[len(prefix):] and len(head) > len(prefix):
            request_id = head[len(prefix):]
            if outcome == "response":
                return self._response(request, request_id)
            if outcome == "error":
                return self._error(request, request_id)
        raise HttpError(404, "404: Not Found")

    def _worker_of(self, request: Request) -> _Worker:
        worker = self._by_port.get(request.port)
        if worker is None or worker.state is _State.DEAD:
            raise _gone()
        return worker

    def _next(self, request: Request) -> Response | asyncio.Future[Response]:
        """``GET /runtime/invocation/next``: hand the worker the next invocation, waiting for one."""
        worker = self._worker_of(request)
        pool = worker.pool
        if worker.init_ms is None:
            worker.init_ms = (time.monotonic() - worker.spawned) * 1000
            worker.ready.set()
            if worker.init_timer is not None:
                worker.init_timer.cancel()
            self._log.debug("%s: worker %s ready in %.1f ms", pool.name, worker.pid, worker.init_ms)
        if worker.current is not None:
            # The runtime asked for more work without answering; Lambda fails that invocation.
            inv, worker.current = worker.current, None
            self._complete(
                pool,
                inv,
                error={
                    "errorMessage": f"RequestId: {inv.request_id} Error: the runtime did not answer",
                    "errorType": "Runtime.NoResponse",
                },
            )
        if self._is_stale(worker):
            # It loaded code that has changed since: it ends here, having finished whatever
            # it was running, and a fresh worker takes the queue.
            self._kill(worker)
            self._scale(pool)
            raise _gone()
        if pool.pending:
            inv = pool.pending.popleft()
            self._dispatch(worker, inv)
            return self._invocation_response(pool, inv)
        # A long poll: _submit resolves the waiter with the next invocation's response. If
        # the connection drops first, the server cancels it and _submit passes this worker by.
        worker.set_state(_State.IDLE)
        worker.idle_since = time.monotonic()
        waiter = worker.waiter = asyncio.get_running_loop().create_future()
        pool.idle.append(worker)
        return waiter

    @staticmethod
    def _invocation_response(pool: _Pool, inv: _Invocation) -> Response:
        return Response(
            200,
            inv.body,
            {
                # Exactly this, with no charset: otherwise awslambdaric hands the handler bytes.
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": pool.arn,
                "Lambda-Runtime-Trace-Id": _trace_id(),
            },
        )

    def _claim(self, request: Request, request_id: str) -> tuple[_Worker, _Invocation]:
        worker = self._worker_of(request)
        inv = worker.current
        if inv is None or inv.request_id != request_id:
            raise HttpError(
                400,
                json.dumps({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}),
                content_type="application/json",
            )
        return worker, inv

    def _answered(self, worker: _Worker, inv: _Invocation) -> bool:
        # The invocation may have timed out, or been failed, since the worker took it.
        if worker.current is not inv:
            return False
        worker.current = None
        worker.set_state(_State.FINISHING)
        return True

    def _response(self, request: Request, request_id: str) -> Response:
        """``POST /runtime/invocation/{id}/response``: the handler's return value."""
        worker, inv = self._claim(request, request_id)
        body = request.body
        if self._answered(worker, inv):
            if len(body) > MAX_PAYLOAD:
                self._complete(
                    worker.pool,
                    inv,
                    error={
                        "errorMessage": "Response payload size exceeded maximum allowed payload size "
                        f"({MAX_PAYLOAD} bytes).",
                        "errorType": "Function.ResponseSizeTooLarge",
                    },
                )
            else:
                self._complete(worker.pool, inv, payload=_decode(body))
        return _accepted()

    def _error(self, request: Request, request_id: str) -> Response:
        """``POST /runtime/invocation/{id}/error``: the handler raised; pass the report through."""
        worker, inv = self._claim(request, request_id)
        if self._answered(worker, inv):
            self._complete(worker.pool, inv, error=_error_body(request))
        return _accepted()

    def _init_error(self, request: Request) -> Response:
        """``POST /runtime/init/error``: the handler could not be loaded; the worker exits next."""
        worker = self._worker_of(request)
        worker.init_error = _error_body(request)
        return _accepted()


def _gone() -> HttpError:
    return HttpError(410, "this execution environment is shut down")


def _accepted() -> Response:
    return Response(202, b'{"status": "OK"}', {"Content-Type": "application/json; charset=utf-8"})


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body  # the handler returned bytes, which Lambda passes on as they are


def _error_body(request: Request) -> dict[str, Any]:
    body = request.body
    try:
        error = json.loads(body)
    except ValueError:
        error = None
    if isinstance(error, dict):
        return error
    return {
        "errorMessage": body.decode("utf-8", "replace"),
        "errorType": request.headers.get("lambda-runtime-function-error-type", "Unhandled"),
    }


def _exit_status(code: int | None) -> str:
    # Worded as Lambda words it (Go's os.ProcessState): "exit status 3", "signal: killed".
    if code is None or code >= 0:
        return f"exit status {code}"
    try:
        name = signal.strsignal(-code) or f"signal {-code}"
    except ValueError:
        name = f"signal {-code}"
    return f"signal: {name.split(':')[0].lower()}"


def _log_stream_name() -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Parent={os.urandom(8).hex()};Sampled=0"
