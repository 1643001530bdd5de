"""Speed and memory of the local stack, printed next to the targets they are held to.

Scenarios (``--only`` picks some):

* ``startup``: ``wsstack up`` on the chat app's template, from launch to its ready line;
  bare, then with the demo seed script as ``make up`` runs it (the seed runs after ready).
* ``rtt``: sequential round trips on one connection through the echo app (gateway ->
  Lambda worker -> ``@connections`` -> socket), against the floor: the same client on a bare
  ``websockets`` echo server measured in the same run.
* ``throughput``: many connections sending at once; messages/s, latency, and the memory of
  the whole stack (gateway + workers + emulator) at its peak.
* ``app``: a template shaped like a real app (ten functions importing boto3 and Powertools,
  a REQUEST authorizer on ``$connect``, the echo posting through ``https://{domainName}/{stage}``),
  from a cold pool: launch to ready and to the first message, cold starts, the same load from
  a cold then a warm pool, memory after it, and sequential round trips against the floor.
* ``idle``: many idle connections held at once; the gateway process's memory.

Every server runs in a process of its own on 127.0.0.1, as ``make up`` runs it, and every
process started here is stopped by pid before the scenario ends. Nothing is asserted: the
figures are printed with the target beside each, and the exit status is 0 whatever they are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import psutil
import websockets
import websockets.sync.client
from stackproc import ROOT, MemorySnapshot, PeakSampler, StackProcess, cpu_seconds, memory_snapshot
from websockets.asyncio.client import ClientConnection, connect

from wsstack.forkserver import FORK_AVAILABLE

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ECHO_TEMPLATE = HERE / "echo" / "template.yaml"
ECHO_ENV = HERE / "echo" / "env.json"
CHAT_TEMPLATE = ROOT / "template.yaml"
APP_TEMPLATE = HERE / "app" / "template.yaml"
#: The token the app's authorizer allows (benchmarks/app/functions/authorizer.py).
APP_TOKEN = "bench-token"
SCENARIOS = ("startup", "rtt", "throughput", "app", "idle")
#: No single reply may take longer than this; a stuck stack fails the scenario, never hangs it.
REPLY_TIMEOUT = 10.0


# --------------------------------------------------------------------------- reporting


@dataclass
class Row:
    """One printed figure and the target it is held to (empty when it is context only)."""

    scenario: str
    figure: str
    value: str
    target: str = ""
    #: True met, False missed, None when there is no target.
    met: bool | None = None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, scenario: str, figure: str, value: str, target: str = "", met: bool | None = None
    ) -> None:
        row = Row(scenario, figure, value, target, met)
        self.rows.append(row)
        # Progress as it happens, so a long run shows where it is.
        _progress(f"{scenario:<10} {figure}: {value}" + (f"  (target {target})" if target else ""))

    def note(self, text: str) -> None:
        self.notes.append(text)
        _progress(f"note: {text}")

    def render(self) -> str:
        headers = ("scenario", "figure", "measured", "target", "")
        cells = [(r.scenario, r.figure, r.value, r.target, _verdict(r.met)) for r in self.rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        previous = None
        for cell in cells:
            shown = cell if cell[0] != previous else ("", *cell[1:])
            previous = cell[0]
            lines.append("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
        lines += [f"  * {text}" for text in self.notes]
        return "\n".join(lines)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: ""}[met]


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ------------------------------------------------------------------------ the client


def _payload(seq: int, size: int) -> str:
    # "action" names no route, so the gateway picks $default, as it would for any client
    # frame of an app without an explicit echo route.
    head = json.dumps({"action": "echo", "seq": seq, "pad": ""})
    return head[:-2] + "x" * max(0, size - len(head)) + '"}'


async def _round_trip(ws: ClientConnection, text: str) -> float:
    started = time.perf_counter()
    await ws.send(text)
    async with asyncio.timeout(REPLY_TIMEOUT):
        reply = await ws.recv()
    elapsed = time.perf_counter() - started
    if reply != text:
        raise RuntimeError(f"the echo differs from what was sent: {str(reply)[:80]!r}")
    return elapsed


def _connect(url: str) -> connect:
    # Same settings as the gateway's side: no compression, no keepalive pings.
    return connect(url, compression=None, ping_interval=None, open_timeout=30, close_timeout=5)


@dataclass
class Run:
    """What one measured run gives: latencies, wall time and CPU used per message by group."""

    latencies: list[float]
    wall: float
    cpu_per_message: dict[str, float] = field(default_factory=dict)
    #: The very first round trip of the connection (a cold start, on the stack).
    first: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall


#: Reads cumulative CPU seconds by process group (see ``stackproc.cpu_seconds``).
Meter = Callable[[], dict[str, float]]


def _per_message(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    return {group: (after[group] - before[group]) / count for group in after if after[group] > before[group]}


async def _sequential(url: str, count: int, warmup: int, size: int, meter: Meter, pause: float = 0.0) -> Run:
    """``count`` round trips one after another on one connection, after ``warmup`` unmeasured.

    With ``pause``, that many seconds pass between an echo and the next message (not timed).
    """
    async with _connect(url) as ws:
        first = await _round_trip(ws, _payload(-1, size))
        for seq in range(warmup):
            await _round_trip(ws, _payload(seq, size))
        before, started, samples = meter(), time.perf_counter(), []
        for seq in range(count):
            samples.append(await _round_trip(ws, _payload(seq, size)))
            if pause:
                await asyncio.sleep(pause)
        wall, after = time.perf_counter() - started, meter()
    return Run(samples, wall, _per_message(before, after, count), first)


async def _timed_connect(url: str) -> tuple[ClientConnection, float]:
    started = time.perf_counter()
    ws = await _connect(url)
    return ws, time.perf_counter() - started


async def _one_client(ws: ClientConnection, base: int, messages: int, size: int, out: list[float]) -> None:
    for seq in range(messages):
        out.append(await _round_trip(ws, _payload(base + seq, size)))


async def _concurrent(url: str, connections: int, messages: int, size: int, meter: Meter, rounds: int = 1) -> Run:
    """Every connection sends ``messages`` round trips, one at a time, all connections at once.

    With ``rounds`` > 1 only the last round is measured; earlier ones warm the stack up
    (workers start when concurrency first grows, as on AWS).
    """
    sockets = [await _connect(url) for _ in range(connections)]
    try:
        for round_no in range(rounds):
            latencies: list[float] = []
            before, started = meter(), time.perf_counter()
            await asyncio.gather(*(_one_client(ws, i * messages, messages, size, latencies)
                                   for i, ws in enumerate(sockets)))
            wall, after = time.perf_counter() - started, meter()
            if round_no < rounds - 1:
                _progress(f"  warm-up round: {len(latencies)} messages in {wall:.2f} s")
        return Run(latencies, wall, _per_message(before, after, len(latencies)))
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# ------------------------------------------------------------------- helper processes


@contextlib.contextmanager
def _floor_server() -> Iterator[tuple[str, Meter]]:
    """The bare websockets echo server, in its own process; yields its URL and CPU meter."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "floor_server.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE,
    )
    try:
        assert proc.stdout is not None
        line = _readline(proc.stdout, 15.0)
        if not line:
            raise RuntimeError("the floor echo server did not start")
        server = psutil.Process(proc.pid)

        def meter() -> dict[str, float]:
            times = server.cpu_times()
            return {"server": times.user + times.system}

        yield f"ws://127.0.0.1:{json.loads(line)['port']}/", meter
    finally:
        _end(proc)


def _readline(stream: IO[str], timeout: float) -> str:
    """A line from a child's pipe, or "" after ``timeout`` seconds (the child may be stuck)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def _end(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    """Close the child's stdin (its signal to leave), then kill it by pid if it stays."""
    with contextlib.suppress(OSError):
        if proc.stdin:
            proc.stdin.close()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def _stack(args: argparse.Namespace, name: str, template: Path, env_vars: Path | None,
           extra: list[str] | None = None) -> Iterator[StackProcess]:
    with tempfile.TemporaryDirectory(prefix=f"wsstack-bench-{name}-") as tmp:
        command = None
        if args.profile_dir:
            # cProfile around the whole CLI; the stats are written when Ctrl-C ends it.
            profile = Path(args.profile_dir).resolve() / f"{name}.prof"
            profile.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "wsstack.cli"]
        stack = StackProcess(
            template, Path(tmp), env_vars=env_vars, command=command,
            extra=["--log-level", args.stack_log_level, *(extra or [])],
        )
        try:
            yield stack.start()
        finally:
            stack.stop()
            if args.keep_logs:
                kept = Path(args.keep_logs).resolve() / f"{name}.log"
                kept.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    kept.write_bytes(stack.log_file.read_bytes())


# ------------------------------------------------------------------------- scenarios


def run_startup(args: argparse.Namespace, report: Report) -> None:
    """``wsstack up`` on the chat template until ``wsstack: ready``, bare and as ``make up`` runs it."""
    seed = f"{shlex.quote(sys.executable)} scripts/seed.py"
    variants = [("bare", "bare", [])]
    if not args.no_seed:
        variants.append(("as make up (--seed)", "seeded", ["--seed", seed]))
    for label, slug, extra in variants:
        try:
            times, own, seeded = _launches(args, slug, extra)
        except RuntimeError as exc:
            report.note(f"startup {label} could not be measured: {exc}")
            continue
        median = statistics.median(times)
        report.add("startup", f"wsstack up -> ready, {label} (median of {len(times)})",
                   f"{median:.2f} s", "<= 1.5 s", median <= 1.5)
        report.add("startup", f"  {label}: fastest / slowest", f"{min(times):.2f} / {max(times):.2f} s")
        if own:
            report.add("startup", f"  {label}: stack start alone (its 'Ready in')", f"{statistics.median(own):.2f} s")
        if seeded:
            report.add("startup", f"  {label}: demo conversation sent, after ready",
                       f"{statistics.median(seeded):.2f} s")
    report.note("startup: ready means the port accepts and the tables and the users of users.local.json "
                "are in place (checked in the state file); make up's seed then sends the demo conversation "
                "through the running stack.")


def _launches(args: argparse.Namespace, slug: str, extra: list[str]) -> tuple[list[float], list[float], list[float]]:
    """Per measured launch: seconds to ready, the stack's own 'Ready in', seconds to the seed's end."""
    times: list[float] = []
    own: list[float] = []
    seeded: list[float] = []
    # One unmeasured launch first: it fills the page cache and writes .pyc files, so the
    # measured runs see the "warm machine" the target is stated for.
    for run in range(args.startup_runs + 1):
        with _stack(args, f"startup-{slug}-{run}", CHAT_TEMPLATE, None, extra) as stack:
            _check_accepting(stack.websocket_url)
            if not stack.state.get("users"):
                raise RuntimeError("the stack said ready without the users of users.local.json")
            seed_done = stack.wait_for_line("Demo conversation") if extra else None
            if extra and seed_done is None:
                raise RuntimeError("the seed script failed; its output:\n" + _seed_failure(stack))
            if run:
                times.append(stack.ready_s)
                if stack.reported_ready_ms is not None:
                    own.append(stack.reported_ready_ms / 1000)
                if seed_done is not None:
                    seeded.append(seed_done)
    return times, own, seeded


def _seed_failure(stack: StackProcess) -> str:
    log = stack.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    telling = [line for line in log
               if ("Error" in line or "exited with status" in line) and "LAMBDA_WARNING" not in line]
    return "\n".join(f"    {line[:200]}" for line in (telling or log)[-5:])


def _check_accepting(websocket_url: str) -> None:
    parts = urlsplit(websocket_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5):
        pass


def _cpu_text(run: Run) -> str:
    # The kernel counts CPU time in clock ticks (10 ms on most Linux systems): spread over the
    # run's messages, that is the figure's resolution.
    resolution = 1e6 / os.sysconf("SC_CLK_TCK") / len(run.latencies)
    used = ", ".join(f"{group} {seconds * 1e6:,.0f} us" for group, seconds in run.cpu_per_message.items())
    return f"{used} (+/- {resolution:,.0f} us)"


def run_rtt(args: argparse.Namespace, report: Report) -> None:
    """Sequential round trips: the floor, then the stack, same client, same payload."""
    n, size = args.round_trips, args.message_bytes
    with _floor_server() as (url, meter):
        floor = asyncio.run(_sequential(url, n, args.warmup, size, meter))
    with _stack(args, "rtt", ECHO_TEMPLATE, ECHO_ENV) as stack:
        # A burst first brings the worker pool to its limit: a pool that is still growing
        # starts a worker (a cold start's CPU) in the middle of the measured round trips.
        asyncio.run(_concurrent(stack.websocket_url, 8, 5, size, dict))
        ours = asyncio.run(_sequential(stack.websocket_url, n, args.warmup, size, lambda: cpu_seconds(stack.pid)))
        post_wall, post_cpu = _boto3_post_cost(stack, n)
    f50, f99 = _percentile(floor.latencies, 50), _percentile(floor.latencies, 99)
    s50, s99 = _percentile(ours.latencies, 50), _percentile(ours.latencies, 99)
    report.add("rtt", f"floor (bare websockets echo) p50, {n} sequential", _ms(f50))
    report.add("rtt", "floor p99", _ms(f99))
    report.add("rtt", f"stack (gateway -> Lambda -> @connections) p50, {n} sequential", _ms(s50),
               "<= 1.0 ms", s50 <= 0.001)
    report.add("rtt", "stack p99", _ms(s99), "<= 3 ms", s99 <= 0.003)
    report.add("rtt", "stack mean / max", f"{_ms(statistics.fmean(ours.latencies))} / {_ms(max(ours.latencies))}")
    report.add("rtt", "overhead over the floor, p50", f"+{_ms(s50 - f50)} ({s50 / f50:.1f}x)")
    report.add("rtt", "overhead over the floor, p99", f"+{_ms(s99 - f99)} ({s99 / f99:.1f}x)")
    report.add("rtt", "CPU per round trip, floor", _cpu_text(floor))
    report.add("rtt", "CPU per round trip, stack", _cpu_text(ours))
    report.add("rtt", "first message (cold start of the worker)", _ms(ours.first))
    report.add("rtt", "the echo's own boto3 post_to_connection alone, p50", _ms(post_wall))
    report.add("rtt", "  its CPU per call", f"{post_cpu * 1e6:,.0f} us")
    report.add("rtt", "stack p50 without that call", _ms(s50 - post_wall))
    report.note("rtt: the echo Lambda posts its reply with boto3, as real code does; that call is timed on "
                "its own here, from this process against the same stack, so the stack's share can be read off.")


def _boto3_post_cost(stack: StackProcess, n: int, https: bool = False) -> tuple[float, float]:
    """Median seconds and mean CPU seconds of one boto3 post_to_connection to a live connection.

    With ``https``, through ``https://{domainName}/{stage}`` trusting the stack's CA, as the
    app's functions post; else through the plain-HTTP ``connections_url``.
    """
    import boto3

    endpoint, verify = str(stack.state["connections_url"]).removesuffix("/@connections"), None
    url = stack.websocket_url
    if https:
        api = stack.state["apis"][0]  # type: ignore[index]
        endpoint = urlsplit(api["secure_websocket_url"])._replace(scheme="https").geturl()
        verify, url = stack.state["ca_bundle"], _app_url(stack)
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=endpoint, verify=verify,
        region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench",
    )
    with websockets.sync.client.connect(url) as ws:
        ws.send("whoami")
        connection_id = ws.recv(timeout=REPLY_TIMEOUT)
        walls = []
        for round_ in range(n + 20):
            started, cpu = time.perf_counter(), time.process_time()
            client.post_to_connection(ConnectionId=connection_id, Data=b"x")
            if round_ >= 20:  # the first ones open the connection and warm botocore
                walls.append((time.perf_counter() - started, time.process_time() - cpu))
            ws.recv(timeout=REPLY_TIMEOUT)
    return statistics.median(w for w, _ in walls), statistics.fmean(c for _, c in walls)


def run_throughput(args: argparse.Namespace, report: Report) -> None:
    """Concurrent connections, each sending its messages one round trip at a time."""
    c, m, size = args.connections, args.messages, args.message_bytes
    with _floor_server() as (url, meter):
        floor = asyncio.run(_concurrent(url, c, m, size, meter))
    with _stack(args, "throughput", ECHO_TEMPLATE, ECHO_ENV) as stack:
        with PeakSampler(stack.pid) as sampler:
            ours = asyncio.run(_concurrent(stack.websocket_url, c, m, size, lambda: cpu_seconds(stack.pid), rounds=2))
        after = memory_snapshot(stack.pid, pss=True)
    peak = sampler.peak if sampler.peak.total_mb >= after.total_mb else after
    p99 = _percentile(ours.latencies, 99)
    report.add("throughput", f"floor: {c} x {m} messages/s", f"{floor.rate:,.0f}/s")
    report.add("throughput", "floor p99", _ms(_percentile(floor.latencies, 99)))
    report.add("throughput", f"stack: {c} connections x {m} messages, messages/s", f"{ours.rate:,.0f}/s",
               ">= 1,000/s", ours.rate >= 1000)
    report.add("throughput", "stack p50", _ms(_percentile(ours.latencies, 50)))
    report.add("throughput", "stack p99", _ms(p99), "<= 25 ms", p99 <= 0.025)
    report.add("throughput", "CPU per message, stack", _cpu_text(ours))
    report.add("throughput", "whole stack RSS at peak (gateway + workers + emulator)",
               f"{peak.total_mb:.0f} MB", "<= 600 MB", peak.total_mb <= 600)
    _memory_rows(report, peak, after)


def _memory_rows(report: Report, peak: MemorySnapshot, after: MemorySnapshot) -> None:
    report.add("throughput", "  gateway process (+ Runtime API)", f"{peak.gateway_mb:.0f} MB")
    each = f" ({peak.workers_mb / peak.workers:.0f} MB each)" if peak.workers else ""
    report.add("throughput", f"  workers ({peak.workers} processes)", f"{peak.workers_mb:.0f} MB{each}")
    report.add("throughput", "  emulator (moto)", f"{peak.emulator_mb:.0f} MB")
    if peak.other_mb:
        report.add("throughput", "  other children", f"{peak.other_mb:.0f} MB")
    if after.total_pss_mb is not None:
        report.add("throughput", "  whole stack PSS after the run (shared pages split)", f"{after.total_pss_mb:.0f} MB")


def _raise_fd_limit(wanted: int) -> int:
    # The stack inherits our limit; every idle connection is one descriptor in the gateway.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _gateway_rss(pid: int, samples: int = 5, interval: float = 0.2) -> float:
    """The gateway process's RSS in MB, the largest of a few readings a moment apart."""
    best = 0.0
    for _ in range(samples):
        with contextlib.suppress(psutil.NoSuchProcess):
            best = max(best, psutil.Process(pid).memory_info().rss / 2**20)
        time.sleep(interval)
    return best


def run_idle(args: argparse.Namespace, report: Report) -> None:
    """Hold many idle connections from a separate client process; weigh the gateway."""
    count = args.idle_connections
    limit = _raise_fd_limit(count + 1024)
    if limit < count + 256:
        report.note(f"idle: the file descriptor limit is {limit}; {count} connections need more")
        return
    with _stack(args, "idle", ECHO_TEMPLATE, ECHO_ENV) as stack:
        gateway = psutil.Process(stack.pid)
        before, fds_before = _gateway_rss(stack.pid), gateway.num_fds()
        client = subprocess.Popen(
            [sys.executable, str(HERE / "idle_client.py"), stack.websocket_url, "--count", str(count),
             "--open-timeout", str(args.idle_timeout), "--close-timeout", str(args.idle_timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE,
        )
        try:
            assert client.stdin is not None and client.stdout is not None
            opened = json.loads(_readline(client.stdout, args.idle_timeout + 30) or '{"event": "timeout"}')
            if opened.get("event") != "opened":
                raise RuntimeError(f"the idle client did not open its connections: {opened}")
            held = _gateway_rss(stack.pid)
            fds_held = gateway.num_fds()
            client.stdin.write("close\n")
            client.stdin.flush()
            closed = json.loads(_readline(client.stdout, args.idle_timeout + 30) or '{"closed": 0, "seconds": -1}')
        finally:
            _end(client, grace=10)
        time.sleep(1.0)  # let the gateway finish its $disconnect bookkeeping
        after, fds_after = _gateway_rss(stack.pid), gateway.num_fds()
    n = opened["opened"]
    report.add("idle", f"connections held open (asked {count})",
               f"{n:,} ({opened['failed']} failed, gateway fds +{fds_held - fds_before:,})")
    for error in opened.get("errors") or []:
        report.note(f"idle: {error}")
    report.add("idle", "handshakes", f"{n / opened['seconds']:,.0f}/s ({opened['seconds']:.1f} s for all)")
    report.add("idle", "gateway RSS before", f"{before:.0f} MB")
    report.add("idle", f"gateway RSS with {n:,} idle", f"{held:.0f} MB", "<= 400 MB", held <= 400 and n == count)
    if n:
        report.add("idle", "  per connection", f"{(held - before) * 1024 / n:.1f} KB")
    report.add("idle", "closed cleanly", f"{closed['closed']:,} in {closed['seconds']:.1f} s "
               f"(gateway fds {fds_after - fds_before:+,} against before)")
    report.add("idle", "gateway RSS after closing", f"{after:.0f} MB")


def _app_url(stack: StackProcess) -> str:
    return f"{stack.websocket_url}?token={APP_TOKEN}"


#: The runtime's line for a cold start: "<Function> <request id> <ms> ms cold (init <ms> ms; module <ms> ms) ...",
#: where "module" is the import of the handler's module (the function's own init) within the init.
_COLD_LINE = re.compile(r"(\w+) \S+ [\d.]+ ms cold \(init ([\d.]+) ms(?:; module ([\d.]+) ms)?\)")


@dataclass(frozen=True)
class ColdStart:
    function: str
    init_ms: float
    #: The function module's own init; None if the runtime did not report it.
    module_ms: float | None

    @property
    def stack_ms(self) -> float | None:
        """The stack's part: arrival -> fork or spawn -> runtime client -> import, then -> first poll."""
        return None if self.module_ms is None else self.init_ms - self.module_ms


def _cold_starts(stack: StackProcess) -> list[ColdStart]:
    """Every cold start the stack logged so far."""
    text = stack.log_file.read_text(encoding="utf-8", errors="replace")
    return [ColdStart(m.group(1), float(m.group(2)), None if m.group(3) is None else float(m.group(3)))
            for m in _COLD_LINE.finditer(text)]


def _wait_quiet(pid: int, bound: float = 10.0) -> None:
    """Return once the stack's processes stay the same and idle for 0.3 s (at most ``bound`` s)."""
    last, calm, deadline = None, 0, time.monotonic() + bound
    while calm < 3 and time.monotonic() < deadline:
        pids = frozenset(proc.pid for proc in psutil.Process(pid).children(recursive=True))
        used = sum(cpu_seconds(pid).values())
        calm = calm + 1 if last is not None and last[0] == pids and used - last[1] < 0.005 else 0
        last = (pids, used)
        time.sleep(0.1)


def _p50_max(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {max(values):.1f} ms"


async def _app_first_message(url: str, size: int) -> tuple[float, float]:
    """Seconds for the first handshake (authorizer + $connect) and the first echo after it."""
    ws, handshake = await _timed_connect(url)
    try:
        return handshake, await _round_trip(ws, _payload(-1, size))
    finally:
        await ws.close()


async def _app_rounds(url: str, connections: int, messages: int, size: int, meter: Meter) -> list[Run]:
    """The same load twice on the same connections: from the cold pool, then on the warm one."""
    sockets = [await _connect(url) for _ in range(connections)]
    runs = []
    try:
        for _ in range(2):
            latencies: list[float] = []
            before, started = meter(), time.perf_counter()
            await asyncio.gather(*(_one_client(ws, i * messages, messages, size, latencies)
                                   for i, ws in enumerate(sockets)))
            wall, after = time.perf_counter() - started, meter()
            runs.append(Run(latencies, wall, _per_message(before, after, len(latencies))))
        return runs
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def _noop_cold_starts(worker_start: str, count: int) -> list[float]:
    """Seconds from invoking a function with no init to its answer, on ``count`` cold starts.

    One unmeasured cold start first: with forking, it waits for the fork server to import.
    """
    from wsstack.model import Function
    from wsstack.runtime import LambdaRuntime

    runtime = LambdaRuntime(worker_start=worker_start)
    for i in range(count + 1):
        runtime.add_function(Function(logical_id=f"Noop{i}", handler="noop.handler", runtime="python3.13",
                                      code_dir=HERE / "coldstart"), {})
    await runtime.start()
    try:
        walls = []
        for i in range(count + 1):
            started = time.perf_counter()
            result = await runtime.invoke(f"Noop{i}", {})
            if not (result.ok and result.cold_start):
                raise RuntimeError(f"the no-init function's cold start failed: {result.error}")
            if i:
                walls.append(time.perf_counter() - started)
        return walls
    finally:
        await runtime.stop()


def run_app(args: argparse.Namespace, report: Report) -> None:
    """The app-shaped template from a cold pool: startup, cold starts, load, memory, round trips.

    Three stacks of it: the measured one (cold pool, scale-in at ``--app-idle-timeout``), one
    started as ``make up`` starts it (``--prewarm``) for the time to its first message, and
    one with spawned workers for the cold start it replaces.
    """
    n, c, m, size = args.round_trips, args.connections, args.messages, args.message_bytes
    with _floor_server() as (url, meter):
        floor = asyncio.run(_sequential(url, n, args.warmup, size, meter))
    f50 = _percentile(floor.latencies, 50)
    extra = [*shlex.split(args.app_args), "--idle-worker-timeout", str(args.app_idle_timeout)]
    with _stack(args, "app", APP_TEMPLATE, None, extra) as stack:
        url = _app_url(stack)
        handshake, first = asyncio.run(_app_first_message(url, size))
        cpu = lambda: cpu_seconds(stack.pid)  # noqa: E731
        cold, warm = asyncio.run(_app_rounds(url, c, m, size, cpu))
        # The clients' closes start $disconnect invocations (and workers for them): counted
        # once they are done, so the figure does not depend on when it is read.
        _wait_quiet(stack.pid)
        after = memory_snapshot(stack.pid, pss=True)
        processes = len(psutil.Process(stack.pid).children(recursive=True)) + 1
        ours = asyncio.run(_sequential(url, n, args.warmup, size, cpu))
        paced = asyncio.run(_sequential(url, n, 0, size, cpu, args.app_pause_ms / 1000)) if args.app_pause_ms else None
        post_wall, _ = _boto3_post_cost(stack, n, https=True)
        inits = _cold_starts(stack)
        idle = None
        if args.app_idle_seconds:
            _progress(f"  idle for {args.app_idle_seconds:.0f} s (scale-in after {args.app_idle_timeout:.0f} s)")
            time.sleep(args.app_idle_seconds)
            idle = memory_snapshot(stack.pid, pss=True)
    report.add("app", "wsstack up -> ready (cold pool)", f"{stack.ready_s:.2f} s")
    report.add("app", "  first handshake (authorizer + $connect)", _ms(handshake))
    report.add("app", "  first message's echo after it", _ms(first))
    report.add("app", "  up -> first message answered", f"{stack.ready_s + handshake + first:.2f} s")
    with _stack(args, "app-prewarm", APP_TEMPLATE, None, [*shlex.split(args.app_args), "--prewarm"]) as warmed:
        w_handshake, w_first = asyncio.run(_app_first_message(_app_url(warmed), size))
    report.add("app", "as make up (--prewarm): up -> ready", f"{warmed.ready_s:.2f} s")
    report.add("app", "  first handshake / first echo", f"{_ms(w_handshake)} / {_ms(w_first)}")
    report.add("app", "  up -> first message answered", f"{warmed.ready_s + w_handshake + w_first:.2f} s")
    cold99, warm99 = _percentile(cold.latencies, 99), _percentile(warm.latencies, 99)
    report.add("app", f"{c} x {m} from a cold pool, messages/s", f"{cold.rate:,.0f}/s",
               f">= 0.8x warm ({0.8 * warm.rate:,.0f}/s)", cold.rate >= 0.8 * warm.rate)
    report.add("app", "  cold pool p50 / p99", f"{_ms(_percentile(cold.latencies, 50))} / {_ms(cold99)}",
               f"p99 <= 3x warm ({_ms(3 * warm99)})", cold99 <= 3 * warm99)
    report.add("app", f"{c} x {m} again on the warm pool, messages/s", f"{warm.rate:,.0f}/s")
    report.add("app", "  warm pool p50 / p99", f"{_ms(_percentile(warm.latencies, 50))} / {_ms(warm99)}")
    report.add("app", "  CPU per message, warm", _cpu_text(warm))
    if inits:
        report.add("app", f"worker cold starts ({len(inits)}): init p50 / max", _p50_max([i.init_ms for i in inits]))
        stack_ms = [i.stack_ms for i in inits if i.stack_ms is not None]
        module_ms = [i.module_ms for i in inits if i.module_ms is not None]
        if stack_ms:
            report.add("app", "  the stack's part (init less the module's import): p50 / max", _p50_max(stack_ms),
                       "<= 50 ms", statistics.median(stack_ms) <= 50)
            report.add("app", "  the function module's own init (its import): p50 / max", _p50_max(module_ms))
    forked = asyncio.run(_noop_cold_starts("fork", 5)) if FORK_AVAILABLE else []
    spawned_noop = asyncio.run(_noop_cold_starts("spawn", 5))
    if forked:
        report.add("app", "cold start of a function with no init, forked: p50 of 5",
                   _ms(statistics.median(forked)), "<= 50 ms", statistics.median(forked) <= 0.050)
    report.add("app", "  the same, spawned: p50 of 5", _ms(statistics.median(spawned_noop)))
    if "spawn" not in args.app_args:
        with _stack(args, "app-spawn", APP_TEMPLATE, None, [*shlex.split(args.app_args), "--worker-start", "spawn"]) \
                as spawned:
            asyncio.run(_app_first_message(_app_url(spawned), size))
            spawn_inits = _cold_starts(spawned)
        if spawn_inits:
            report.add("app", f"  the spawn path's cold starts ({len(spawn_inits)}): init p50",
                       f"{statistics.median(i.init_ms for i in spawn_inits):.1f} ms")
            spawn_stack = [i.stack_ms for i in spawn_inits if i.stack_ms is not None]
            if spawn_stack:
                report.add("app", "    the stack's part of it: p50 / max", _p50_max(spawn_stack))
    pss = after.total_pss_mb
    report.add("app", "whole stack after the load: RSS", f"{after.total_mb:.0f} MB ({processes} processes)")
    report.add("app", "  PSS (shared pages split)", "n/a" if pss is None else f"{pss:.0f} MB",
               "<= 350 MB", None if pss is None else pss <= 350)
    report.add("app", f"  workers ({after.workers} processes, + the fork server)", f"{after.workers_mb:.0f} MB RSS")
    if idle is not None and idle.total_pss_mb is not None:
        label = f"  PSS after {args.app_idle_seconds:.0f} s idle (scale-in after {args.app_idle_timeout:.0f} s)"
        report.add("app", label, f"{idle.total_pss_mb:.0f} MB ({idle.workers} workers)", "<= 200 MB",
                   idle.total_pss_mb <= 200)
    s50, s99 = _percentile(ours.latencies, 50), _percentile(ours.latencies, 99)
    budget = f50 + post_wall + 0.0004
    report.add("app", f"floor p50, {n} sequential", _ms(f50))
    report.add("app", "the echo's boto3 post over https alone, p50", _ms(post_wall))
    report.add("app", f"stack p50 / p99, {n} sequential", f"{_ms(s50)} / {_ms(s99)}",
               f"p50 <= floor + post + 0.4 ms ({_ms(budget)})", s50 <= budget)
    report.add("app", "  CPU per round trip, stack", _cpu_text(ours))
    if paced is not None:
        # The echo reaches the client before its invocation ends (the worker still reads the
        # post's answer and posts its own response): back to back, the next message's path
        # shares the CPUs with that tail. With a pause it does not, on a machine with room.
        report.add("app", f"  the same, {args.app_pause_ms:g} ms between messages: p50 / p99",
                   f"{_ms(_percentile(paced.latencies, 50))} / {_ms(_percentile(paced.latencies, 99))}",
                   f"p50 <= {_ms(budget)}", _percentile(paced.latencies, 50) <= budget)
    report.note("app: benchmarks/app/template.yaml, started with no --env-vars, so the echo posts through "
                "https://{domainName}/{stage} with the stack's CA; init is the runtime's own figure per cold start "
                "(from the invocation's arrival to the worker's first poll: the fork or spawn, plus the "
                "function module's own imports); the module's part is the import of the handler's module as the "
                "worker timed it, and the stack's part is the rest.")


RUNNERS: dict[str, Callable[[argparse.Namespace, Report], None]] = {
    "startup": run_startup,
    "rtt": run_rtt,
    "throughput": run_throughput,
    "app": run_app,
    "idle": run_idle,
}


# ------------------------------------------------------------------------------ main


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _scenarios(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {', '.join(unknown)}; pick from {', '.join(SCENARIOS)}")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Measure the local stack's speed and memory; print each figure next to its target. "
        "Nothing is asserted: the exit status is 0 unless a scenario could not run.",
    )
    parser.add_argument("--only", type=_scenarios, default=list(SCENARIOS), metavar="LIST",
                        help=f"comma-separated scenarios to run (default: {','.join(SCENARIOS)})")
    parser.add_argument("--round-trips", type=_positive, default=200,
                        help="rtt: sequential round trips (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="rtt: unmeasured round trips first (default %(default)s)")
    parser.add_argument("--connections", type=_positive, default=20,
                        help="throughput: connections (default %(default)s)")
    parser.add_argument("--messages", type=_positive, default=50,
                        help="throughput: messages per connection (default %(default)s)")
    parser.add_argument("--message-bytes", type=_positive, default=64,
                        help="size of each message (default %(default)s)")
    parser.add_argument("--idle-connections", type=_positive, default=10_000,
                        help="idle: connections held at once (default %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=120.0,
                        help="idle: seconds allowed to open them, and again to close them (default %(default)s)")
    parser.add_argument("--startup-runs", type=_positive, default=3,
                        help="startup: measured launches per variant, after one unmeasured (default %(default)s)")
    parser.add_argument("--no-seed", action="store_true", help="startup: skip the variant with the seed script")
    parser.add_argument("--app-args", default="", metavar="ARGS",
                        help="app: further wsstack up arguments for its stack, e.g. '--worker-start spawn'")
    parser.add_argument("--app-idle-timeout", type=float, default=20.0, metavar="SECONDS",
                        help="app: the stack's --idle-worker-timeout (default %(default)s)")
    parser.add_argument("--app-idle-seconds", type=float, default=40.0, metavar="SECONDS",
                        help="app: seconds idle after the load before memory is read again; 0 skips it "
                        "(default %(default)s)")
    parser.add_argument("--app-pause-ms", type=float, default=5.0, metavar="MS",
                        help="app: also time the sequential round trips with this pause between them, so that "
                             "each invocation has ended before the next message (0: not)")
    parser.add_argument("--stack-log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="the stack's --log-level; INFO is what make up runs (default %(default)s)")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy each stack's log into DIR")
    parser.add_argument("--profile-dir", metavar="DIR",
                        help="run each stack under cProfile, writing DIR/<scenario>.prof (figures then "
                        "include the profiler's overhead)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    return parser


def _header(load_before: float) -> str:
    cpus = os.cpu_count()
    memory = psutil.virtual_memory().total / 2**30
    # Other work on the machine shows up as latency: the load average tells a quiet run
    # from a noisy one.
    return (f"wsstack bench: {platform.system()} {platform.machine()}, {cpus} CPUs, {memory:.0f} GiB, "
            f"Python {platform.python_version()}, websockets {websockets.__version__}; "
            f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = Report()
    failed = []
    load_before = os.getloadavg()[0]
    for name in args.only:
        _progress(f"--- {name}")
        started = time.perf_counter()
        try:
            RUNNERS[name](args, report)
        except Exception as exc:  # one broken scenario must not hide the others' figures
            failed.append(name)
            report.note(f"{name} could not run: {type(exc).__name__}: {exc}")
        _progress(f"--- {name} done in {time.perf_counter() - started:.1f} s")
    print(_header(load_before))
    print(report.render())
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": [asdict(r) for r in report.rows], "notes": report.notes},
                                              indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
