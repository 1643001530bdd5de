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
from pathlib import Path
from typing import Any

from wsstack.template import TemplateError

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


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).exists() else None


def _add_template_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--template", default="template.yaml", help="SAM template (default: %(default)s)")
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="template parameter value; repeatable (e.g. --parameter NameSuffix=AlexHo)",
    )
    parser.add_argument(
        "-n", "--env-vars", default="env.local.json", metavar="FILE",
        help="environment overrides in sam local's --env-vars format (default: %(default)s, if present)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsstack",
        description="Run a SAM template's WebSocket API, Lambda functions, DynamoDB tables and "
        "Cognito user pools on this machine: no Docker, no AWS account.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the local stack and serve until Ctrl-C")
    _add_template_options(up)
    up.add_argument("--port", type=int, default=3001, help="WebSocket port (0 = free port; default %(default)s)")
    up.add_argument("--management-port", type=int, default=3002,
                    help="@connections API port (0 = free port; default %(default)s)")
    up.add_argument("--emulator-port", type=int, default=5005,
                    help="AWS emulator (moto) port (0 = free port; default %(default)s)")
    up.add_argument("--state-file", default=".local/stack.json",
                    help="where to write the stack's URLs and ids as JSON (default: %(default)s)")
    up.add_argument("--seed", metavar="COMMAND",
                    help="command to run once the stack is ready (it gets WSSTACK_STATE_FILE)")
    up.add_argument("--idle-timeout", type=float, help="seconds before an idle connection closes (AWS: 600)")

    invoke = sub.add_parser("invoke", help="run one function of the template on an event file (like sam local invoke)")
    _add_template_options(invoke)
    invoke.add_argument("function", help="logical id of the function, e.g. SendMessageFunction")
    invoke.add_argument("-e", "--event", help="event JSON file ('-' for stdin; default: {})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S",
    )
    # Quiet the libraries; our own loggers say what matters.
    for noisy in ("botocore", "urllib3", "websockets", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "up":
            return asyncio.run(_up(args))
        return asyncio.run(_invoke(args))
    except TemplateError as exc:
        print(f"wsstack: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _up(args: argparse.Namespace) -> int:
    from wsstack.gateway.core import Limits
    from wsstack.stack import LocalStack

    limits = Limits(idle_timeout=args.idle_timeout) if args.idle_timeout else None
    stack = LocalStack(
        Path(args.template), parameters=_parameters(args.parameter), port=args.port,
        management_port=args.management_port, emulator_port=args.emulator_port,
        env_vars=_existing(args.env_vars), limits=limits,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.perf_counter()
    try:
        info = await stack.start()
        state = Path(args.state_file)
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(info.to_json() + "\n", encoding="utf-8")
        ready_ms = (time.perf_counter() - started) * 1000
        print(
            f"\n  WebSocket URL     {info.websocket_url}?token=<Cognito IdToken>\n"
            f"  @connections URL  {info.connections_url}\n"
            f"  AWS endpoint      {info.aws_endpoint}  (region {info.region})\n"
            f"  User pool         {info.user_pool_id}\n"
            f"  App client        {info.user_pool_client_id}\n"
            f"  State file        {state}\n"
            f"  Ready in          {ready_ms:.0f} ms\n",
            flush=True,
        )
        if args.seed:
            await _run_seed(args.seed, state)
        print(f"{READY_LINE} (Ctrl-C to stop)", flush=True)
        await stop.wait()
        log.info("stopping")
    finally:
        await stack.stop()
        with contextlib.suppress(FileNotFoundError):
            Path(args.state_file).unlink()
    return 0


async def _run_seed(command: str, state: Path) -> None:
    env = {**os.environ, "WSSTACK_STATE_FILE": str(state)}
    proc = await asyncio.create_subprocess_exec(*shlex.split(command), env=env)
    code = await proc.wait()
    if code != 0:
        log.warning("seed command exited with status %s; the stack keeps running", code)


async def _invoke(args: argparse.Namespace) -> int:
    from wsstack.stack import LocalStack

    event: Any = {}
    if args.event == "-":
        event = json.load(sys.stdin)
    elif args.event:
        try:
            event = json.loads(Path(args.event).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TemplateError(f"Event file {args.event} does not exist.") from None
        except ValueError as exc:
            raise TemplateError(f"Event file {args.event} is not valid JSON: {exc}") from None
    stack = LocalStack(Path(args.template), parameters=_parameters(args.parameter),
                       env_vars=_existing(args.env_vars))
    try:
        await stack.start()
        assert stack.app is not None
        if args.function not in stack.app.functions:
            known = ", ".join(sorted(stack.app.functions))
            raise TemplateError(f"No function {args.function!r} in {args.template}; known: {known}.")
        result = await stack.runtime.invoke(args.function, event)
    finally:
        await stack.stop()
    print(json.dumps(result.payload if result.ok else result.error, indent=2))
    log.info("%s %s in %.1f ms (%s)", args.function, "succeeded" if result.ok else "failed",
             result.duration_ms, "cold" if result.cold_start else "warm")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
