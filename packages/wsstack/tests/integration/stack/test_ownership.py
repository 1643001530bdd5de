"""One stack per state file and data folder (a lock naming its holder), and ports checked at once."""

from __future__ import annotations

import os
import socket

import pytest

from wsstack.emulator import PortInUse
from wsstack.lockfile import LockFile, LockHeld
from wsstack.stack import check_ports


def test_a_held_lock_names_its_holder_and_is_free_again_once_released(tmp_path):
    path = tmp_path / "folder" / "lock"
    held = LockFile.acquire(path)

    with pytest.raises(LockHeld) as refused:
        LockFile.acquire(path)  # another open file, as another process would have

    assert refused.value.pid == os.getpid()
    held.release()
    assert not path.exists()  # nothing left behind by a stack that stopped
    LockFile.acquire(path).release()


def test_a_lock_file_left_by_a_process_that_died_is_taken_again(tmp_path):
    path = tmp_path / "lock"
    path.write_text("99999999\n")  # its holder is gone: nobody holds the lock

    lock = LockFile.acquire(path)

    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()


def test_free_ports_and_port_zero_pass():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    check_ports("127.0.0.1", {"--port": free, "--tls-port": 0, "--emulator-port": 0})


def test_a_port_given_twice_is_refused_in_one_sentence():
    with pytest.raises(PortInUse) as refused:
        check_ports("127.0.0.1", {"--port": 3001, "--tls-port": 3001, "--emulator-port": 0})

    assert str(refused.value) == (
        "Port 3001 is given to both --port and --tls-port; give each its own port, or --tls-port 0 for a free one."
    )


def test_one_busy_port_is_named_with_its_option():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse) as refused:
            check_ports("127.0.0.1", {"--port": 0, "--tls-port": port, "--emulator-port": 0})

    assert str(refused.value) == (
        f"Port {port} (--tls-port) is in use on 127.0.0.1; stop what uses it, or pass --tls-port 0 for a free port."
    )
