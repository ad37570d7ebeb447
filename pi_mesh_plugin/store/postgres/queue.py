"""The waiting line in PostgreSQL: the ``queue`` table (migration 2).

Every change to the line, and every grant, happens inside a transaction
holding the claims lock (``pg_advisory_xact_lock(<claims>, hashtext(project))``,
see :mod:`.claims`): :meth:`PgQueue.settle_in` runs inside the transaction of
every ``claim`` (before it judges) and every ``release`` (after it deletes),
so the grant of a freed claim commits with the release that freed it.  The
grant inserts the waiter's claims, its urgent "it is yours" message (with
``pg_notify`` on the waiter's mail channel: the waiter's sidecar, MCP server
or ``wait_for_mail`` wakes at the commit) and deletes the ticket, all in that
one transaction.  Expiry and deaths are noticed as on the file store: by the
next claim, release, heartbeat, slow check, doctor or ``reserve --wait`` poll.
The rules themselves are :mod:`pi_mesh_plugin.store.queue_rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...clock import iso, new_id
from .. import queue_rules as Q
from .claims import RES_FIELDS, RES_TIMES, holder_live, reservation_row
from .connection import LOCK_CLAIMS, columns
from .registry import AGENT_FIELDS, AGENT_TIMES, agent_row

if TYPE_CHECKING:
    from typing import Any

    from .connection import Conn, Cur, Database, Rec

_T_FIELDS = ("id", "agent", "session", "paths", "reason", "ttl", "queued")
_T_COLS = columns(_T_FIELDS, ("queued",))


def _ticket(row: tuple[Any, ...]) -> Rec:
    return {"schema": 1, **dict(zip(_T_FIELDS, row))}


class PgQueue:
    def __init__(self, db: Database, is_live: Callable[[Rec], bool]) -> None:
        self.db = db
        self.is_live = is_live

    def _lock(self, cur: Cur) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLAIMS, self.db.project))

    def _tickets(self, cur: Cur) -> list[Rec]:
        cur.execute(self.db.q(f"SELECT {_T_COLS} FROM {{s}}.queue WHERE project = %s ORDER BY id"), (self.db.project,))
        return [_ticket(r) for r in cur.fetchall()]

    def _state(self, cur: Cur) -> tuple[list[Rec], list[Rec], dict[str, Rec]]:
        """``(live claims, dead claims, {name: agent record})`` of the project, read under the lock."""
        db = self.db
        cur.execute(db.q(f"SELECT {columns(AGENT_FIELDS, AGENT_TIMES)} FROM {{s}}.agents WHERE project = %s"),
                    (db.project,))
        agents = {a["name"]: a for a in (agent_row(r) for r in cur.fetchall())}
        cur.execute(db.q(f"SELECT {columns(RES_FIELDS, RES_TIMES)} FROM {{s}}.reservations WHERE project = %s "
                         "ORDER BY id"), (db.project,))
        now_iso = iso(self.db.now())
        alive: list[Rec] = []
        dead: list[Rec] = []
        for r in (reservation_row(row) for row in cur.fetchall()):
            ok = r["expires"] > now_iso and holder_live(r, agents.get(r["holder"]), self.is_live)
            (alive if ok else dead).append(r)
        return alive, dead, agents

    def _waiter_live(self, agents: dict[str, Rec]) -> Callable[[str, str | None], bool]:
        def live(name: str, session: str | None) -> bool:
            a = agents.get(name)
            return a is not None and (session is None or a["session"] == session) and bool(self.is_live(a))
        return live

    def _deliver(self, cur: Cur, messages: list[Rec]) -> None:
        db = self.db
        for m in messages:
            cur.execute(db.q("""WITH ins AS (
                  INSERT INTO {s}.messages (project, recipient, id, sender, body, urgent, created)
                  VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (project, recipient, id) DO NOTHING RETURNING 1)
                SELECT pg_notify(%s, %s), pg_notify(%s, 'inbox') FROM ins"""),
                        (db.project, m["to"], m["id"], m["from"], m["text"], m["urgent"], m["created"],
                         db.mail_channel(m["to"]), m["id"], db.project_channel))

    def settle_in(self, cur: Cur) -> list[tuple[Rec, list[Rec]]]:
        """Inside a transaction holding the claims lock: drop dead waiters, grant the first live ones."""
        from ..claim_rules import new_claim

        db = self.db
        tickets = self._tickets(cur)
        if not tickets:
            return []
        alive, dead_claims, agents = self._state(cur)
        grant, dead = Q.plan(tickets, alive, self._waiter_live(agents))
        if dead:
            cur.execute(db.q("DELETE FROM {s}.queue WHERE project = %s AND id = ANY(%s)"),
                        (db.project, [t["id"] for t in dead]))
        out = []
        if grant:
            now = self.db.now()
            gone = [r["id"] for r in dead_claims]
            for t in grant:
                made = []
                expires = iso(now + t["ttl"])
                for path, kind in t["paths"]:
                    rec, old = new_claim(t["agent"], t.get("session"), path, kind, t["reason"], now, expires, alive)
                    made.append(rec)
                    gone += [r["id"] for r in old]
                alive += made
                out.append((t, made))
            cur.execute(db.q("DELETE FROM {s}.reservations WHERE project = %s AND id = ANY(%s)"), (db.project, gone))
            cur.executemany(db.q("INSERT INTO {s}.reservations (project, id, holder, session, path, kind, reason, "
                                 "created, expires) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"),
                            [(db.project, r["id"], r["holder"], r["session"], r["path"], r["kind"], r["reason"],
                              r["created"], r["expires"]) for _, made in out for r in made])
            cur.execute(db.q("DELETE FROM {s}.queue WHERE project = %s AND id = ANY(%s)"),
                        (db.project, [t["id"] for t, _ in out]))
            self._deliver(cur, [Q.system_message(t["agent"], Q.grant_text(made, t["queued"]), True, now)
                                for t, made in out])
            db.notify(cur, "reservations")
        return out

    def enqueue(self, agent: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
                ttl: float) -> Rec:
        from psycopg.types.json import Jsonb

        from ...errors import WaitCycle

        db = self.db

        def go(conn: Conn) -> Rec:
            with conn.transaction():
                cur = conn.cursor()
                self._lock(cur)
                alive, _, agents = self._state(cur)
                live = self._waiter_live(agents)
                tickets = [t for t in self._tickets(cur) if live(t["agent"], t.get("session"))]
                paths = [list(w) for w in dict.fromkeys(wanted)]
                mine = [t for t in tickets if t["agent"] == agent and t["paths"] == paths]
                holders = Q.conflicting_holders(agent, wanted, alive)
                now = self.db.now()
                if mine:
                    ticket = mine[0]
                else:
                    cycle = Q.find_cycle(agent, holders, tickets, alive) if holders else None
                    if cycle:
                        raise WaitCycle(Q.deadlock_text(wanted, cycle), cycle)
                    ticket = {"schema": 1, "id": new_id(now), "agent": agent, "session": session, "paths": paths,
                              "reason": reason, "ttl": float(ttl), "queued": iso(now)}
                    cur.execute(db.q("INSERT INTO {s}.queue (project, id, agent, session, paths, reason, ttl, queued) "
                                     "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"),
                                (db.project, ticket["id"], agent, session, Jsonb(paths), reason, float(ttl),
                                 ticket["queued"]))
                    tickets.append(ticket)
                for t, made in self.settle_in(cur):
                    if t["id"] == ticket["id"]:
                        return {"granted": made, "ticket": ticket}
                place, ahead = Q.position(ticket, tickets)
                if not mine:
                    self._deliver(cur, [Q.system_message(h, Q.holder_notice(ticket, place), False, now)
                                        for h in holders])
                return {"granted": None, "ticket": ticket, "position": place, "ahead": ahead, "holders": holders}

        return db.run(go, "queueing")  # type: ignore[no-any-return]

    def withdraw(self, agent: str, paths: list[str] | None = None) -> list[Rec]:
        db = self.db

        def go(conn: Conn) -> list[Rec]:
            with conn.transaction():
                cur = conn.cursor()
                self._lock(cur)
                gone = [t for t in self._tickets(cur) if t["agent"] == agent
                        and (paths is None or any(p in paths for p, _ in t["paths"]))]
                if gone:
                    cur.execute(db.q("DELETE FROM {s}.queue WHERE project = %s AND id = ANY(%s)"),
                                (db.project, [t["id"] for t in gone]))
                return gone

        return db.run(go, "leaving the line")  # type: ignore[no-any-return]

    def tickets(self) -> list[Rec]:
        rows = self.db.fetchall(f"SELECT {_T_COLS} FROM {{s}}.queue WHERE project = %s ORDER BY id",
                                (self.db.project,), "reading the line")
        return [_ticket(r) for r in rows]

    def settle(self) -> list[tuple[Rec, list[Rec]]]:
        if not self.tickets():
            return []  # nobody waits (a ticket added after this look is settled by its own enqueue)

        def go(conn: Conn) -> list[tuple[Rec, list[Rec]]]:
            with conn.transaction():
                cur = conn.cursor()
                self._lock(cur)
                return self.settle_in(cur)

        return self.db.run(go, "granting queued claims")  # type: ignore[no-any-return]

    def mark_once(self, key: str) -> bool:
        rows = self.db.fetchall("INSERT INTO {s}.notices (project, key) VALUES (%s, %s) ON CONFLICT DO NOTHING "
                                "RETURNING 1", (self.db.project, key), "marking a notice")
        return bool(rows)
