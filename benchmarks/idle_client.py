"""Hold many idle WebSocket connections open, in a process of its own.

The client side of 10,000 connections needs 10,000 file descriptors and its own memory for
each; keeping it out of the benchmark's process keeps both away from what is measured.

Protocol with the parent, one JSON object per line on stdout:

* ``{"event": "opened", "opened": N, "failed": K, "seconds": S, "errors": [...]}`` once every
  connection was attempted; the connections then stay open, sending nothing;
* on a line (or EOF) on stdin, every connection is closed with a normal close handshake and
  ``{"event": "closed", "closed": N, "seconds": S}`` follows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import sys
import time

from websockets.asyncio.client import ClientConnection, connect

__all__ = ["main"]


def _raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def _open_all(url: str, count: int, concurrency: int, timeout: float) -> tuple[list[ClientConnection], list[str]]:
    # A bounded number of handshakes in flight: the server's listen backlog is finite, and a
    # dropped SYN costs a 1 s retransmit that would be measured as handshake time.
    gate = asyncio.Semaphore(concurrency)
    opened: list[ClientConnection] = []
    errors: collections.Counter[str] = collections.Counter()

    async def one() -> None:
        async with gate:
            try:
                socket = await connect(url, compression=None, ping_interval=None, open_timeout=30, close_timeout=5)
            except Exception as exc:  # refused, reset, timed out: counted, not fatal
                errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                return
            opened.append(socket)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    _done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        errors["not attempted within the time limit"] += len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    return opened, [f"{n} x {text}" for text, n in errors.most_common(5)]


async def _close_all(sockets: list[ClientConnection], concurrency: int, timeout: float) -> int:
    gate = asyncio.Semaphore(concurrency)

    async def one(socket: ClientConnection) -> bool:
        async with gate:
            try:
                await socket.close()
            except Exception:  # a close that fails still frees the socket
                return False
            return True

    tasks = [asyncio.create_task(one(s)) for s in sockets]
    done, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    return sum(1 for task in done if not task.cancelled() and task.result())


async def _run(args: argparse.Namespace) -> None:
    limit = _raise_fd_limit(args.count + 256)
    if limit < args.count + 64:
        _say(event="error", message=f"file descriptor limit {limit} is too low for {args.count} connections")
        return
    started = time.perf_counter()
    sockets, errors = await _open_all(args.url, args.count, args.concurrency, args.open_timeout)
    _say(event="opened", opened=len(sockets), failed=args.count - len(sockets),
         seconds=round(time.perf_counter() - started, 3), errors=errors)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.perf_counter()
    closed = await _close_all(sockets, args.concurrency, args.close_timeout)
    _say(event="closed", closed=closed, seconds=round(time.perf_counter() - started, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes (and closes) in flight")
    parser.add_argument("--open-timeout", type=float, default=120.0, help="seconds to open them all")
    parser.add_argument("--close-timeout", type=float, default=60.0, help="seconds to close them all")
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
