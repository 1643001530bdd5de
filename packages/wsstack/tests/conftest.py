"""What the Node.js tests need: ``node`` and the Lambda runtime interface client for Node."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wsstack.node import DEFAULT_NODE_RIC, NODE_RIC_ENV, NodeRuntime, NodeUnavailable, find_node_runtime

#: The repository's root, where `make test` installs the client (its `node-ric` target).
_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def node_runtime() -> NodeRuntime:
    """``node`` and the client, from ``WSSTACK_NODE_RIC`` or a ``.local/node-ric`` folder in
    the working folder or the repository; the test is skipped, saying what is missing, without."""
    folder = os.environ.get(NODE_RIC_ENV)
    if not folder:
        candidates = [Path.cwd() / DEFAULT_NODE_RIC, _ROOT / DEFAULT_NODE_RIC]
        folder = str(next((c for c in candidates if c.is_dir()), candidates[0]))
    try:
        return find_node_runtime(folder)
    except NodeUnavailable as exc:
        pytest.skip(f"Node.js functions cannot run here: a nodejs runtime {exc}")
