"""The emulator's child process: ``python -m wsstack.emulator_server --port N``.

:class:`wsstack.emulator.Emulator` runs this module. It prints one JSON line on stdout,
``{"port": N}`` once the socket is bound (or ``{"error": "..."}`` if it cannot be), serves
moto on 127.0.0.1 (or ``--host``) until its stdin closes or it gets SIGTERM/SIGINT, and prints nothing
else on stdout unless it keeps its data.

With ``--data-dir DIR`` it keeps its data there (see :mod:`wsstack.snapshot`): before it
serves a request it restores the snapshot and prints one more line, ``{"data": "restored",
...}``, ``{"data": "empty"}`` (no snapshot, or ``--fresh`` removed it) or ``{"data":
"set_aside", "path": ..., "reason": ...}`` (a snapshot it could not read, renamed); when it
stops it writes the snapshot once the request in progress is answered, and prints
``{"data": "saved", ...}`` or ``{"data": "not_saved", "reason": ...}`` last.

Start-up time is on the stack's critical path, so only the standard library is imported
here at module level: moto and werkzeug are imported by :func:`serve`, and nothing of the
parent's side (boto3, the template reader, the gateway) is imported at all.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

__all__ = ["PRELOADED_BACKENDS", "SET_SUB_PATH", "WARM_REGION", "main", "serve"]

#: The emulator's backends for the services the stack creates resources in, imported and
#: warmed (see :func:`_warm_up`) ahead of the parent's first request.
PRELOADED_BACKENDS = ("moto.dynamodb", "moto.cognitoidp")

#: The region the warm-up requests are signed for: the stack's default region. moto sets a
#: backend up per account and region, so a stack in another region pays that part itself.
WARM_REGION = "us-east-1"

#: One cheap read per preloaded backend: (module, signing name, X-Amz-Target, content type, body).
_WARM_REQUESTS = (
    ("moto.dynamodb", "dynamodb", "DynamoDB_20120810.ListTables", "application/x-amz-json-1.0", b'{"Limit": 1}'),
    (
        "moto.cognitoidp",
        "cognito-idp",
        "AWSCognitoIdentityProviderService.ListUserPools",
        "application/x-amz-json-1.1",
        b'{"MaxResults": 1}',
    ),
)

#: The access key the parent's clients use (``LOCAL_CREDENTIALS``): moto derives the account
#: from it, so the warm-up sets up the very account the parent's requests land in.
_WARM_ACCESS_KEY = "testing"

#: The stack's own route, not AWS's: a local user gets the ``sub`` its users file names, so
#: that sample events and demo data can name the user (Cognito itself always picks the sub).
#: POST ``{"UserPoolId": ..., "Username": ..., "Sub": ...}``.
SET_SUB_PATH = "/_wsstack/cognito-idp/user-sub"

#: What stops the emulator (a second one while the snapshot is written stays blocked).
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


_WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serve(port: int, data_dir: str | None = None, *, fresh: bool = False, host: str = "127.0.0.1") -> None:
    """Run moto on ``host``:``port`` (0 for a free port) and announce the bound port on stdout.

    Args:
        port: TCP port, 0 for a free one.
        data_dir: folder of the snapshot to restore now and write on exit; None keeps
            everything in memory only.
        fresh: remove the snapshot rather than restore it.
        host: the address to listen on.
    """
    # A signal sent to the process goes to any one of its threads that does not block it, and
    # a Python handler runs only when the main thread next runs Python code: one delivered to
    # a server thread while the main thread waits on stdin was never handled, and the parent
    # waited for a save that never came. So every thread blocks SIGTERM and SIGINT (threads
    # inherit the mask of the thread that starts them, and all of ours start after this) and
    # the main thread takes them with sigwait.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    # Bound here rather than by werkzeug, which reports a port in use on stderr and exits,
    # and before moto's imports, so that a port in use is told at once.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug's own would
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        # Tell the parent why, in the one line it reads, rather than a trace it never sees.
        print(json.dumps({"error": exc.strerror or str(exc)}), flush=True)
        return

    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ: Any, start_response: Any) -> Any:
        # moto rolls a failed transaction back by restoring a copy of each table taken when
        # the transaction began, erasing what other threads wrote meanwhile. DynamoDB never
        # loses a committed write, so requests run one at a time here.
        with lock:
            if environ.get("PATH_INFO") == SET_SUB_PATH:
                return _set_sub(environ, start_response)
            return app(environ, start_response)

    with sock:  # the server serves a duplicate of it
        server = make_server(
            host, port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler, fd=sock.fileno()
        )
    # The warm-up sends stdout to stderr while it runs; the lines for the parent go here.
    out = sys.stdout
    snapshot = None
    if data_dir:
        from wsstack.snapshot import SNAPSHOT_NAME  # the child's own module: standard library only

        snapshot = Path(data_dir) / SNAPSHOT_NAME
    #: The restore thread holds the request lock: no request sees the emulator before it.
    holding = threading.Event()
    #: The snapshot was read (or there was none, or it was set aside): writing one is now safe.
    restored = threading.Event()
    #: The port line is out.
    announced = threading.Event()

    def stop() -> None:
        if snapshot is not None and holding.is_set():
            # Taken once the restore is done and the request in progress is answered; none
            # starts after it, as the process ends holding it: a request is wholly in the
            # snapshot or not at all.
            lock.acquire()
            # Not restored (the restore failed): the snapshot on disk stays as it is.
            if restored.is_set():
                _report(out, _save(snapshot))
        # Leave at once rather than wait for the server's shutdown poll.
        os._exit(0)

    if snapshot is not None:
        threading.Thread(
            target=_restore_then_warm_up,
            args=(one_at_a_time, lock, snapshot, fresh, out, holding, restored, announced),
            daemon=True,
        ).start()
        holding.wait()
    else:
        threading.Thread(target=_warm_up, args=(one_at_a_time,), daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), file=out, flush=True)
    announced.set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=_stop_when_parent_goes, args=(threading.get_ident(),), daemon=True).start()
    # A signal that came before this point (the parent may stop us as soon as it has read the
    # port line) waits, blocked, and is taken here at once.
    signal.sigwait(_STOP_SIGNALS)
    stop()


def _stop_when_parent_goes(main_thread: int) -> None:
    sys.stdin.read()  # returns at EOF: the parent closed the pipe, or died
    signal.pthread_kill(main_thread, signal.SIGTERM)


def _restore_then_warm_up(
    app: _WSGIApp, lock: threading.Lock, snapshot: Path, fresh: bool, out: TextIO,
    holding: threading.Event, restored: threading.Event, announced: threading.Event,
) -> None:
    """Restore the snapshot holding the request lock, then warm the backends up."""
    with lock:
        holding.set()
        report = _restore(snapshot, fresh)
        restored.set()
    # After the port line, which the parent reads first.
    announced.wait()
    _report(out, report)
    _warm_up(app)


def _restore(snapshot: Path, fresh: bool) -> dict[str, Any]:
    from wsstack import snapshot as snapshots

    if fresh:
        snapshot.unlink(missing_ok=True)
        return {"data": "empty"}
    if not snapshot.exists():
        return {"data": "empty"}
    # Timed apart from the restore: the warm-up imports them anyway.
    snapshots.import_backends()
    started = time.perf_counter()
    try:
        counts = snapshots.load(snapshot)
    except FileNotFoundError:
        return {"data": "empty"}
    except Exception as exc:  # Unreadable, or anything else unpickling raised: set aside, start empty
        try:
            aside = snapshots.set_aside(snapshot)
        except OSError as rename_error:
            # Not renamed: it stays, and is replaced by the next save.
            return {"data": "set_aside", "path": "", "reason": f"{exc}; not renamed: {rename_error}"}
        return {"data": "set_aside", "path": str(aside), "reason": str(exc)}
    return {"data": "restored", "bytes": snapshot.stat().st_size,
            "ms": round((time.perf_counter() - started) * 1000, 1), **counts}


def _save(snapshot: Path) -> dict[str, Any]:
    from wsstack import snapshot as snapshots

    started = time.perf_counter()
    try:
        size = snapshots.save(snapshot)
    except Exception as exc:  # told to the parent, which says it in one line
        return {"data": "not_saved", "reason": f"{type(exc).__name__}: {exc}"}
    return {"data": "saved", "bytes": size, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _report(out: TextIO, line: dict[str, Any]) -> None:
    # The parent may be gone (stdin EOF): then nobody reads, and the write fails. (A signal
    # arriving mid-print would make the stop handler's print a reentrant call: RuntimeError.)
    with contextlib.suppress(OSError, ValueError, RuntimeError):
        print(json.dumps(line), file=out, flush=True)


def _warm_up(app: _WSGIApp) -> None:
    """Pay moto's first-request costs of the preloaded backends before the parent's requests.

    moto imports a service's backend on that service's first request, then builds its flask
    app and the backend of the request's account and region: over 100 ms per service, which
    the parent would otherwise wait for on its first table and its first user pool. One cheap
    read each, through the same one-at-a-time app, does it while the parent is still starting.
    Only an optimisation: failures are ignored, and stdout stays the port line alone.
    """
    from werkzeug.test import EnvironBuilder

    with contextlib.redirect_stdout(sys.stderr):
        for module, service, target, content_type, body in _WARM_REQUESTS:
            try:
                # Imported outside the request lock, so a request of the parent's meanwhile
                # waits at most on the import lock, and only if it needs this very module.
                importlib.import_module(module)
                environ = EnvironBuilder(
                    method="POST",
                    path="/",
                    base_url="http://127.0.0.1/",
                    data=body,
                    headers={
                        "Content-Type": content_type,
                        "X-Amz-Target": target,
                        # moto picks the backend from the SigV4 credential scope, and the
                        # account from the access key; it does not check the signature.
                        "Authorization": (
                            f"AWS4-HMAC-SHA256 Credential={_WARM_ACCESS_KEY}/20240101/{WARM_REGION}/"
                            f"{service}/aws4_request, SignedHeaders=host;x-amz-target, Signature=0"
                        ),
                    },
                ).get_environ()
                status = _call(app, environ)
                if not status.startswith("200"):
                    print(f"emulator warm-up of {service} answered {status}", file=sys.stderr)
            except Exception as exc:  # a failed warm-up only loses the head start
                print(f"emulator warm-up of {service} failed: {exc!r}", file=sys.stderr)
    # The imports and the warm-up left garbage and free heap behind; the process lives on.
    from wsstack.memory import release_free_memory  # the child's own module: standard library only

    release_free_memory()


def _set_sub(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Serve :data:`SET_SUB_PATH`: the user's id and ``sub`` attribute become the one given."""
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    def answer(status: str, body: dict[str, str]) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length))
        pool_id, username, sub = request["UserPoolId"], request["Username"], request["Sub"]
    except (ValueError, KeyError, TypeError):
        return answer("400 Bad Request", {"message": "expected a JSON object with UserPoolId, Username and Sub"})
    # The parent's clients sign with the local credentials, which moto maps to its default account.
    pool = cognitoidp_backends[DEFAULT_ACCOUNT_ID][pool_id.split("_", 1)[0]].user_pools.get(pool_id)
    user = pool.users.get(username) if pool is not None else None
    if user is None:
        return answer("404 Not Found", {"message": f"no user {username} in pool {pool_id}"})
    if any(other.id == sub for other in pool.users.values() if other is not user):
        return answer("409 Conflict", {"message": f"another user of pool {pool_id} has sub {sub}"})
    user.id = sub
    user.update_attributes([{"Name": "sub", "Value": sub}])
    return answer("200 OK", {"sub": sub})


def _call(app: _WSGIApp, environ: dict[str, Any]) -> str:
    """Run one WSGI request to completion; return its status line."""
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], object]:
        status[:] = [line]
        return lambda _data: None

    body = app(environ, start_response)
    try:
        for _chunk in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return status[0] if status else ""


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``--port N`` (0 = a free port), ``--host ADDRESS``, ``--data-dir DIR``, ``--fresh``."""
    parser = argparse.ArgumentParser(description="Run the embedded AWS emulator (moto).")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--data-dir", help="keep the data in this folder across restarts (default: memory only)")
    parser.add_argument("--fresh", action="store_true", help="remove the saved data rather than restore it")
    args = parser.parse_args(argv)
    serve(args.port, args.data_dir, fresh=args.fresh, host=args.host)


if __name__ == "__main__":
    main()
