"""Command line: ``wsstack up`` runs the template locally, ``wsstack invoke`` runs one function.

Both work without Docker and without an AWS account.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsstack import lifeline
from wsstack.emulator import PortInUse
from wsstack.hosts import ALL_INTERFACES, DEFAULT_HOST, host_argument, is_loopback, outward_address
from wsstack.logs import FORMATS, configure_logging
from wsstack.node import DEFAULT_NODE_RIC, NODE_RIC_ENV
from wsstack.template import TemplateError

if TYPE_CHECKING:  # imported where used: `wsstack --help` stays quick
    from wsstack.stack import StackInfo

__all__ = ["main"]

log = logging.getLogger("wsstack")

READY_LINE = "wsstack: ready"


def _parameters(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TemplateError(f"--parameter {pair!r} must look like Name=Value.")
        values[key] = value
    return values


#: Tasks kept alive until they finish (the event loop holds only weak references).
_background: set[asyncio.Task[None]] = set()
#: The users file ``up`` reads when none is named.
USERS_FILE = "users.local.json"


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).exists() else None


#: Seconds an idle worker is kept by default: Lambda keeps an unused environment for minutes.
IDLE_WORKER_TIMEOUT = 300.0


def _idle_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 (keep idle workers) or more")
    return value


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _add_node_ric_option(group: Any) -> None:
    group.add_argument(
        "--node-ric", metavar="DIR",
        help=f"folder holding node_modules/aws-lambda-ric, the Lambda runtime interface client that runs "
        f"nodejs20.x and nodejs22.x functions under the node on PATH; install it once with "
        f"`npm install --prefix {DEFAULT_NODE_RIC} aws-lambda-ric` (default: ${NODE_RIC_ENV}, else {DEFAULT_NODE_RIC})",
    )


def _add_template_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("template")
    group.add_argument("-t", "--template", default="template.yaml", metavar="FILE",
                       help="SAM/CloudFormation template (default: %(default)s)")
    group.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="template parameter value; repeatable (e.g. --parameter StageName=prod)",
    )
    group.add_argument(
        "-n", "--env-vars", default="env.local.json", metavar="FILE",
        help="environment overrides in sam local's --env-vars format: {\"Parameters\": {...}, "
        "\"<Function>\": {...}}; only variables the template declares are overridden "
        "(default: %(default)s, if present)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="least level logged (default: %(default)s)")
    output.add_argument("--log-format", default="text", choices=FORMATS,
                        help="log lines on stderr: text for people, json for machines, one object per line "
                        "(default: %(default)s)")


#: Gateway limit flags: (flag, Limits field, type, help). Defaults are AWS's.
_LIMIT_FLAGS = (
    ("--idle-timeout", "idle_timeout", float,
     "seconds without a client message before the connection closes with 1001 (AWS: 600)"),
    ("--max-connection-duration", "max_connection_duration", float,
     "seconds after which any connection closes with 1001 (AWS: 7200)"),
    ("--integration-timeout", "integration_timeout", float,
     "seconds the gateway waits for a Lambda before answering 'Endpoint request timed out' (AWS: 29)"),
    ("--max-frame-bytes", "max_frame_bytes", int,
     "largest WebSocket frame; larger ones close the connection with 1009 (AWS: 32768)"),
    ("--max-message-bytes", "max_message_bytes", int,
     "largest message and @connections POST; larger messages close with 1009, larger posts get 413 "
     "(AWS: 131072)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsstack",
        description="Run a SAM template's WebSocket APIs, Lambda functions, DynamoDB tables and "
        "Cognito user pools on this machine: no Docker, no AWS account.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up", help="start the local stack and serve until Ctrl-C",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Start the template's WebSocket APIs (one gateway per stage), its Lambda functions and\n"
            "its tables and user pools, and serve until Ctrl-C. Run it in your project's folder (the\n"
            "one with template.yaml, as `sam init` makes it), with your functions' requirements\n"
            "installed in the same Python environment as wsstack. The URLs are printed and written to\n"
            "the state file (.local/stack.json). Edited handler code takes effect on the next\n"
            "invocation. Tables keep their items, and pools, app clients and users their ids, from\n"
            "one run to the next (--no-persist keeps nothing). Ctrl-C, SIGTERM or a closed terminal\n"
            "stop it in order; if it is killed, what it started ends too.\n"
            "To send one sample event through one function: wsstack invoke --help."
        ),
        epilog=(
            "examples:\n"
            "  wsstack up\n"
            "  wsstack up --fresh                                    # forget the saved data\n"
            "  wsstack up --site public                              # and serve public/ on port 3000\n"
            "  wsstack up --port 0 --tls-port 0 --emulator-port 0 --state-file .local/b.json   # a second stack\n"
            "  wsstack up -t infra/template.yaml --port 0 --log-format json\n"
            "  wsstack up --idle-timeout 5 --integration-timeout 2   # see AWS's limits in seconds"
        ),
    )
    _add_template_options(up)
    ports = up.add_argument_group("ports (0 = a free port)")
    ports.add_argument("--port", type=int, default=3001, metavar="PORT",
                       help="WebSocket and @connections port of the first API stage (default: %(default)s)")
    ports.add_argument("--tls-port", type=int, default=3443, metavar="PORT",
                       help="the same over TLS: the domainName in events, so https://{domainName}/{stage} "
                       "reaches the stage (default: %(default)s)")
    ports.add_argument("--emulator-port", type=int, default=5005, metavar="PORT",
                       help="AWS emulator (moto) port (default: %(default)s)")
    ports.add_argument("--site-port", type=int, default=3000, metavar="PORT",
                       help="HTTP port of the --site folder (default: %(default)s)")
    up.add_argument("--site", metavar="DIR",
                    help="serve this folder of static files (a browser app) over HTTP on --site-port, with the "
                    "running stack's URLs and ids as JSON at /wsstack.json (what the state file holds)")
    up.add_argument("--host", type=host_argument, default=DEFAULT_HOST, metavar="ADDRESS",
                    help="address every port of the stack listens on: 127.0.0.1 for this machine only, 0.0.0.0 for "
                    "every interface (in a container, or for a phone on the same network); URLs still name "
                    "127.0.0.1 (default: %(default)s)")
    up.add_argument("--state-file", default=".local/stack.json", metavar="FILE",
                    help="where to write the stack's URLs and ids as JSON while it runs; one running stack "
                    "per state file (default: %(default)s)")
    data = up.add_argument_group(
        "data (tables, user pools, app clients and users are kept across restarts by default)")
    keep = data.add_mutually_exclusive_group()
    keep.add_argument("--data-dir", metavar="DIR",
                      help="folder the data is kept in; one running stack per folder (default: data/<name> "
                      "beside the state file, e.g. .local/data/stack for .local/stack.json)")
    keep.add_argument("--no-persist", dest="persist", action="store_false",
                      help="keep the data in memory only: start empty and write nothing (for tests)")
    data.add_argument("--fresh", action="store_true",
                      help="discard the saved data and start empty, as on a first run")
    up.add_argument("--users", metavar="FILE",
                    help="users to create in the template's user pools before the stack is ready: "
                    '{"<PoolLogicalId>": [{"username": ..., "password": ..., "attributes": {...}}]} '
                    f"(default: {USERS_FILE}, if present, for the pools the template has)")
    up.add_argument("--seed", metavar="COMMAND",
                    help="command to run once the stack is ready, e.g. to send demo data through it "
                    "(it gets WSSTACK_STATE_FILE); the stack keeps serving whatever it exits with")
    limits = up.add_argument_group("gateway limits (AWS defaults; lower them to see the behaviour in tests)")
    for flag, _field, kind, text in _LIMIT_FLAGS:
        limits.add_argument(flag, type=_positive(kind), metavar="SECONDS" if kind is float else "BYTES", help=text)
    functions = up.add_argument_group("functions")
    functions.add_argument("--function-concurrency", type=_positive(int), default=None, metavar="N",
                           help="most workers per function without ReservedConcurrentExecutions "
                           "(default: two per CPU)")
    functions.add_argument("--no-hot-reload", dest="hot_reload", action="store_false",
                           help="keep running the code loaded at start, as a deployed function does")
    functions.add_argument("--worker-start", choices=("auto", "fork", "spawn"), default="auto",
                           help="how a cold start starts a worker: fork it from a process that has "
                           "imported awslambdaric, boto3 and Powertools once (milliseconds), spawn a new "
                           "interpreter (most of a second), or auto: fork where the platform can "
                           "(default: %(default)s); Node functions' workers are always spawned")
    functions.add_argument("--idle-worker-timeout", type=_idle_timeout, default=IDLE_WORKER_TIMEOUT,
                           metavar="SECONDS",
                           help="stop a worker idle this long, as Lambda reclaims unused environments; "
                           "the next invocation is a cold start again; 0 keeps them (default: %(default)s)")
    functions.add_argument("--prewarm", action="store_true",
                           help="start a worker for each function of $connect (and its authorizer) and "
                           "$default before the stack is ready, and for every other route right after, so "
                           "that the first connection and messages meet no cold start")
    _add_node_ric_option(functions)

    invoke = sub.add_parser(
        "invoke", help="run one function of the template on an event (like sam local invoke)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run one function of the template once, as `sam local invoke` does but without Docker:\n"
            "its tables and user pools exist and its environment is the template's. The result (or\n"
            "AWS's error object) is printed on stdout as JSON; logs go to stderr.\n"
            "\n"
            "When `wsstack up` is running (its state file names a stack that answers), the function\n"
            "uses that stack's tables, user pools and gateway, so what it stores and posts shows\n"
            "there; otherwise an emulator and a gateway are started for this run, with empty tables.\n"
            "An event whose requestContext.domainName is not a local gateway (one recorded on AWS,\n"
            "like those in events/) is pointed at the local one: its domainName, stage and apiId\n"
            "are replaced, and a log line says so, so that @connections calls reach it."
        ),
        epilog=(
            "exit status:\n"
            "  0  the function returned a result (a statusCode below 500 if it has one)\n"
            "  1  it failed: an unhandled exception, a timeout, a crash, or a statusCode of 500 or more\n"
            "  2  the command, the event file or the template is wrong\n"
            "\n"
            "examples:\n"
            "  wsstack invoke OnMessageFunction -e events/message.json\n"
            "  wsstack invoke my-app-on-message -e events/message.json --fresh\n"
            "  wsstack invoke PingFunction -e - --env-vars env.local.json < events/ping.json"
        ),
    )
    invoke.add_argument("function", help="the function's logical id (OnMessageFunction) or its FunctionName "
                        "(my-app-on-message)")
    invoke.add_argument("-e", "--event", metavar="FILE", help="event JSON file ('-' for stdin; default: {})")
    stack = invoke.add_argument_group("stack")
    stack.add_argument("--state-file", default=".local/stack.json", metavar="FILE",
                       help="state file of a running `wsstack up`, whose stack the function uses if it answers "
                       "(default: %(default)s)")
    stack.add_argument("--fresh", action="store_true",
                       help="start an emulator and a gateway for this run, with empty tables, even when a stack "
                       "is running")
    _add_node_ric_option(stack)
    _add_template_options(invoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        if args.command == "up":
            return _run(_up(args))
        return asyncio.run(_invoke(args))
    except (TemplateError, PortInUse) as exc:
        print(f"wsstack: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(main: Coroutine[Any, Any, int]) -> int:
    # uvloop's event loop and transports cut the stack's share of a round trip by about a
    # third (the bench's echo, before and after: p50 1.49 -> 1.22 ms, of which the stack's
    # share 0.57 -> 0.37 ms). Where it is not installed (it does not build on Windows),
    # asyncio's loop serves the same.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _limits(args: argparse.Namespace) -> Any:
    from wsstack.gateway.core import Limits

    given = {name: getattr(args, name) for _flag, name, _kind, _text in _LIMIT_FLAGS
             if getattr(args, name) is not None}
    return Limits(**given) if given else None


def _banner(info: Any, app: Any, state: Path, ready_ms: float, data: str = "") -> str:
    lines = []
    for api in info.apis:
        label = f"{api.api} ({api.stage})" if len(info.apis) > 1 else "WebSocket URL"
        lines.append(f"  {label:<18}{api.websocket_url}{_connect_hint(app, api.api)}")
        if len(info.apis) > 1:
            lines.append(f"  {'':<18}{api.connections_url}")
        lines += _api_key_lines(app, api.api, api.stage)
    if len(info.apis) == 1:
        lines.append(f"  {'@connections URL':<18}{info.connections_url}")
        lines.append(f"  {'Over TLS':<18}{info.apis[0].secure_websocket_url}  (domainName; CA {info.ca_bundle})")
    lines.append(f"  {'AWS endpoint':<18}{info.aws_endpoint}  (region {info.region})")
    if info.user_pool_id:
        lines.append(f"  {'User pool':<18}{info.user_pool_id}")
    if info.user_pool_client_id:
        lines.append(f"  {'App client':<18}{info.user_pool_client_id}")
    for index, (username, sub) in enumerate(info.users.items()):
        lines.append(f"  {'' if index else 'Users':<18}{username:<8} sub {sub}")
    if info.host != DEFAULT_HOST:
        lines.append(f"  {'Listening on':<18}{_listening(info)}")
    if not is_loopback(str(info.host)):
        lines.append(f"  {'':<18}reachable from the network: @connections takes SigV4-signed requests only "
                     "(signatures are not verified)")
    if data:
        lines.append(data)
    if info.site_url:
        lines.append(f"  {'Site':<18}{info.site_url}  (this stack's facts: {info.site_url}wsstack.json)")
    lines.append(f"  {'State file':<18}{state}")
    lines.append(f"  {'Ready in':<18}{ready_ms:.0f} ms")
    return "\n" + "\n".join(lines) + "\n"


def _api_key_lines(app: Any, api_id: str, stage: str) -> list[str]:
    # The keys a $connect with ApiKeyRequired accepts: a generated one is known only from here
    # (and the gateway's log line), as on AWS only the console or get-api-key shows it.
    api = app.apis.get(api_id)
    keys = [key for key in (api.api_keys.get(stage, ()) if api else ()) if key.enabled]
    return [
        f"  {'' if index else 'API keys':<18}{key.value}  (x-api-key; {key.logical_id}"
        f"{', generated' if key.generated else ''})"
        for index, key in enumerate(keys)
    ]


def _listening(info: Any) -> str:
    # Bound to every interface, the URLs above name 127.0.0.1: say what another device uses.
    if info.host != ALL_INTERFACES:
        return str(info.host)
    outward = outward_address()
    if outward is None or not info.websocket_url:
        return f"{ALL_INTERFACES} (every interface)"
    scheme, _, rest = info.websocket_url.partition("://")
    port_and_path = rest.split(":", 1)[1]
    return f"{ALL_INTERFACES} (every interface; from another device: {scheme}://{outward}:{port_and_path})"


def _connect_hint(app: Any, api_id: str) -> str:
    # Show the query parameters the $connect authorizer requires, e.g. "?token=<token>".
    route = app.apis[api_id].routes.get("$connect")
    sources = route.authorizer.identity_sources if route and route.authorizer else ()
    prefix = "route.request.querystring."
    names = [s[len(prefix):] for s in sources if s.startswith(prefix)]
    return "?" + "&".join(f"{name}=<{name}>" for name in names) if names else ""


async def _up(args: argparse.Namespace) -> int:
    from wsstack.emulator import DataError, InUse
    from wsstack.stack import CODE_CHECK_INTERVAL, LocalStack

    state = Path(args.state_file)
    if args.site is not None and not Path(args.site).is_dir():
        print(f"wsstack: --site {args.site} is not a folder; name the folder of static files to serve.",
              file=sys.stderr)
        return 2
    try:
        # Held while this stack runs: a second `up` naming the same file is refused, and
        # never writes or removes it.
        owner = _claim_state_file(state)
    except (InUse, DataError) as exc:
        print(f"wsstack: {exc}", file=sys.stderr)
        return 2
    stack = LocalStack(
        Path(args.template), parameters=_parameters(args.parameter), port=args.port,
        tls_port=args.tls_port, emulator_port=args.emulator_port, host=args.host,
        env_vars=_existing(args.env_vars), users=Path(args.users) if args.users else _existing(USERS_FILE),
        users_strict=bool(args.users), limits=_limits(args), function_concurrency=args.function_concurrency,
        code_check_interval=CODE_CHECK_INTERVAL if args.hot_reload else None,
        data_dir=_data_dir(args), fresh=args.fresh, worker_start=args.worker_start,
        idle_worker_timeout=args.idle_worker_timeout or None, prewarm=args.prewarm,
        site=Path(args.site) if args.site is not None else None, site_port=args.site_port,
        node_ric=args.node_ric,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A closed terminal (SIGHUP) stops it as Ctrl-C does, data saved.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    _watch_lifeline(loop, stop)
    started = time.perf_counter()
    wrote_state = False
    try:
        try:
            info = await stack.start()
        except (InUse, DataError) as exc:
            print(f"wsstack: {exc}", file=sys.stderr)
            return 2
        _write_state(state, info.to_json() + "\n")
        wrote_state = True
        print(_banner(info, stack.app, state, (time.perf_counter() - started) * 1000, _data_line(stack.emulator)),
              flush=True)
        # Ready means serving, with tables and users in place; the seed command then uses the
        # stack as any client would, while it serves.
        print(f"{READY_LINE} (Ctrl-C to stop)", flush=True)
        seed = await _start_seed(args.seed, state) if args.seed else None
        await stop.wait()
        log.info("stopping")
        if seed is not None and seed.returncode is None:
            seed.terminate()
            await seed.wait()
    finally:
        # The emulator writes its data last, once the gateways and functions have stopped.
        await stack.stop()
        if wrote_state:
            with contextlib.suppress(FileNotFoundError):
                state.unlink()
        owner.release()
    return 0


def _watch_lifeline(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop as on Ctrl-C once the process that started us ends, if it gave us a lifeline.

    The pytest plugin does (see :mod:`wsstack.lifeline`): a test run killed with SIGKILL, or
    whose terminal closed, leaves no stack behind.
    """
    text = os.environ.pop(lifeline.ENV_VAR, None)  # not for what the stack starts
    if not text:
        return
    try:
        fd = int(text)
        os.set_inheritable(fd, False)
    except (ValueError, OSError):
        log.warning("%s=%s is not an open descriptor; ignored", lifeline.ENV_VAR, text)
        return

    def readable() -> None:
        try:
            data = os.read(fd, 512)
        except OSError:
            data = b""
        if data:
            return  # nothing is written to a lifeline; ignore it if something is
        loop.remove_reader(fd)
        os.close(fd)
        if not stop.is_set():
            log.info("the process that started this stack ended: stopping")
        stop.set()

    loop.add_reader(fd, readable)


def _data_dir(args: argparse.Namespace) -> Path | None:
    """Where ``up`` keeps its data: ``--data-dir``, else ``data/<state file name>`` beside the
    state file (so each state file, hence each stack, has its own); None with ``--no-persist``."""
    if not args.persist:
        return None
    if args.data_dir:
        return Path(args.data_dir)
    state = Path(args.state_file)
    return state.parent / "data" / state.stem


def _claim_state_file(state: Path) -> Any:
    from wsstack.emulator import claim

    return claim(
        state.with_name(state.name + ".lock"),
        busy=f"The state file {state} belongs to a running stack{{holder}}; to run another beside it, pass "
        "--state-file with another file (and --port 0 --tls-port 0 --emulator-port 0).",
        unusable=f"The state file {state} cannot be written ({{reason}}); pass --state-file with a path "
        "you can write.",
    )


def _write_state(state: Path, text: str) -> None:
    # Written whole under another name, then renamed: a client reading it never sees half.
    state.parent.mkdir(parents=True, exist_ok=True)
    temporary = state.with_name(f".{state.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, state)


def _data_line(emulator: Any) -> str:
    if emulator.data_dir is None:
        return f"  {'Data':<18}in memory only (--no-persist): nothing is kept"
    outcome = emulator.data.get("data")
    if outcome == "restored":
        found = emulator.data
        said = f"restored {found['tables']} tables, {found['items']} items, {found['users']} users"
    elif outcome == "set_aside":
        said = "started empty: the saved data could not be read and was set aside"
    else:
        said = "started empty" if emulator.fresh else "nothing saved yet"
    return f"  {'Data':<18}{emulator.data_dir}  ({said}; kept across restarts, --fresh to start empty)"


async def _start_seed(command: str, state: Path) -> asyncio.subprocess.Process | None:
    env = {**os.environ, "WSSTACK_STATE_FILE": str(state)}
    try:
        # Ended with the stack even if it is killed (on Linux; see wsstack.lifeline).
        proc = await asyncio.create_subprocess_exec(*lifeline.wrapped(shlex.split(command)), env=env)
    except OSError as exc:
        log.warning("seed command %r could not start: %s; the stack keeps running", command, exc)
        return None

    async def report() -> None:
        code = await proc.wait()
        if code > 0:
            log.warning("seed command exited with status %s; the stack keeps running", code)

    _background.add(task := asyncio.get_running_loop().create_task(report()))
    task.add_done_callback(_background.discard)
    return proc


def _read_event(name: str | None) -> Any:
    if not name:
        return {}
    source = "The event on stdin" if name == "-" else f"Event file {name}"
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        return json.loads(text)
    except FileNotFoundError:
        raise TemplateError(f"{source} does not exist; pass a JSON file such as events/connect.json.") from None
    except ValueError as exc:
        raise TemplateError(f"{source} is not valid JSON: {exc}.") from None


async def _running_stack(state_file: Path) -> StackInfo | None:
    """The stack ``wsstack up`` runs, as its state file describes it, if it answers; else None."""
    from wsstack.stack import read_state_file, stack_answers

    info = read_state_file(state_file)
    if info is None:
        log.info("no running stack in %s: starting an emulator and a gateway for this run", state_file)
        return None
    if not await stack_answers(info):
        log.info("the stack in %s does not answer (stopped?): starting an emulator and a gateway for this run",
                 state_file)
        return None
    log.info("using the running stack of %s (AWS endpoint %s)", state_file, info.aws_endpoint)
    return info


def _status_code(payload: Any) -> int | None:
    status = payload.get("statusCode") if isinstance(payload, dict) else None
    if isinstance(status, str) and status.isdigit():
        return int(status)
    return status if isinstance(status, int) and not isinstance(status, bool) else None


async def _invoke(args: argparse.Namespace) -> int:
    from wsstack.stack import LocalStack, StackMismatch, local_event

    event = _read_event(args.event)
    options: dict[str, Any] = dict(
        parameters=_parameters(args.parameter), env_vars=_existing(args.env_vars), code_check_interval=None,
        require_api=False,
        # A stack of its own has the users `up` would create, so the sample events' users exist.
        users=_existing(USERS_FILE), users_strict=False, node_ric=args.node_ric,
    )
    running = None if args.fresh else await _running_stack(Path(args.state_file))
    stack = LocalStack(Path(args.template), running=running, **options)
    try:
        try:
            await stack.start()
        except StackMismatch as exc:
            log.info("the running stack of %s is not used: %s; starting one for this run", args.state_file, exc)
            stack = LocalStack(Path(args.template), **options)
            await stack.start()
        fn = stack.find_function(args.function)
        if fn is None:
            assert stack.app is not None
            known = ", ".join(
                other.logical_id if other.name == other.logical_id else f"{other.logical_id} ({other.name})"
                for other in sorted(stack.app.functions.values(), key=lambda other: other.logical_id)
            )
            raise TemplateError(f"No function {args.function!r} in {args.template}; known: {known}.")
        stage = stack.stage_of(fn.logical_id)
        if stage is not None and stack.info is not None:
            event, note = local_event(event, stage, stack.info.apis)
            if note:
                log.info("%s", note)
        result = await stack.runtime.invoke(fn.logical_id, event)
    finally:
        await stack.stop()
    print(json.dumps(result.payload if result.ok else result.error, indent=2))
    if not result.ok:
        return 1
    status = _status_code(result.payload)
    if status is not None and status >= 500:
        log.error("%s answered statusCode %s: a failure (exit status 1)", fn.logical_id, status)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
