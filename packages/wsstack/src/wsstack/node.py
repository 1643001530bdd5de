"""Node.js functions: where ``node`` and the Lambda runtime interface client for Node are.

Lambda runs ``nodejs20.x`` and ``nodejs22.x`` functions under ``aws-lambda-ric``, the
runtime interface client AWS publishes for Node (its images start it from
``/var/runtime/index.mjs``). A Node worker here runs that same client, against the same
local Runtime API as Python workers, started as Lambda's own bootstrap starts it: import its
``run`` and call it with ``LAMBDA_TASK_ROOT`` and ``_HANDLER``.

The client is never installed by the stack on its own: its install builds curl and
aws-lambda-cpp from source (measured: 70 to 85 seconds on 2 shared cores, with autoconf,
automake, libtool, cmake and a C++ compiler present), so it is a step the developer takes
once, into a folder the stack is told about (``--node-ric``, ``WSSTACK_NODE_RIC``, or
``.local/node-ric`` in the working folder by default)::

    npm install --prefix .local/node-ric aws-lambda-ric

Without ``node`` on ``PATH``, or without the client in that folder, start-up stops with one
sentence saying what to install (:class:`NodeUnavailable`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_NODE_RIC", "NODE_RIC_ENV", "NODE_RUNTIMES", "NodeRuntime", "NodeUnavailable", "find_node_runtime",
    "is_node", "node_ric_dir",
]

#: The Node runtimes a template may name.
NODE_RUNTIMES = ("nodejs20.x", "nodejs22.x")
#: The environment variable naming the folder that holds ``node_modules/aws-lambda-ric``.
NODE_RIC_ENV = "WSSTACK_NODE_RIC"
#: That folder when neither the option nor the variable names one (relative to the working folder).
DEFAULT_NODE_RIC = Path(".local") / "node-ric"
RIC_PACKAGE = "aws-lambda-ric"

#: Where the stack's egress proxy answers the template's API hosts over TLS with no CONNECT
#: (``host:port``), and those hosts, comma-separated: a Node worker's TLS connections to one of
#: them on port 443 go there instead, keeping the host as the name the certificate is checked
#: against. Node ignores ``HTTPS_PROXY``, through which Python workers reach the same hosts.
NODE_EGRESS_TLS = "WSSTACK_EGRESS_TLS"
NODE_EGRESS_HOSTS = "WSSTACK_EGRESS_HOSTS"

#: What a worker runs, given the client's entry module and, optionally, the stack's lifeline:
#: what Lambda's ``/var/runtime/index.mjs`` does, plus what the local stack needs (ES modules
#: resolving ``NODE_PATH``, the lifeline, the template's API hosts); the file says how.
BOOTSTRAP = Path(__file__).with_name("node_bootstrap.mjs")


class NodeUnavailable(LookupError):
    """``node`` or the runtime interface client is missing; the message says what to install."""


def is_node(runtime: str) -> bool:
    """Whether a function's ``Runtime`` is one of the Node runtimes."""
    return runtime.startswith("nodejs")


def node_ric_dir(given: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The folder that holds (or is to hold) ``node_modules/aws-lambda-ric``.

    ``given`` (the ``--node-ric`` option) first, then ``WSSTACK_NODE_RIC``, then
    ``.local/node-ric``.
    """
    if given:
        return Path(given)
    return Path(environ.get(NODE_RIC_ENV) or DEFAULT_NODE_RIC)


@dataclass(frozen=True)
class NodeRuntime:
    """A ``node`` executable and the runtime interface client it runs."""

    node: str
    #: The client's package folder (``.../node_modules/aws-lambda-ric``).
    ric: Path

    @property
    def modules(self) -> Path:
        """The ``node_modules`` folder holding the client: Lambda's ``/var/runtime/node_modules``."""
        return self.ric.parent

    def command(self, lifeline: tuple[str, ...] = ()) -> list[str]:
        """The worker's command line; it reads the handler from ``_HANDLER``.

        ``lifeline`` is empty, or the descriptor of the stack's lifeline as a string.
        """
        return [self.node, str(BOOTSTRAP), str(self.ric / "dist" / "index.mjs"), *lifeline]


def find_node_runtime(ric_dir: str | Path | None = None, path: str | None = None) -> NodeRuntime:
    """Find ``node`` on ``path`` (``PATH`` by default) and the client under ``ric_dir``.

    Raises:
        NodeUnavailable: either is missing; one sentence naming what to install.
    """
    node = shutil.which("node", path=path)
    if node is None:
        raise NodeUnavailable(
            "needs Node.js, and `node` is not on PATH; install Node.js 20 or later (and npm), "
            "or use a python3.x runtime"
        )
    folder = node_ric_dir(ric_dir).resolve()
    ric = folder / "node_modules" / RIC_PACKAGE
    # The native part is built by the package's install scripts; without it the client cannot start.
    if not (ric / "dist" / "index.mjs").is_file() or not (ric / "dist" / "rapid-client.node").is_file():
        raise NodeUnavailable(
            f"needs the Lambda runtime interface client for Node, which is not installed in {folder}; "
            f"install it with `npm install --prefix {folder} {RIC_PACKAGE}` (its build needs autoconf, "
            f"automake, libtool, cmake and a C++ compiler), or name a folder holding "
            f"node_modules/{RIC_PACKAGE} with --node-ric or {NODE_RIC_ENV}"
        )
    return NodeRuntime(node=node, ric=ric)
