"""Hot reload through the whole stack: edit a handler or a domain file, the next message runs it.

Each test runs a copy of the SAM fixture app, edits it, and keeps the same WebSocket open
across the edit: the gateway and the connection are untouched, only workers change.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

WAIT = 10.0


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def echo(ws: ClientConnection) -> Any:
    await ws.send(json.dumps({"action": "echo"}))
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_editing_a_domain_file_and_a_handler_takes_effect_without_dropping_the_socket(
    run_stack, fixture_copy, log_lines
):
    template = fixture_copy("sam_websocket_api")
    code = template.parent / "src"

    with run_stack(template, code_check_interval=0) as stack:

        async def scenario() -> list[Any]:
            async with connect(stack.url("NotesApi") + "?token=user-hot", open_timeout=WAIT) as ws:
                before = await echo(ws)
                edit(code / "notes" / "version.py", 'VERSION = "v1"', 'VERSION = "v2-domain"')
                after_domain = await echo(ws)
                edit(code / "app.py", '"version": VERSION,', '"version": VERSION + "+handler",')
                after_handler = await echo(ws)
                return [before, after_domain, after_handler]

        before, after_domain, after_handler = run(scenario())

    assert [r["version"] for r in (before, after_domain, after_handler)] == ["v1", "v2-domain", "v2-domain+handler"]
    # A fresh worker each time: the old one, holding the old modules, was retired.
    assert len({r["pid"] for r in (before, after_domain, after_handler)}) == 3
    assert log_lines.messages("wsstack.runtime").count("reloaded EchoFunction (code changed)") == 2


def test_without_hot_reload_the_loaded_code_keeps_running(run_stack, fixture_copy, log_lines):
    template = fixture_copy("sam_websocket_api")

    with run_stack(template, code_check_interval=None) as stack:

        async def scenario() -> list[Any]:
            async with connect(stack.url("NotesApi") + "?token=user-cold", open_timeout=WAIT) as ws:
                before = await echo(ws)
                edit(template.parent / "src" / "notes" / "version.py", 'VERSION = "v1"', 'VERSION = "v9"')
                return [before, await echo(ws)]

        before, after = run(scenario())

    # As a deployed function: the warm worker keeps the code it loaded.
    assert before["version"] == after["version"] == "v1"
    assert before["pid"] == after["pid"]
    assert not any(m.startswith("reloaded") for m in log_lines.messages("wsstack.runtime"))
