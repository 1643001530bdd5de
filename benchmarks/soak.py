"""A bounded fault-injection run against the local stack: does every message still arrive once?

A few users, each with several devices (one :class:`chatclient.ChatClient` per device), send
each other messages for ``--seconds`` while faults are injected at random (seeded):

* ``worker_kill``: ``kill -9`` of a Lambda worker of this soak's own stack (a descendant of
  its ``wsstack up`` process, found by command line as ``stackproc`` counts workers), most
  often a ``sendMessage`` worker right after a send, so the invocation is cut in the middle;
* ``socket_abort``: a device's TCP connection dropped without a close frame;
* ``connection_delete``: ``DELETE @connections/{id}`` of one of a user's connections, as
  the backend or an operator would do on AWS;
* ``send_retry``: a device sends again, with the same ``messageId`` and content, a message
  it sent earlier (what an app does when an ack is slow).

Then the run drains (bounded): senders stop, every outbox empties, and each device is made to
reconnect once, so it syncs. The figures printed: messages created, acknowledged, received
(live, or by a sync), lost (acknowledged but received by no device of the recipient), stored
twice (two items of the Messages table for one sent message), faults by kind, delivery latency,
and whether the stack still answers. The exit status is 1 on any loss, duplicate, or message
still unacknowledged after the drain; 2 when the soak could not run.

Everything runs on 127.0.0.1: a ``wsstack up --no-persist`` child on free ports with its
state file in a temporary directory, stopped (with every worker it started) before the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil
from stackproc import ROOT, StackProcess, memory_snapshot

from chatclient import (
    Backoff,
    ChatClient,
    ConnectionState,
    ConnectionStateChanged,
    Event,
    MessageAcked,
    MessageReceived,
    ServerError,
    Target,
    ensure_user,
    sign_in,
)

__all__ = ["main"]

CHAT_TEMPLATE = ROOT / "template.yaml"
PASSWORD = "Passw0rd-soak"
FAULT_KINDS = ("worker_kill", "socket_abort", "connection_delete", "send_retry")
#: Which function's worker a kill aims at, and how often. sendMessage most: a store cut in the
#: middle is where a message could be lost or stored twice.
KILL_TARGETS = (("send_message", 6), ("ack_messages", 2), ("sync_messages", 1), ("connect", 1))
#: After every message is acknowledged, how long to wait for the live pushes still on their way.
LIVE_GRACE = 5.0
#: Bounds on every wait, so a stuck stack fails the soak instead of hanging it.
STEP_TIMEOUT = 30.0


def _progress(text: str) -> None:
    print(f"soak: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Sent:
    """One message a device created (its first ``send_message``)."""

    message_id: str
    tag: str
    sender: str
    recipient: str
    device: str
    created: float
    acked: float | None = None


@dataclass
class Device:
    """One device of one user: a client, and what it saw."""

    name: str
    user: str
    client: ChatClient
    #: messageId -> (monotonic time, "live" | "sync") of the first copy this device got.
    received: dict[str, tuple[float, str]] = field(default_factory=dict)
    #: (time, online) at each change between ONLINE and not.
    changes: list[tuple[float, bool]] = field(default_factory=list)
    syncs: int = 0
    #: Messages this device sent, for ``send_retry``.
    sent: list[Sent] = field(default_factory=list)

    def online_throughout(self, start: float, end: float) -> bool:
        """Whether the device was ONLINE (connected and synced) all the time from start to end."""
        before = [online for t, online in self.changes if t <= start]
        return bool(before and before[-1]) and not any(start < t <= end for t, _ in self.changes)

    def on_event(self, event: Event, soak: Soak) -> None:
        now = time.monotonic()
        if isinstance(event, MessageReceived):
            message = event.message
            if message.recipient_id == self.client.user_id and message.message_id not in self.received:
                self.received[message.message_id] = (now, event.via)
        elif isinstance(event, MessageAcked):
            sent = soak.sent.get(event.message_id)
            if sent is not None and sent.acked is None:
                sent.acked = now
        elif isinstance(event, ServerError):
            soak.server_errors[event.code] += 1
        elif isinstance(event, ConnectionStateChanged):
            online = event.state is ConnectionState.ONLINE
            if online:
                self.syncs += 1
            if not self.changes or self.changes[-1][1] != online:
                self.changes.append((now, online))


@dataclass
class Soak:
    args: argparse.Namespace
    stack: StackProcess
    target: Target
    tables: dict[str, str]
    rng: random.Random
    devices: list[Device] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)  # sub -> username
    sent: dict[str, Sent] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    #: Faults that found nothing to act on (no worker, no open socket, nothing sent yet).
    skipped: Counter[str] = field(default_factory=Counter)
    #: Error frames the devices got, by code (INTERNAL: a Lambda failed, e.g. killed mid-invocation).
    server_errors: Counter[str] = field(default_factory=Counter)
    serial: int = 0
    traffic_seconds: float = 0.0
    #: When a sendMessage worker was killed.
    send_kills: list[float] = field(default_factory=list)

    # ------------------------------------------------------------------ traffic

    async def send_one(self, device: Device) -> Sent:
        recipient = self.rng.choice([u for u in self.users if u != device.user])
        self.serial += 1
        tag = f"soak-{self.serial:06d}"
        message_id = str(uuid.uuid4())
        sent = Sent(message_id, tag, device.user, recipient, device.name, time.monotonic())
        self.sent[message_id] = sent
        device.sent.append(sent)
        await device.client.send_message(recipient, f"{tag} from {device.name}", message_id=message_id)
        return sent

    async def sender(self, device: Device, until: float) -> None:
        rng = random.Random(self.rng.random())
        while time.monotonic() < until:
            await asyncio.sleep(min(rng.expovariate(self.args.rate), max(0.0, until - time.monotonic())))
            if time.monotonic() >= until:
                break
            await self.send_one(device)

    # ------------------------------------------------------------------ faults

    async def injector(self, until: float) -> None:
        while time.monotonic() < until:
            pause = self.rng.expovariate(1 / self.args.fault_every)
            await asyncio.sleep(min(pause, max(0.0, until - time.monotonic())))
            if time.monotonic() >= until:
                break
            kind = self.rng.choice(FAULT_KINDS)
            device = self.rng.choice(self.devices)
            try:
                done = await getattr(self, f"_fault_{kind}")(device)
            except Exception as exc:  # a fault that could not be injected is a figure, not a crash
                _progress(f"{kind} could not be injected: {type(exc).__name__}: {exc}")
                done = False
            (self.faults if done else self.skipped)[kind] += 1

    def _workers(self, function: str | None = None) -> list[psutil.Process]:
        """This stack's Lambda workers (its descendants only), of one function or all."""
        found = []
        with contextlib.suppress(psutil.NoSuchProcess):
            for proc in psutil.Process(self.stack.pid).children(recursive=True):
                try:
                    cmdline = " ".join(proc.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                if "awslambdaric" in cmdline and (function is None or f"chat.handlers.{function}." in cmdline):
                    found.append(proc)
        return found

    async def _fault_worker_kill(self, device: Device) -> bool:
        functions, weights = zip(*KILL_TARGETS, strict=True)
        function = self.rng.choices(functions, weights)[0]
        if function == "send_message":
            # A send first, so that an invocation that stores a message is about to run.
            await self.send_one(device)
        workers = self._workers(function) or self._workers()
        if not workers:
            return False
        # A worker on the CPU is in an invocation (an idle one waits on its Runtime API
        # socket): look for one a few times over up to ~60 ms, else take any of them.
        victim = self.rng.choice(workers)
        for _ in range(12):
            busy = [w for w in workers if _running(w)]
            if busy:
                victim = self.rng.choice(busy)
                break
            await asyncio.sleep(0.005)
        try:
            is_send = "chat.handlers.send_message." in " ".join(victim.cmdline())
            os.kill(victim.pid, signal.SIGKILL)
        except (ProcessLookupError, psutil.NoSuchProcess):
            return False
        if is_send:
            self.send_kills.append(time.monotonic())
        return True

    def near_kill(self, sent: Sent) -> bool:
        """Whether a sendMessage worker was killed while this message waited for its ack."""
        end = sent.acked if sent.acked is not None else float("inf")
        return any(sent.created <= t <= end for t in self.send_kills)

    async def _fault_socket_abort(self, device: Device) -> bool:
        ws = device.client.connection
        if ws is None:
            return False
        # No close frame, no FIN handshake: the network went away under the app.
        ws.transport.abort()
        return True

    async def _fault_connection_delete(self, device: Device) -> bool:
        def delete() -> bool:
            found = self.target.dynamodb().query(
                TableName=self.tables["ConnectionsTable"], IndexName="UserIdIndex",
                KeyConditionExpression="userId = :u", ExpressionAttributeValues={":u": {"S": device.user}},
            )["Items"]
            if not found:
                return False
            connection_id = self.rng.choice(found)["connectionId"]["S"]
            with contextlib.suppress(self._management.exceptions.GoneException):
                self._management.delete_connection(ConnectionId=connection_id)
            return True

        return await asyncio.to_thread(delete)

    async def _fault_send_retry(self, device: Device) -> bool:
        ws = device.client.connection
        if ws is None or not device.sent:
            return False
        # A recent one: its first attempt may still be in flight, which is the race that matters.
        sent = self.rng.choice(device.sent[-5:])
        frame = {"action": "sendMessage", "messageId": sent.message_id, "conversationId":
                 device.client.conversation_with(sent.recipient), "recipientId": sent.recipient,
                 "content": f"{sent.tag} from {sent.device}"}
        try:
            await ws.send(json.dumps(frame))
        except Exception:  # closed meanwhile: nothing was retried
            return False
        return True

    @property
    def _management(self) -> Any:
        if not hasattr(self, "_management_client"):
            self._management_client = boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=str(self.stack.state["connections_url"]).removesuffix("/@connections"),
                region_name=self.target.region, aws_access_key_id="soak", aws_secret_access_key="soak",
            )
        return self._management_client

    # ------------------------------------------------------------------ drain and checks

    async def wait_until(self, done: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            await asyncio.sleep(0.1)
        return bool(done())

    def recipients_devices(self, user: str) -> list[Device]:
        return [d for d in self.devices if d.user == user]

    def reached(self, sent: Sent) -> bool:
        return any(sent.message_id in d.received for d in self.recipients_devices(sent.recipient))

    def unregistered_devices(self) -> int:
        """Online devices beyond the connections their user has registered (pushes cannot reach them)."""
        missing = 0
        for user in self.users:
            item = self.target.dynamodb().get_item(
                TableName=self.tables["UserConnectionsTable"], Key={"userId": {"S": user}}
            ).get("Item", {})
            registered = len(item.get("connectionIds", {}).get("SS", []))
            online = sum(d.client.state is ConnectionState.ONLINE for d in self.recipients_devices(user))
            missing += max(0, online - registered)
        return missing

    def stored(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        client = self.target.dynamodb()
        kwargs: dict[str, Any] = {"TableName": self.tables["MessagesTable"]}
        for _ in range(10_000):  # pages; bounded
            page = client.scan(**kwargs)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_RUNNING
    except psutil.NoSuchProcess:
        return False


# ------------------------------------------------------------------------------ run


async def _open_devices(soak: Soak) -> None:
    args = soak.args
    for u in range(args.users):
        username = f"soak{u}-{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(ensure_user, soak.target, username, PASSWORD, name=f"Soak {u}",
                                email=f"{username}@example.com")
        for d in range(args.devices):
            tokens = await asyncio.to_thread(sign_in, soak.target, username, PASSWORD)
            soak.users[tokens.sub] = username
            client = ChatClient.for_target(
                soak.target, tokens, backoff=Backoff(base=0.1, max_delay=2.0), ack_timeout=args.ack_timeout,
                transport_ping_interval=5.0, transport_ping_timeout=5.0,
            )
            device = Device(f"{username}/{d}", tokens.sub, client)
            client.subscribe(lambda event, device=device: device.on_event(event, soak))
            soak.devices.append(device)
    for device in soak.devices:
        await device.client.start()
    async with asyncio.timeout(STEP_TIMEOUT):
        await asyncio.gather(*(d.client.wait_online() for d in soak.devices))


async def _final_sync(soak: Soak) -> None:
    """Make every device reconnect once, so it syncs: what a device gets only then came by sync."""
    before = {d.name: d.syncs for d in soak.devices}
    for device in soak.devices:
        ws = device.client.connection
        if ws is not None:
            ws.transport.abort()
    await soak.wait_until(lambda: all(d.syncs > before[d.name] for d in soak.devices), STEP_TIMEOUT)
    # The sync pages' confirmations go out at most once a second.
    await asyncio.sleep(2 * 1.0 + 0.5)


async def _stack_answers(soak: Soak) -> bool:
    device = soak.devices[0]
    try:
        await device.client.wait_online(STEP_TIMEOUT)
        await device.client.ping(timeout=10)
    except Exception as exc:
        _progress(f"the stack did not answer a ping: {type(exc).__name__}: {exc}")
        return False
    return True


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def soak_run(soak: Soak) -> dict[str, Any]:
    args = soak.args
    await _open_devices(soak)
    _progress(f"{len(soak.devices)} devices online; sending for {args.seconds} s with faults every "
              f"~{args.fault_every} s (seed {args.seed})")
    started = time.monotonic()
    until = started + args.seconds
    await asyncio.gather(*(soak.sender(d, until) for d in soak.devices), soak.injector(until))
    soak.traffic_seconds = time.monotonic() - started

    _progress("draining: waiting for every message to be acknowledged and received")
    drain_until = time.monotonic() + args.drain_seconds
    await soak.wait_until(lambda: all(not d.client.outbox for d in soak.devices), args.drain_seconds)
    # A live push goes out in the invocation that acknowledges, so a few seconds after the last
    # ack whatever has not arrived will come only by sync: waiting longer measures nothing.
    await soak.wait_until(lambda: all(soak.reached(s) for s in soak.sent.values() if s.acked),
                          max(1.0, min(LIVE_GRACE, drain_until - time.monotonic())))
    live_done = time.monotonic()
    before_final = {s.message_id for s in soak.sent.values() if soak.reached(s)}
    unregistered = await asyncio.to_thread(soak.unregistered_devices)
    _progress("final sync: every device reconnects once")
    await _final_sync(soak)
    answers = await _stack_answers(soak)
    workers = memory_snapshot(soak.stack.pid).workers
    alive = soak.stack.proc is not None and soak.stack.proc.poll() is None
    items = await asyncio.to_thread(soak.stored)
    for device in soak.devices:
        await device.client.close()
    figures = _figures(soak, items, before_final, started, live_done, answers, workers, alive)
    figures["worker_kills_seen_by_stack"] = _kills_in_log(soak.stack.log_file)
    figures["online_devices_without_a_registered_connection"] = unregistered
    return figures


#: How the stack's runtime logs a worker that died: during an invocation (its REPORT-like line
#: ends in the error), or while it waited for one.
_DIED_BUSY = re.compile(r"^\S+ INFO\s+wsstack\.runtime: (\w+) \S+ [\d.]+ ms .*error Runtime\.ExitError", re.M)
_DIED_IDLE = re.compile(r"^\S+ WARNING\s+wsstack\.runtime: (\w+): idle worker \d+ exited \(signal: killed\)", re.M)


def _kills_in_log(log: Path) -> dict[str, int]:
    """Killed workers as the stack saw them: mid-invocation or idle."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    return {"mid_invocation": len(_DIED_BUSY.findall(text)), "idle": len(_DIED_IDLE.findall(text))}


def _figures(soak: Soak, items: list[dict[str, Any]], before_final: set[str], started: float, live_done: float,
             answers: bool, workers: int, alive: bool) -> dict[str, Any]:
    sent = list(soak.sent.values())
    acked = [s for s in sent if s.acked is not None]
    by_id = Counter(item["messageId"]["S"] for item in items)
    by_tag = Counter(item.get("content", {}).get("S", "").split(" ", 1)[0] for item in items)
    stored_ids = set(by_id)
    # Stored twice: two items for one messageId, or for one sent message under two ids.
    twice = sorted({s.tag for s in sent if by_id[s.message_id] > 1 or by_tag[s.tag] > 1})
    lost = sorted(s.message_id for s in acked if not soak.reached(s) or s.message_id not in stored_ids)
    unacked = sorted(s.message_id for s in sent if s.acked is None)
    received = [s for s in acked if soak.reached(s)]
    first: dict[str, tuple[float, str]] = {}
    for s in received:
        copies = [d.received[s.message_id] for d in soak.recipients_devices(s.recipient) if s.message_id in d.received]
        first[s.message_id] = min(copies)
    only_sync = [s for s in received if first[s.message_id][1] == "sync"]
    only_final = [s for s in received if s.message_id not in before_final]
    latencies = [first[s.message_id][0] - s.created for s in received if first[s.message_id][1] == "live"]
    # Per device: protocol v1 keeps a message pending per user, so a device that was offline
    # when its sibling confirmed a message never gets it by sync (docs/client.md, section 9).
    device_gaps, gaps_online = 0, []
    for s in acked:
        for d in soak.recipients_devices(s.recipient):
            if s.message_id in d.received:
                continue
            device_gaps += 1
            if d.online_throughout(s.created, live_done):
                gaps_online.append(f"{s.message_id} on {d.name}" + (" (near a kill)" if soak.near_kill(s) else ""))
    pending = sum(1 for item in items if "pendingFor" in item and item["messageId"]["S"] in soak.sent)
    return {
        "seed": soak.args.seed,
        "traffic_seconds": round(soak.traffic_seconds, 1),
        "drain_seconds": round(live_done - started - soak.traffic_seconds, 1),
        "users": soak.args.users,
        "devices": len(soak.devices),
        "created": len(sent),
        "acknowledged": len(acked),
        "received": len(received),
        "received_live_first": len(received) - len(only_sync),
        "received_only_by_sync": len(only_sync),
        "received_only_in_final_sync": len(only_final),
        "received_only_by_sync_near_a_kill": sum(soak.near_kill(s) for s in only_sync),
        "lost": len(lost),
        "stored_twice": len(twice),
        "unacknowledged_after_drain": len(unacked),
        "still_pending_on_server": pending,
        "device_copies_missing": device_gaps,
        "device_copies_missing_while_online": len(gaps_online),
        "faults": {kind: soak.faults[kind] for kind in FAULT_KINDS},
        "faults_skipped": {kind: soak.skipped[kind] for kind in FAULT_KINDS if soak.skipped[kind]},
        "server_errors": dict(soak.server_errors),
        "latency_p50_ms": round(_percentile(latencies, 50) * 1000, 1) if latencies else None,
        "latency_p99_ms": round(_percentile(latencies, 99) * 1000, 1) if latencies else None,
        "latency_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "stack_answers": answers,
        "stack_alive": alive,
        "workers": workers,
        "examples": {"lost": lost[:5], "stored_twice": twice[:5], "unacknowledged": unacked[:5],
                     "only_in_final_sync": sorted(s.message_id for s in only_final)[:5],
                     "missing_on_a_device_online_throughout": sorted(gaps_online)[:5]},
    }


def render(f: dict[str, Any]) -> str:
    faults = ", ".join(f"{k} {v}" for k, v in f["faults"].items())
    skipped = ", ".join(f"{k} {v}" for k, v in f["faults_skipped"].items()) or "none"
    latency = (f"p50 {f['latency_p50_ms']} ms, p99 {f['latency_p99_ms']} ms, max {f['latency_max_ms']} ms"
               if f["latency_p50_ms"] is not None else "no live delivery")
    kills = f.get("worker_kills_seen_by_stack", {})
    errors = ", ".join(f"{k} {v}" for k, v in f["server_errors"].items()) or "none"
    lines = [
        f"wsstack soak: {f['users']} users x {f['devices'] // f['users']} devices, "
        f"{f['traffic_seconds']} s of traffic, {f['drain_seconds']} s of drain, "
        f"seed {f['seed']}",
        f"  messages created           {f['created']}",
        f"  acknowledged               {f['acknowledged']}",
        f"  received                   {f['received']} (first copy live {f['received_live_first']}, "
        f"only by sync {f['received_only_by_sync']}, of which only in the final sync "
        f"{f['received_only_in_final_sync']}; {f['received_only_by_sync_near_a_kill']} of the sync-only "
        "ones saw a sendMessage worker killed before their ack)",
        f"  lost                       {f['lost']}",
        f"  stored twice               {f['stored_twice']}",
        f"  unacknowledged after drain {f['unacknowledged_after_drain']}",
        f"  still pending on server    {f['still_pending_on_server']}",
        f"  device copies missing      {f['device_copies_missing']} (of which on a device that stayed online: "
        f"{f['device_copies_missing_while_online']})",
        f"  online devices with no registered connection, before the final sync: "
        f"{f['online_devices_without_a_registered_connection']}",
        f"  faults injected            {faults} (skipped: {skipped})",
        f"  worker kills, per the log  {kills.get('mid_invocation', '?')} mid-invocation, "
        f"{kills.get('idle', '?')} idle",
        f"  error frames to devices    {errors}",
        f"  delivery latency (live)    {latency}",
        f"  stack                      {'answers' if f['stack_answers'] else 'DOES NOT ANSWER'}, "
        f"{'running' if f['stack_alive'] else 'EXITED'}, {f['workers']} workers",
    ]
    for kind, ids in f["examples"].items():
        if ids:
            lines.append(f"  {kind}: {', '.join(ids)}")
    verdict = "FAIL" if failed(f) else "ok"
    lines.append(f"  verdict                    {verdict}")
    return "\n".join(lines)


def failed(f: dict[str, Any]) -> bool:
    return bool(f["lost"] or f["stored_twice"] or f["unacknowledged_after_drain"]
                or not f["stack_answers"] or not f["stack_alive"])


# ------------------------------------------------------------------------------ main


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not a positive number")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soak",
        description="Send messages between a few users' devices through the local stack while injecting "
        "faults; exit 1 if any acknowledged message was lost or stored twice.",
    )
    parser.add_argument("--seconds", type=_positive(float), default=180.0,
                        help="how long to send and inject faults (default %(default)s)")
    parser.add_argument("--users", type=_positive(int), default=4, help="users (default %(default)s)")
    parser.add_argument("--devices", type=_positive(int), default=2, help="devices per user (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    parser.add_argument("--rate", type=_positive(float), default=0.5,
                        help="messages per second per device, on average (default %(default)s)")
    parser.add_argument("--fault-every", type=_positive(float), default=1.5,
                        help="seconds between faults, on average (default %(default)s)")
    parser.add_argument("--ack-timeout", type=_positive(float), default=3.0,
                        help="the clients' resend timeout, seconds (default %(default)s)")
    parser.add_argument("--drain-seconds", type=_positive(float), default=30.0,
                        help="at most this long to wait for every message after sending stops (default %(default)s)")
    parser.add_argument("--keep-log", metavar="FILE", help="copy the stack's log to FILE")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The clients log each drop and error frame; here those are counted, not printed.
    logging.getLogger("chatclient").setLevel(logging.CRITICAL)
    if args.users < 2:
        print("soak: --users must be at least 2 (users send to each other)", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    with tempfile.TemporaryDirectory(prefix="wsstack-soak-") as tmp:
        stack = StackProcess(CHAT_TEMPLATE, Path(tmp), extra=["--no-persist", "--log-level", "INFO"])
        try:
            stack.start()
            soak = Soak(args, stack, Target.from_state_file(stack.state_file),
                        Target.tables_from_state_file(stack.state_file), random.Random(args.seed))
            budget = args.seconds + args.drain_seconds + 4 * STEP_TIMEOUT + 60
            figures = asyncio.run(asyncio.wait_for(soak_run(soak), budget))
        except Exception as exc:
            print(f"soak: could not run: {type(exc).__name__}: {exc}\n{stack.tail()}", file=sys.stderr)
            return 2
        finally:
            stack.stop()
            if args.keep_log:
                with contextlib.suppress(FileNotFoundError):
                    Path(args.keep_log).write_bytes(stack.log_file.read_bytes())
    print(render(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if failed(figures) else 0


if __name__ == "__main__":
    sys.exit(main())
