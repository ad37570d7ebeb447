"""Liveness of an agent's owner process: pid plus start time, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pi_mesh_plugin.liveness import process_alive, process_start

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")


def reference_start(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat, parsed the plain way (comm is everything up to the last ')')."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    return raw[raw.rfind(b")") + 2:].split()[19].decode()


def test_own_process_is_alive_with_its_start_and_dead_with_another():
    me = os.getpid()
    start = process_start(me)
    assert start == reference_start(me)
    assert process_alive(me, start) and process_alive(me, None)
    assert not process_alive(me, str(int(start) + 1))  # same pid, another process (pid reused)
    assert not process_alive(0, None) and not process_alive(-1, None)


def test_a_command_name_with_spaces_and_parentheses_is_parsed():
    # a process may name itself anything (prctl / /proc/self/comm): the start time must still be found
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                              "with open('/proc/self/comm', 'w') as f: f.write(') x) (y 1 2')\n"
                              "print('named', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "named"
        with open(f"/proc/{child.pid}/comm") as f:
            assert ")" in f.read()
        assert process_start(child.pid) == reference_start(child.pid)
        assert process_alive(child.pid, process_start(child.pid))
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]


def test_a_zombie_and_a_reaped_process_are_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = None
    while start is None:  # read it while it runs (or, at worst, as a zombie: same start time)
        start = process_start(child.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited but not reaped: a zombie
        with open(f"/proc/{child.pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                break
        time.sleep(0.01)
    assert not process_alive(child.pid, start)
    child.wait()
    assert not process_alive(child.pid, start)
