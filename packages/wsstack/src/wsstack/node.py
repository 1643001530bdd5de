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
from urllib.parse import quote

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

#: What a worker runs (``node --input-type=module -e``), given the client's entry module as
#: its first argument: what Lambda's ``/var/runtime/index.mjs`` does. A second argument is the
#: stack's lifeline (see :mod:`wsstack.lifeline`): at its end of file the worker and what its
#: handler started end, even mid-invocation, as a Python worker does. Without it a worker whose
#: stack was killed would retry its dead Runtime API forever, using a third of a CPU.
#: Where the stack's egress proxy answers the template's API hosts over TLS with no CONNECT
#: (``host:port``), and those hosts, comma-separated: a Node worker's TLS connections to one of
#: them on port 443 go there instead, keeping the host as the name the certificate is checked
#: against. Node ignores ``HTTPS_PROXY``, through which Python workers reach the same hosts.
NODE_EGRESS_TLS = "WSSTACK_EGRESS_TLS"
NODE_EGRESS_HOSTS = "WSSTACK_EGRESS_HOSTS"

#: A module resolution hook (``module.register``): an ES module's bare import that its own
#: folders do not have is looked for in ``NODE_PATH``'s folders, as Lambda's Node runtimes
#: resolve the AWS SDK they ship (``import ... from "@aws-sdk/client-dynamodb"`` in an ``.mjs``
#: handler). Node itself applies ``NODE_PATH`` to ``require`` only.
RESOLVE_HOOK = (
    'import { join } from "node:path";\n'
    'import { pathToFileURL } from "node:url";\n'
    "let folders = [];\n"
    "export function initialize(data) { folders = data.folders; }\n"
    "export async function resolve(specifier, context, next) {\n"
    "  try {\n"
    "    return await next(specifier, context);\n"
    "  } catch (error) {\n"
    '    if (error?.code !== "ERR_MODULE_NOT_FOUND" || /^[./]|^[a-z][a-z0-9+.-]*:/i.test(specifier)) throw error;\n'
    "    for (const folder of folders) {\n"
    "      try {\n"
    '        return await next(specifier, { ...context, parentURL: pathToFileURL(join(folder, "index.mjs")).href });\n'
    "      } catch {}\n"
    "    }\n"
    "    throw error;\n"
    "  }\n"
    "}\n"
)

BOOTSTRAP = (
    'import { pathToFileURL } from "node:url";\n'
    'import * as nodeModule from "node:module";\n'
    "nodeModule.register?.(" + repr("data:text/javascript," + quote(RESOLVE_HOOK)) + ", {\n"
    '  data: { folders: (process.env.NODE_PATH || "").split(":").filter(Boolean) },\n'
    "});\n"
    "if (process.argv[2]) {\n"
    '  const { Socket } = await import("node:net");\n'
    "  const line = new Socket({ fd: Number(process.argv[2]), readable: true, writable: false });\n"
    "  const end = () => {\n"
    '    try { process.kill(-process.pid, "SIGKILL"); } finally { process.kill(process.pid, "SIGKILL"); }\n'
    "  };\n"
    '  line.on("end", end).on("error", end).resume().unref();\n'
    "}\n"
    # The template's API hosts, however the function's code names them (see NODE_EGRESS_TLS);
    # https.Agent and fetch both open their connections with tls.connect(options).
    "if (process.env.WSSTACK_EGRESS_TLS) {\n"
    '  const tls = (await import("node:tls")).default;\n'
    "  const home = process.env.WSSTACK_EGRESS_TLS;\n"
    '  const at = home.lastIndexOf(":");\n'
    '  const hosts = new Set((process.env.WSSTACK_EGRESS_HOSTS || "").split(","));\n'
    "  const connect = tls.connect;\n"
    "  tls.connect = function (options, ...rest) {\n"
    '    const named = options !== null && typeof options === "object";\n'
    '    const host = named ? String(options.host || "").toLowerCase() : "";\n'
    "    if (hosts.has(host) && Number(options.port || 443) === 443) {\n"
    "      options = { ...options, host: home.slice(0, at), port: Number(home.slice(at + 1)),\n"
    "                  servername: options.servername || host };\n"
    "    }\n"
    "    return connect.call(this, options, ...rest);\n"
    "  };\n"
    "}\n"
    "const { run } = await import(pathToFileURL(process.argv[1]).href);\n"
    "await run(process.env.LAMBDA_TASK_ROOT, process.env._HANDLER);\n"
)


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
        return [self.node, "--input-type=module", "-e", BOOTSTRAP, str(self.ric / "dist" / "index.mjs"), *lifeline]


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
