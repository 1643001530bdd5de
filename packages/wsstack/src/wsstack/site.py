"""A folder of static files served beside the stack (``wsstack up --site DIR``).

A browser app built on the template (a chat page, an admin page) needs two things from a local
stack: its own files, over HTTP, and the facts a deployed app reads from stack outputs (the
WebSocket URL, the user pool and client ids, the AWS endpoint). This server gives both: every
file under the folder, and ``GET /wsstack.json``, the running stack's :class:`StackInfo` as the
state file has it. It knows nothing about the app it serves.

It answers ``GET`` and ``HEAD`` only, never lists a folder (a folder's ``index.html`` or 404),
and never serves a file outside the folder: the path is resolved, symbolic links included,
and must stay under the folder's own resolved path.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from wsstack.hosts import DEFAULT_HOST, is_loopback, url_host
from wsstack.http11 import Request, Response, ServerProtocol

__all__ = ["INFO_PATH", "SiteServer"]

log = logging.getLogger("wsstack.site")

#: Where the site's pages read the running stack's facts (the state file's JSON).
INFO_PATH = "/wsstack.json"

#: Types by suffix, fixed here rather than read from the machine's mime.types: a browser runs
#: an ES module only if it comes as JavaScript, and some systems map ``.js`` otherwise.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}

#: Requests carry no body worth reading: a GET with more than this is refused.
_MAX_BODY = 64 * 1024


def content_type(path: Path) -> str:
    """The ``Content-Type`` a file is served with."""
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class SiteServer:
    """Serve ``root`` and :data:`INFO_PATH` on ``host``:``port`` (0 = a free port).

    Args:
        root: the folder to serve.
        info: returns the JSON text answered at :data:`INFO_PATH`, asked on every request
            (so it is always the stack's current state).
        host: the address to listen on.
        port: the TCP port, 0 for a free one.
    """

    def __init__(self, root: Path, info: Callable[[], str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root).resolve()
        self._info = info
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Transport] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/`` (the loopback address also when bound to every interface)."""
        return f"http://{url_host(self.host)}:{self.port}/"

    async def start(self) -> None:
        """Listen; :attr:`port` is then the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ServerProtocol(self.answer, max_body=_MAX_BODY, open_transports=self._open),
            self.host, self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close the browsers' keep-alive connections."""
        if self._server is None:
            return
        self._server.close()
        for transport in list(self._open):
            transport.close()
        await self._server.wait_closed()
        self._server = None

    def answer(self, request: Request) -> Response:
        """The response to one request (public so that it can be tested without a socket)."""
        if request.method not in ("GET", "HEAD"):
            return _text(405, "Only GET and HEAD are served here.", {"Allow": "GET, HEAD"})
        if request.path == INFO_PATH:
            info = self._as_seen_from(request.headers.get("host", ""), self._info())
            response = Response(200, info.encode(), {"Content-Type": "application/json", "Cache-Control": "no-store"})
        else:
            response = self._file(request.path)
        if request.method == "HEAD":
            response.body = b""
        return response

    def _as_seen_from(self, host_header: str, info: str) -> str:
        """The stack's facts with its loopback URLs naming the host the browser reached.

        On ``--host 0.0.0.0`` the stack's URLs still name 127.0.0.1, which is right for this
        machine only: a phone that loaded the page from ``http://192.168.1.5:3000/`` must
        connect to that address too. (Its TLS URLs then fail the certificate, which names
        127.0.0.1: such a page uses the plain ``ws://`` and ``http://`` ones.)
        """
        if is_loopback(self.host):
            return info
        hostname = urlsplit(f"//{host_header}").hostname if host_header else None
        if not hostname or is_loopback(hostname):
            return info
        if ":" in hostname:
            hostname = f"[{hostname}]"
        return info.replace(f"://{DEFAULT_HOST}:", f"://{hostname}:")

    def _file(self, raw_path: str) -> Response:
        path = self._resolve(raw_path)
        if path is None:
            return _text(404, "Not found.")
        try:
            body = path.read_bytes()
        except OSError:
            return _text(404, "Not found.")
        # no-cache: the browser asks again (cheaply) so an edited file shows on reload.
        return Response(200, body, {"Content-Type": content_type(path), "Cache-Control": "no-cache",
                                    "X-Content-Type-Options": "nosniff"})

    def _resolve(self, raw_path: str) -> Path | None:
        """The file a request path names under the root, or None (missing, or outside it)."""
        text = unquote(raw_path.split("?", 1)[0])
        if "\x00" in text or "\\" in text:
            return None
        path = (self.root / text.lstrip("/")).resolve()
        # Resolved first, compared second: "..", "%2e%2e" and symbolic links all end here.
        if path != self.root and not path.is_relative_to(self.root):
            log.info("refused %s: outside the site folder", raw_path)
            return None
        if path.is_dir():
            path = path / "index.html"
        return path if path.is_file() else None


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})
