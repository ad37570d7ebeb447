"""The waiting line as files: ``queue/<path key>/<ticket id>-<agent>.json``.

``ls .pi/mesh/queue/src%2Fauth/`` shows who waits for ``src/auth`` in order
(ticket ids sort by the time each joined).  A ticket for several paths is one
file in each path's folder, all with the same content; the rules (FIFO, never
two holders, only live waiters, no waiting cycle) are in
:mod:`pi_mesh_plugin.store.queue_rules`.

Every change happens under the claims lock (``locks/reservations.lock``), the
one :mod:`.claims` takes for ``claim`` and ``release``: :meth:`FileQueue.settle_locked`
runs inside that lock at the start of every ``claim`` and at the end of every
``release`` and ``drop_dead``, so the grant of a freed claim is atomic with the
release that freed it, and a claim whose holder died or whose time ran out is
granted to the first live waiter by whoever next touches the claims:
``reserve``, ``release``, a heartbeat (:meth:`Mesh.heartbeat`), the slow path
of ``check`` (a covering claim that no longer counts), ``doctor``, and the
polling of ``pi-mesh reserve --wait``.

A grant writes, in this order: the claim files, the urgent "it is yours"
message, then removes the ticket files.  A process killed in between leaves
the ticket; the next settle finds the waiter already holding the paths and
grants again, which renews the same claim (one holder, never two) and sends
the message again (the message is at-least-once, the claim exactly one).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ...clock import iso, new_id
from ...clock import now as clock_now
from .. import queue_rules as Q
from . import fsio

if TYPE_CHECKING:
    from collections.abc import Callable

    from .claims import ClaimStore
    from .inbox import Inboxes


class FileQueue:
    def __init__(self, mesh_dir: str, claims: ClaimStore, inboxes: Inboxes,
                 waiter_live: Callable[[str, str | None], bool]) -> None:
        self.directory = os.path.join(mesh_dir, "queue")
        self.claims = claims
        self.inboxes = inboxes
        self.waiter_live = waiter_live
        claims.settle = self.settle_locked  # run inside the claims lock by claim, release, drop_dead

    # -- reading ------------------------------------------------------------
    def tickets(self) -> list[dict]:
        """Every stored ticket (each once), in line order; unreadable files are skipped."""
        seen: dict[str, dict] = {}
        for key in fsio.listdir(self.directory):
            folder = os.path.join(self.directory, key)
            for name in fsio.listdir(folder):
                tid = name.split("-", 2)
                if len(tid) < 3 or not name.endswith(".json"):
                    continue
                ticket_id = tid[0] + "-" + tid[1]
                if ticket_id in seen:
                    continue
                from ...schema import validate  # only when someone waits: the guard's path never imports it

                try:
                    seen[ticket_id] = validate("ticket", fsio.read_json(os.path.join(folder, name)))
                except (OSError, ValueError):
                    continue
        return sorted(seen.values(), key=lambda t: t["id"])

    def _files(self, t: dict) -> list[str]:
        return [os.path.join(self.directory, Q.path_key(p), f"{t['id']}-{t['agent']}.json") for p, _ in t["paths"]]

    def _remove(self, t: dict) -> None:
        for f in self._files(t):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
            try:
                os.rmdir(os.path.dirname(f))  # an empty line leaves no folder behind
            except OSError:
                pass

    # -- changing (all under the claims lock) --------------------------------
    def enqueue(self, agent: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
                ttl: float) -> dict:
        """Join the line for ``wanted``; see :meth:`pi_mesh_plugin.store.base.Store.enqueue`."""
        from ...errors import WaitCycle
        from ...schema import validate

        with self.claims._lock():
            now = clock_now()
            alive = self._alive(now)
            tickets = [t for t in self.tickets() if self.waiter_live(t["agent"], t.get("session"))]
            mine = [t for t in tickets if t["agent"] == agent and t["paths"] == [list(w) for w in wanted]]
            holders = Q.conflicting_holders(agent, wanted, alive)
            if mine:
                ticket = mine[0]  # asking again keeps one's place in line
            else:
                cycle = Q.find_cycle(agent, holders, tickets, alive) if holders else None
                if cycle:
                    raise WaitCycle(Q.deadlock_text(wanted, cycle), cycle)
                ticket = validate("ticket", {"schema": 1, "id": new_id(now), "agent": agent, "session": session,
                                             "paths": [list(w) for w in dict.fromkeys(wanted)], "reason": reason,
                                             "ttl": float(ttl), "queued": iso(now)})
                data = fsio.dumps(ticket)
                for f in self._files(ticket):
                    fsio.ensure_dir(os.path.dirname(f))
                    fsio.create_exclusive(f, data)
                tickets.append(ticket)
            granted = self.settle_locked()
            for t, made in granted:
                if t["id"] == ticket["id"]:
                    return {"granted": made, "ticket": ticket}
            place, ahead = Q.position(ticket, tickets)
            if not mine:
                self.inboxes.deliver([Q.system_message(h, Q.holder_notice(ticket, place), False, now)
                                      for h in holders])
            return {"granted": None, "ticket": ticket, "position": place, "ahead": ahead, "holders": holders}

    def withdraw(self, agent: str, paths: list[str] | None = None) -> list[dict]:
        """Leave the line: the agent's tickets touching ``paths`` (all when ``None``)."""
        with self.claims._lock():
            gone = [t for t in self.tickets() if t["agent"] == agent
                    and (paths is None or any(p in paths for p, _ in t["paths"]))]
            for t in gone:
                self._remove(t)
            return gone

    def settle(self) -> list[tuple[dict, list[dict]]]:
        """Grant what can be granted now (takes the claims lock)."""
        if not self.tickets():
            return []  # nobody waits (a ticket written after this look is settled by its own enqueue)
        with self.claims._lock():
            return self.settle_locked()

    def _alive(self, now: float) -> list[dict]:
        index = self.claims.index
        index.rescan()
        holders: dict = {}
        return [r for r in index.all() if self.claims.live(r, now, holders)]

    def settle_locked(self) -> list[tuple[dict, list[dict]]]:
        """Under the claims lock: drop dead waiters' tickets, grant the first live waiters whose paths are free.

        Returns ``[(ticket, claims made)]``."""
        if not os.path.isdir(self.directory):
            return []
        tickets = self.tickets()
        if not tickets:
            return []
        from ..claim_rules import new_claim

        now = clock_now()
        claims = self.claims
        index = claims.index
        index.rescan()
        holders: dict = {}
        current = index.all()
        alive = [r for r in current if claims.live(r, now, holders)]
        grant, dead = Q.plan(tickets, alive, self.waiter_live)
        for t in dead:
            self._remove(t)
        out = []
        if grant:
            stale = [r for r in current if not claims.live(r, now, holders)]
            claims._unlink(stale)  # what stood in the way and no longer counts
            for t in grant:
                made, renewed = [], []
                expires = iso(now + t["ttl"])
                for path, kind in t["paths"]:
                    rec, old = new_claim(t["agent"], t.get("session"), path, kind, t["reason"], now, expires, alive)
                    fsio.create_exclusive(os.path.join(claims.directory, rec["id"] + ".json"), fsio.dumps(rec))
                    made.append(rec)
                    renewed += old
                claims._unlink(renewed)
                alive += made
                try:
                    self.inboxes.deliver([Q.system_message(t["agent"], Q.grant_text(made, t["queued"]), True, now)])
                except OSError:
                    pass  # the claim is made; the waiter also sees it in its claims and in --wait
                self._remove(t)
                out.append((t, made))
            index.rescan()
            index.write_index_file()
        return out
