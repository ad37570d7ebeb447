"""Whose is each uncommitted change: ``git status`` joined with the edit ledger.

:func:`owned_changes` gives one :class:`Owned` per path git reports changed:
the ledger entry of its last write (if any), whether the file still holds
that content, and whether that content is already committed (the entry's
blob is HEAD's) - a committed write is nobody's uncommitted work any more.
:func:`whose` turns them into the rows ``pi-mesh whose`` prints.
"""

from __future__ import annotations

import os

from .gitstate import Change, GitError, status, toplevel
from .ledger import entries, file_state, live_names, matches

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..mesh import Mesh


class Owned:
    __slots__ = ("change", "path", "entry", "matches", "live", "alive")

    def __init__(self, change: Change, path: str, entry: dict | None, same: bool, live: bool,
                 alive: set[str] | None = None) -> None:
        self.change, self.path, self.entry, self.matches, self.live = change, path, entry, same, live
        self.alive = alive or set()

    def co_writers(self, top: str) -> list[str]:
        """The other live agents that wrote this file before its last writer and after its last commit:
        their work is in the file too."""
        earlier = [e for e in (self.entry or {}).get("earlier") or [] if e.get("agent") in self.alive
                   and e.get("agent") != self.agent]
        if not earlier:
            return []
        from ..clock import parse_iso
        from .gitstate import last_commit_time

        last = last_commit_time(top, self.change.path)
        since, exact = last if last else (None, False)
        out = []
        for e in earlier:
            try:
                t = parse_iso(e["ts"])
            except (KeyError, TypeError, ValueError):
                continue
            # Without the exact time of the commit, a write within its second may be either side of it: there
            # the content decides - committed only if HEAD holds it (else, on the safe side, the peer's work).
            if since is not None and (t < since or (not exact and t < since + 1.0 and self._committed(e))):
                continue
            if e["agent"] not in out:
                out.append(e["agent"])
        return out

    def _committed(self, e: dict) -> bool:
        head = self.change.head
        return bool(e.get("deleted")) and head is None or (e.get("blob") is not None and e.get("blob") == head)

    @property
    def agent(self) -> str | None:
        return self.entry["agent"] if self.entry else None

    def pending(self, against: str = "head") -> bool:
        """Is the last recorded write uncommitted work - its content not what HEAD (or, with
        ``against="index"``, the index) holds?"""
        e = self.entry
        if e is None:
            return False
        base = self.change.head if against == "head" else self.change.index
        if e.get("deleted"):
            return base is not None
        return e.get("blob") is None or e["blob"] != base

    def to_dict(self) -> dict:
        e = self.entry or {}
        return {"path": self.path, "status": self.change.xy, "agent": self.agent, "live": self.live,
                "matches": self.matches, "written": e.get("ts"), "tool": e.get("tool"),
                "handed_over_by": e.get("handed_over_by")}


def repo_top(mesh: Mesh, cwd: str | None = None) -> str:
    top = toplevel(cwd or mesh.cwd)
    if top is None:
        from ..errors import UsageError

        raise UsageError(f"{cwd or mesh.cwd} is not inside a git working tree")
    return top


def owned_changes(mesh: Mesh, top: str, changes: list[Change] | None = None) -> list[Owned]:
    changes = status(top) if changes is None else changes
    keyed: list[tuple[Change, str]] = []
    for ch in changes:
        try:
            c = mesh.canonical(os.path.join(top, ch.path))
        except Exception:  # noqa: BLE001 - a path the mesh cannot name has no ledger entry
            c = None
        if c is not None:
            keyed.append((ch, c))
    ledger = entries(mesh, [c for _, c in keyed]) if keyed else {}
    live = live_names(mesh) if ledger else set()
    out = []
    for ch, c in keyed:
        e = ledger.get(c)
        same = matches(e, file_state(os.path.join(top, ch.path))) if e else False
        out.append(Owned(ch, c, e, same, bool(e and e["agent"] in live), live))
    return out


def select(owned: list[Owned], mesh: Mesh, paths: list[str], cwd: str) -> list[Owned]:
    """Those of ``owned`` at or beneath one of ``paths`` (as given on a command line, relative to ``cwd``)."""
    from ..paths import is_within

    want = []
    for p in paths:
        c = mesh.canonical(p, cwd)
        if c is not None:
            want.append(c.rstrip("/") or ".")
    return [o for o in owned if any(is_within(o.path, w) for w in want)]


def whose(mesh: Mesh, paths: list[str] | None = None, cwd: str | None = None) -> list[dict]:
    """One row per changed file (``git status``): the agent that last wrote it, whether that agent is live,
    and whether the file still has the content it left."""
    cwd = cwd or mesh.cwd
    top = repo_top(mesh, cwd)
    try:
        owned = owned_changes(mesh, top)
    except GitError as e:
        from ..errors import UsageError

        raise UsageError(str(e)) from None
    if paths:
        owned = select(owned, mesh, paths, cwd)
    return [o.to_dict() for o in owned]


def describe(row: dict) -> str:
    if not row["agent"]:
        return "changed outside any agent"
    state = "live" if row["live"] else "gone"
    if row["matches"]:
        return f"{row['agent']} ({state})" + (f", handed over by {row['handed_over_by']}"
                                              if row.get("handed_over_by") else "")
    return f"changed outside any agent since {row['agent']} ({state}) wrote it"
