"""The floor for round trips: a bare ``websockets`` echo server, nothing else.

Run as its own process (as the stack is), it prints ``{"port": N}`` once listening and
serves until its stdin closes, so it cannot outlive the benchmark that started it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, serve

__all__ = ["main"]


async def _echo(socket: ServerConnection) -> None:
    async for message in socket:
        await socket.send(message)


async def _serve() -> None:
    # The gateway's own settings where they change the cost of a frame: no compression,
    # no keepalive pings.
    async with serve(_echo, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
