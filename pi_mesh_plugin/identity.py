"""Who is calling: the agent whose owner process is an ancestor of this process.

A hook command or a git hook started by a harness with no ``$PI_MESH_AGENT`` and no ``[mesh] agent`` is still
some agent's work when that harness joined the mesh itself (its ``pi-mesh mcp --harness ...`` registers the
harness's process as the owner).  This module is the one place that answers it, from the agent records
(:meth:`~pi_mesh_plugin.store.base.Store.list_agents`, ``get_agent``) and ``/proc``; an owner counts only on
this host and in this pid namespace, when its pid's start time still matches the record (a reused pid is someone else).  Light imports:
it is on the per-call hook path.
"""

from __future__ import annotations

import os

from .liveness import _stat_fields, other_namespace, process_start, this_host

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .store.base import Store


def ancestors(pid: int, limit: int = 32) -> list[int]:
    """``pid``'s parent, grandparent, ... nearest first (Linux ``/proc``; empty elsewhere)."""
    out: list[int] = []
    while pid > 1 and len(out) < limit:
        fields = _stat_fields(pid)
        if not fields or len(fields) < 2:
            break
        try:
            pid = int(fields[1])
        except ValueError:
            break
        if pid <= 0:
            break
        out.append(pid)
    return out


def _owned_here(rec: dict, chain: list[int] | set[int], host: str) -> bool:
    pid = rec.get("pid")
    return (isinstance(pid, int) and pid in chain and rec.get("host") == host and not other_namespace(rec)
            and (rec.get("pid_start") is None or process_start(pid) == rec["pid_start"]))


def caller_agent(store: Store, harness: str | None = None, pid: int | None = None) -> str | None:
    """The live agent (joined by ``harness``, when given) owned by the nearest ancestor of ``pid`` (this
    process) that owns any; ``None`` when there is none or that process owns several (ambiguous)."""
    chain = ancestors(os.getpid() if pid is None else pid)
    if not chain:
        return None
    host = this_host()
    by_pid: dict[int, list[str]] = {}
    for rec in store.list_agents():
        if (_owned_here(rec, chain, host) and (harness is None or rec.get("harness") == harness)
                and isinstance(rec.get("name"), str) and store.is_live(rec)):
            by_pid.setdefault(rec["pid"], []).append(rec["name"])
    for p in chain:
        names = by_pid.get(p)
        if names:
            return names[0] if len(names) == 1 else None
    return None


def is_callers(store: Store, name: str, harness: str) -> bool:
    """Was ``name`` joined by ``harness`` whose process is an ancestor of this one (so this call is its own)?"""
    rec = store.get_agent(name)
    return bool(rec and rec.get("harness") == harness and _owned_here(rec, ancestors(os.getpid()), this_host()))
