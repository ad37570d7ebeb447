"""Is an agent still there?

An agent is live while its *owner process* lives, or - where no owner process
can be seen from here - while its last heartbeat is fresher than a TTL.

The owner process is identified by ``(host, boot id, pid namespace, pid,
process start time)``.  A pid alone is not an identity: pids are recycled, and a recycled pid
must not keep a dead holder's claims alive (the peers' ``kill(pid, 0)`` check
does exactly that).  On Linux the start time is field 22 of
``/proc/<pid>/stat`` (clock ticks since boot) and the boot id comes from
``/proc/sys/kernel/random/boot_id``; elsewhere the start time is unknown and the
check falls back to ``kill(pid, 0)``, treating EPERM as alive.

A pid means something only in its pid namespace: an owner in another pid
namespace on this host (a container sharing the project by bind mount, an
``unshare --pid`` child) cannot be looked up by its pid from here, so it is
judged by its heartbeat, like an agent on another host - never declared dead
because its pid is not (or is another process) in this namespace's /proc.  The
namespace is the inode of ``/proc/self/ns/pid``.  :func:`verdict` says, for
``doctor``, whether a record that is not live can be judged gone from here (it
cannot when its namespace may still exist out of sight).

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
_PID_NS: list[str | None] = []
# the initial pid namespace's inode (PROC_PID_INIT_INO): from it every pid namespace of the host is visible
INIT_PID_NS = "4026531836"


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


def pid_ns() -> str | None:
    """The inode of this process's pid namespace (``/proc/self/ns/pid``), or ``None`` when unknown."""
    if not _PID_NS:
        _PID_NS.append(_ns_inode("/proc/self/ns/pid"))
    return _PID_NS[0]


def _ns_inode(link: str) -> str | None:
    try:
        target = os.readlink(link)  # "pid:[4026531836]"
    except OSError:
        return None
    inode = target[target.find("[") + 1:-1]
    return inode if target.startswith("pid:[") and inode.isdigit() else None


def other_namespace(agent: dict) -> bool:
    """True when the agent's owner pid is counted in another pid namespace than this process's."""
    theirs, ours = agent.get("pid_ns"), pid_ns()
    return theirs is not None and ours is not None and theirs != ours


def same_namespace(a: dict, b: dict) -> bool:
    """False only when two records name different pid namespaces (an older record names none)."""
    x, y = a.get("pid_ns"), b.get("pid_ns")
    return x is None or y is None or x == y


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


def is_live(agent: dict, heartbeat_ttl: float, now: float | None = None) -> bool:
    """Judge an agent record (as stored: a dict) live or dead.

    Same host, same boot, same pid namespace, known pid: the owner process
    decides, whatever the heartbeat says.  Otherwise the heartbeat (``last_seen``)
    must be younger than ``heartbeat_ttl``.  A record that says it was made on
    this host but in an earlier boot is dead.
    """
    host_here = agent.get("host") == this_host()
    if host_here and agent.get("pid"):
        theirs, ours = agent.get("boot_id"), boot_id()
        if theirs is not None and ours is not None and theirs != ours:
            return False
        if not other_namespace(agent):
            return process_alive(int(agent["pid"]), agent.get("pid_start"))
    return heartbeat_fresh(agent, heartbeat_ttl, now)


def heartbeat_fresh(agent: dict, heartbeat_ttl: float, now: float | None = None) -> bool:
    """True when the agent's last heartbeat (``last_seen``) is younger than ``heartbeat_ttl``."""
    try:
        seen = parse_iso(agent.get("last_seen"))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return (now if now is not None else clock.now()) - seen <= heartbeat_ttl


def verdict(agent: dict, heartbeat_ttl: float) -> str:
    """``"live"``, ``"gone"`` or ``"unknown"``: what ``doctor`` may do with a record.

    ``unknown`` is an owner in another pid namespace of this host whose heartbeat is stale while
    its namespace may still exist: from the initial namespace every namespace is visible, so one
    with no process left in /proc is gone (and one whose owner pid is found there, with its start
    time, is alive); from anywhere else (inside a container) the owner cannot be seen at all.
    ``doctor --fix`` removes only what is ``gone``.
    """
    if is_live(agent, heartbeat_ttl):
        return "live"
    if not (agent.get("pid") and agent.get("host") == this_host() and other_namespace(agent)):
        return "gone"
    theirs = agent.get("boot_id")
    if theirs is not None and boot_id() is not None and theirs != boot_id():
        return "gone"
    seen = _in_namespace(str(agent["pid_ns"]), int(agent["pid"]), agent.get("pid_start"))
    if seen == "found":
        return "live"  # seen from a parent namespace: its owner runs, only its heartbeat is old
    if seen == "absent" or (seen == "unseen" and pid_ns() == INIT_PID_NS):
        return "gone"
    return "unknown"


def unjudged(agent: dict, judged: str) -> str:
    """What ``doctor`` says of a record that is not live by its heartbeat but not judged gone."""
    who = (f"{agent.get('name')} (pid {agent.get('pid')} in pid namespace {agent.get('pid_ns')} on "
           f"{agent.get('host')}) has not sent a heartbeat since {agent.get('last_seen')}, so its claims no "
           "longer count; ")
    if judged == "live":
        return who + ("its owner process still runs in that namespace, so the record is kept (keep a sidecar, "
                      "MCP server or `pi-mesh heartbeat` going there)")
    return who + ("its owner cannot be seen from this pid namespace, so the record is kept (run doctor where "
                  "that process is visible, or `pi-mesh leave` from its namespace)")


def _in_namespace(ns: str, pid: int, start: str | None) -> str:
    """Look for the process ``pid`` of pid namespace ``ns`` (started at ``start``) from here:
    ``"found"``; ``"absent"`` when processes of the namespace are visible but not that one;
    ``"unseen"`` when no process here is in the namespace; ``"unreadable"`` without /proc."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return "unreadable"
    seen = "unseen"
    for p in pids:
        if _ns_inode(f"/proc/{p}/ns/pid") != ns:
            continue
        seen = "absent"
        try:
            with open(f"/proc/{p}/status", encoding="ascii", errors="replace") as f:
                nspid = next((line.split()[1:] for line in f if line.startswith("NSpid:")), [])
        except OSError:
            continue
        if nspid and nspid[-1] == str(pid):
            fields = _stat_fields(int(p))
            if fields is not None and fields[0] not in ("Z", "X", "x") and (
                    start is None or (len(fields) > 19 and fields[19] == start)):
                return "found"
    return seen
