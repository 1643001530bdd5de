#!/usr/bin/env python3
"""What keeping the local stack's data costs: snapshot size, save and restore times, stop time.

Runs ``wsstack up`` on the chat template as ``make up`` does (with the seed), stops it with
Ctrl-C and starts it again, then does the same with ``--messages`` more messages written
straight into the messages table. Prints the figures the stack itself logs ("data saved ...",
"data restored ...") and the time from Ctrl-C to the process's exit, with and without
``--no-persist`` (the stack as it was before it kept anything). Asserts nothing.

    .venv/bin/python benchmarks/persistence.py [--messages 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from stackproc import ROOT, StackProcess

SAVED = re.compile(r"data saved to \S+ \((?P<size>[\d.]+ [KM]B) in (?P<ms>\d+) ms\)")
RESTORED = re.compile(r"data restored from \S+: (?P<what>.+) \((?P<size>[\d.]+ [KM]B) in (?P<ms>\d+) ms\)")


def stop_timed(stack: StackProcess) -> float:
    """Ctrl-C; seconds until the process has exited."""
    assert stack.proc is not None
    started = time.perf_counter()
    stack.proc.send_signal(signal.SIGINT)
    stack.proc.wait(timeout=120)
    elapsed = time.perf_counter() - started
    stack.stop()  # kills by pid anything that outlived it (nothing should)
    return elapsed


def last(pattern: re.Pattern[str], log: Path) -> re.Match[str] | None:
    found = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        found = pattern.search(line) or found
    return found


def start(workdir: Path, *extra: str) -> StackProcess:
    return StackProcess(ROOT / "template.yaml", workdir, extra=["--log-level", "INFO", *extra]).start()


def write_messages(stack: StackProcess, count: int) -> None:
    """``count`` messages in one conversation, shaped as the backend stores them."""
    import boto3

    state = stack.state
    table = str(state["resources"]["MessagesTable"])  # type: ignore[index]
    users = state["users"]
    assert isinstance(users, dict)
    alice, bob = users["alice"], users["bob"]
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=str(state["aws_endpoint"]),
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    conversation = f"dm_{min(alice, bob)}_{max(alice, bob)}"
    items = []
    for n in range(count):
        stamp = f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z"
        items.append({"PutRequest": {"Item": {
            "messageId": {"S": str(uuid.uuid4())}, "conversationId": {"S": conversation},
            "senderId": {"S": alice}, "senderName": {"S": "Alice Demo"}, "recipientId": {"S": bob},
            "content": {"S": f"message number {n}: a line of ordinary chat text"}, "timestamp": {"S": stamp},
            "status": {"S": "delivered"}, "isDeleted": {"BOOL": False},
        }}})
    for offset in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={table: items[offset:offset + 25]})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages added for the second figure")
    parser.add_argument("--runs", type=int, default=3, help="stops timed per variant (median)")
    args = parser.parse_args()
    seed = f"{shlex.quote(sys.executable)} scripts/seed.py"

    with tempfile.TemporaryDirectory(prefix="wsstack-bench-persist-") as tmp:
        workdir = Path(tmp)
        log = workdir / "stack.log"

        in_memory, ready = [], []
        for _ in range(args.runs):
            stack = start(workdir, "--no-persist")
            ready.append(stack.ready_s)
            in_memory.append(stop_timed(stack))
        print(f"Ctrl-C to exit, --no-persist (as before)   median {statistics.median(in_memory) * 1000:.0f} ms "
              f"of {args.runs}; ready in {statistics.median(ready):.2f} s from launch")

        stack = start(workdir, "--seed", seed)
        if stack.wait_for_line("Demo conversation", timeout=60) is None and not any(
                "Demo conversation" in line for line in stack.output):
            print("the seed did not finish", file=sys.stderr)
        kept = [stop_timed(stack)]
        saved = last(SAVED, log)
        for _ in range(args.runs - 1):
            kept.append(stop_timed(start(workdir)))
        print(f"Ctrl-C to exit, demo data kept             median {statistics.median(kept) * 1000:.0f} ms "
              f"of {len(kept)}")
        if saved:
            print(f"demo data: snapshot {saved['size']}, saved in {saved['ms']} ms")
        stack = start(workdir)
        restored = last(RESTORED, log)
        if restored:
            print(f"demo data: restored in {restored['ms']} ms ({restored['what']}); "
                  f"ready in {stack.ready_s:.2f} s from launch")

        write_messages(stack, args.messages)
        big = [stop_timed(stack)]
        saved = last(SAVED, log)
        stack = start(workdir)
        restored = last(RESTORED, log)
        for _ in range(args.runs - 1):
            big.append(stop_timed(stack))
            stack = start(workdir)
        ready = stack.ready_s
        big.append(stop_timed(stack))
        print(f"Ctrl-C to exit, +{args.messages} messages kept     median {statistics.median(big) * 1000:.0f} ms "
              f"of {len(big)}")
        if saved and restored:
            print(f"+{args.messages} messages: snapshot {saved['size']}, saved in {saved['ms']} ms, "
                  f"restored in {restored['ms']} ms ({restored['what']}); ready in {ready:.2f} s from launch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
