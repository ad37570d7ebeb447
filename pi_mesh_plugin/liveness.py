"""Is an agent still there?

An agent is live while its *owner process* lives, or - where no owner process
can be seen from here - while its last heartbeat is fresher than a TTL.

The owner process is identified by ``(host, boot id, pid, process start
time)``.  A pid alone is not an identity: pids are recycled, and a recycled pid
must not keep a dead holder's claims alive (the peers' ``kill(pid, 0)`` check
does exactly that).  On Linux the start time is field 22 of
``/proc/<pid>/stat`` (clock ticks since boot) and the boot id comes from
``/proc/sys/kernel/random/boot_id``; elsewhere the start time is unknown and the
check falls back to ``kill(pid, 0)``, treating EPERM as alive.

Agents on another host (as PostgreSQL lets them be) are judged by heartbeat
only.  ``PI_MESH_HOSTNAME`` overrides the host name, so tests can pretend to
be on several machines.

Standard library only: this module is on the per-call guard path.
"""

from __future__ import annotations

import os

from . import clock
from .clock import parse_iso

_BOOT_ID: list[str | None] = []


def this_host() -> str:
    return os.environ.get("PI_MESH_HOSTNAME") or os.uname().nodename


def boot_id() -> str | None:
    if not _BOOT_ID:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
                _BOOT_ID.append(f.read().strip())
        except OSError:
            _BOOT_ID.append(None)
    return _BOOT_ID[0]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        raw = os.read(fd, 4096)  # the whole line (a few hundred bytes) in one read
    except ProcessLookupError:
        return None
    finally:
        os.close(fd)
    # comm may hold spaces and parentheses: split after the last ')'.  The fields after it are
    # ASCII numbers and a state letter; only the first 20 (state ... start time) are wanted.
    tail = raw[raw.rfind(b")") + 2:].split(None, 20)[:20]
    return b"\0".join(tail).decode("ascii", "replace").split("\0")


def _have_proc() -> bool:
    """Whether /proc describes processes (Linux); looked up once per process."""
    if not _PROC:
        _PROC.append(os.path.isdir("/proc/self"))
    return _PROC[0]


_PROC: list[bool] = []


def process_start(pid: int) -> str | None:
    """An opaque start-time token for ``pid``, or ``None`` when it cannot be read."""
    if not _have_proc():
        return None
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return fields[19]  # field 22 of stat, counted after pid and comm


def process_alive(pid: int, start: str | None) -> bool:
    """True when the process ``pid`` exists and, if ``start`` is known, began at ``start``."""
    if pid <= 0:
        return False
    if _have_proc():
        fields = _stat_fields(pid)
        if fields is None:
            return False
        if fields[0] in ("Z", "X", "x"):  # zombie or dead: gone, only not yet reaped
            return False
        return start is None or (len(fields) > 19 and fields[19] == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_local(agent: dict) -> bool:
    """True when the agent's owner process runs on this host (and since this boot)."""
    if not agent.get("pid") or agent.get("host") != this_host():
        return False
    theirs, ours = agent.get("boot_id"), boot_id()
    return theirs is None or ours is None or theirs == ours


def is_live(agent: dict, heartbeat_ttl: float, now: float | None = None) -> bool:
    """Judge an agent record (as stored: a dict) live or dead.

    Same host, same boot, known pid: the owner process decides, whatever the
    heartbeat says.  Otherwise the heartbeat (``last_seen``)
    must be younger than ``heartbeat_ttl``.  A record that says it was made on
    this host but in an earlier boot is dead.
    """
    host_here = agent.get("host") == this_host()
    if host_here and agent.get("pid"):
        theirs, ours = agent.get("boot_id"), boot_id()
        if theirs is not None and ours is not None and theirs != ours:
            return False
        return process_alive(int(agent["pid"]), agent.get("pid_start"))
    try:
        seen = parse_iso(agent.get("last_seen"))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return (now if now is not None else clock.now()) - seen <= heartbeat_ttl
