"""The soak, short: under injected faults no acknowledged message is lost or stored twice.

It runs ``benchmarks/soak.py`` as ``make soak`` does, on a stack of its own, and reads the
figures it writes; the printed report is the assertion message, so a failure shows them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(bool(os.environ.get("CHAT_E2E_STACK_NAME")), reason="kills the local stack's workers")
@pytest.mark.timeout(300)
def test_no_message_lost_or_stored_twice_while_workers_die_and_sockets_drop(tmp_path: Path) -> None:
    # GIVEN 4 users with 2 devices each, sending for 20 s while a fault comes every 0.5 s
    figures_file = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--seconds", "20", "--fault-every", "0.5", "--seed", "20",
         "--json", str(figures_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    report = f"{run.stdout}\n{run.stderr[-3000:]}"
    assert run.returncode in (0, 1), f"the soak could not run:\n{report}"
    figures = json.loads(figures_file.read_text(encoding="utf-8"))

    # THEN faults of every kind were injected, the workers' deaths among them
    assert figures["faults"]["worker_kill"] > 0, report
    assert figures["faults"]["socket_abort"] > 0, report
    assert figures["faults"]["connection_delete"] > 0, report
    assert figures["faults"]["send_retry"] > 0, report
    # AND every message was acknowledged, reached its recipient (live or by a sync), and was stored once
    assert figures["created"] > 0, report
    assert figures["unacknowledged_after_drain"] == 0, report
    assert figures["lost"] == 0, report
    assert figures["stored_twice"] == 0, report
    # AND the stack still answers
    assert figures["stack_answers"] and figures["stack_alive"], report
    assert run.returncode == 0, report
