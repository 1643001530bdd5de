"""``python -m wsstack.health``: is the stack a state file names up and serving?

The container's health check (``HEALTHCHECK`` in the Dockerfile). ``wsstack up`` writes the
state file once the stack is ready; this asks every server the file names for an HTTP answer,
whatever its status: the AWS emulator, and each API stage's port (WebSocket clients and
``@connections`` share it). Exit status 0 when all answer, 1 otherwise, with one line saying
which did not.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["check", "main"]


def _answers(url: str, timeout: float) -> bool:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def check(state_file: Path, timeout: float = 2.0) -> str | None:
    """None when every server named in ``state_file`` answers; else a sentence saying what is wrong."""
    try:
        state = json.loads(Path(state_file).read_text(encoding="utf-8"))
        urls = {"AWS emulator": state["aws_endpoint"]}
        # GET on the stage's @connections path without an id: an answer (403) proves the port serves.
        urls.update({f"{api['api']} stage {api['stage']}": api["connections_url"] for api in state["apis"]})
    except FileNotFoundError:
        return f"no state file at {state_file}: the stack is starting, or stopped"
    except (ValueError, KeyError, TypeError) as exc:
        return f"{state_file} is not a wsstack state file ({type(exc).__name__}: {exc})"
    silent = [f"{name} at {url}" for name, url in urls.items() if not _answers(url, timeout)]
    return f"no answer from {', '.join(silent)}" if silent else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wsstack.health",
        description="Exit 0 when the stack a state file names answers on every port it lists, 1 otherwise.",
    )
    parser.add_argument("--state-file", default=".local/stack.json", metavar="FILE",
                        help="the file `wsstack up` writes (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                        help="how long each server has to answer (default: %(default)s)")
    args = parser.parse_args(argv)
    problem = check(Path(args.state_file), args.timeout)
    print(f"wsstack: {'healthy' if problem is None else 'unhealthy: ' + problem}")
    return 0 if problem is None else 1


if __name__ == "__main__":
    sys.exit(main())
