"""Run ``wsstack up`` as a child process and measure it from the outside.

The stack runs in its own process, as ``make up`` runs it, so the benchmark's clients never
share an event loop or the GIL with the gateway, and the memory figures are the stack's alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = [
    "ROOT", "MemorySnapshot", "PeakSampler", "StackProcess", "cpu_seconds", "memory_snapshot", "wsstack_command",
]

ROOT = Path(__file__).resolve().parents[1]
READY_LINE = "wsstack: ready"


def wsstack_command() -> list[str]:
    """The ``wsstack`` console script next to this interpreter, as ``make up`` runs it."""
    script = Path(sys.executable).with_name("wsstack")
    if script.exists():
        return [str(script)]
    found = shutil.which("wsstack")
    return [found] if found else [sys.executable, "-m", "wsstack.cli"]


@dataclass
class MemorySnapshot:
    """Resident memory of the stack's processes, grouped as the issue's targets group them.

    RSS counts shared pages (the interpreter, shared libraries) once per process, so the sum
    overstates what the stack costs the machine; PSS, when readable, splits shared pages
    between their users and is the fairer total.
    """

    gateway_mb: float = 0.0
    workers_mb: float = 0.0
    emulator_mb: float = 0.0
    other_mb: float = 0.0
    workers: int = 0
    total_pss_mb: float | None = None

    @property
    def total_mb(self) -> float:
        return self.gateway_mb + self.workers_mb + self.emulator_mb + self.other_mb


def _classified(pid: int) -> list[tuple[psutil.Process, str]]:
    """The stack process and its descendants, each with its group.

    A worker is a process running ``awslambdaric`` (a forked one names it in its title; the
    fork server counts with the workers, not as one) and the emulator one running
    ``wsstack.emulator``; anything they start belongs to their group, so a handler's own
    children count with the workers.
    """
    try:
        root = psutil.Process(pid)
        descendants = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    groups: dict[int, str] = {pid: "gateway"}
    found: list[tuple[psutil.Process, str]] = [(root, "gateway")]
    # psutil lists a parent before its children, so one pass sees every parent's group first.
    for proc in descendants:
        try:
            cmdline, parent = " ".join(proc.cmdline()), proc.ppid()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "awslambdaric" in cmdline or "wsstack.forkserver" in cmdline:
            group = "workers"  # the fork server's memory is the workers' shared part
        elif "wsstack.emulator" in cmdline:
            group = "emulator"
        else:
            group = groups.get(parent, "other")
        groups[proc.pid] = group
        found.append((proc, group))
    return found


def _is_worker(proc: psutil.Process) -> bool:
    try:
        return "awslambdaric" in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def memory_snapshot(pid: int, *, pss: bool = False) -> MemorySnapshot:
    """Sum the RSS of the stack process (gateway + Runtime API) and all its descendants."""
    snap = MemorySnapshot()
    pss_total: float | None = 0.0 if pss else None
    for proc, group in _classified(pid):
        try:
            rss = proc.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue  # exited while we looked: it holds no memory any more
        if pss_total is not None:
            try:
                pss_total += proc.memory_full_info().pss / 2**20
            except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
                pss_total = None  # a partial PSS sum would mislead: report none
        if group == "gateway":
            snap.gateway_mb += rss
        elif group == "workers":
            snap.workers_mb += rss
            snap.workers += _is_worker(proc)
        elif group == "emulator":
            snap.emulator_mb += rss
        else:
            snap.other_mb += rss
    snap.total_pss_mb = pss_total
    return snap


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system) used so far by each group of the stack's processes.

    Differences between two readings say where the work of what ran in between went; a
    process that exits in between takes its share with it, so read around steady work.
    """
    used = {"gateway": 0.0, "workers": 0.0, "emulator": 0.0, "other": 0.0}
    for proc, group in _classified(pid):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[group] += times.user + times.system
    return used


class PeakSampler:
    """Samples the stack's memory in a thread; keeps the snapshot with the largest total."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = MemorySnapshot()

    def _run(self) -> None:
        while not self._stop.is_set():
            snap = memory_snapshot(self._pid)
            if snap.total_mb > self.peak.total_mb:
                self.peak = snap
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class StackProcess:
    """``wsstack up`` on free ports; ``start()`` returns once it prints its ready line.

    Args:
        template: the SAM template to run.
        workdir: where its state file and log go.
        env_vars: the ``--env-vars`` overrides file, None for ``wsstack up``'s default.
        extra: further ``wsstack up`` arguments (``--seed ...``, ``--log-level ...``).
        command: a prefix replacing the ``wsstack`` executable (e.g. to run it under cProfile).
    """

    template: Path
    workdir: Path
    env_vars: Path | None = None
    extra: list[str] = field(default_factory=list)
    command: list[str] | None = None
    proc: subprocess.Popen[str] | None = None
    state: dict[str, object] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    #: Seconds from launching the process to its ready line.
    ready_s: float = 0.0
    #: The "Ready in N ms" figure the stack prints: its own start, without interpreter and imports.
    reported_ready_ms: float | None = None
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _started: float = 0.0
    _descendants: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def state_file(self) -> Path:
        return self.workdir / "stack.json"

    @property
    def log_file(self) -> Path:
        return self.workdir / "stack.log"

    def start(self, timeout: float = 60.0) -> StackProcess:
        args = [
            *(self.command or wsstack_command()), "up", "--template", str(self.template),
            "--port", "0", "--tls-port", "0", "--emulator-port", "0",
            "--state-file", str(self.state_file),
        ]
        if self.env_vars is not None:
            args += ["--env-vars", str(self.env_vars)]
        args += self.extra
        started = self._started = time.perf_counter()
        with open(self.log_file, "a", encoding="utf-8") as log:
            # The log goes to a file: one line per message would fill a pipe nobody reads,
            # and a file costs the stack about what a terminal does.
            self.proc = subprocess.Popen(
                args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            )
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError(f"wsstack up did not become ready; its log is in {self.log_file}:\n{self.tail()}")
            if line.strip().startswith("Ready in"):
                with contextlib.suppress(ValueError, IndexError):
                    self.reported_ready_ms = float(line.split()[2])
            if line.startswith(READY_LINE):
                self.ready_s = time.perf_counter() - started
                break
        self.state = json.loads(self.state_file.read_text(encoding="utf-8"))
        return self

    def wait_for_line(self, text: str, timeout: float = 60.0) -> float | None:
        """Seconds from launch until a stdout line containing ``text``; None if none came."""
        deadline = time.monotonic() + timeout
        if any(text in line for line in self.output):
            return None  # already gone past: its time was not taken
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                return None
            if text in line:
                return time.perf_counter() - self._started

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        return "".join(self.output[-lines:]) + "\n".join(text.splitlines()[-lines:])

    @property
    def websocket_url(self) -> str:
        return str(self.state["websocket_url"])

    def remember_descendants(self) -> None:
        """Note the pids of workers and the emulator, to make sure they go when we stop."""
        with contextlib.suppress(psutil.NoSuchProcess):
            self._descendants.update(p.pid for p in psutil.Process(self.pid).children(recursive=True))

    def stop(self, timeout: float = 15.0) -> int | None:
        """Ctrl-C the stack as a user would, then kill by pid whatever outlived it."""
        if self.proc is None:
            return None
        self.remember_descendants()
        code = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait(timeout=5)
        for pid in self._descendants:
            _kill_if_alive(pid)
        self._descendants.clear()
        return code


def _kill_if_alive(pid: int) -> None:
    # Only processes this stack started: check the pid still names one of them (it could
    # have been reused) by requiring it to be a Python process running our code.
    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return
    if any(name in cmdline for name in ("awslambdaric", "wsstack.forkserver", "wsstack.emulator")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
