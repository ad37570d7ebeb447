"""Reservations: the atomic check-and-claim, release, and the guard's lookup.

``claim`` is one READ COMMITTED transaction that first takes
``pg_advisory_xact_lock(<claims>, hashtext(project))`` and only then reads the
claims that could overlap and writes its own.  Why this and not the others:

* an exclusion constraint cannot state the rule: overlap is "either path is an
  ancestor-or-self of the other, taking the claim kinds into account", and a
  claim only counts while it is unexpired *and its holder is live* - liveness
  is judged per reader (owner process on the same host, heartbeat TTL elsewhere)
  and changes with time, which no constraint can see; dead claims would block;
* SERIALIZABLE would be correct but turns contention into serialization
  failures that every claimant must retry (8 agents fighting over one tree
  abort most of their attempts), and its predicate locks on the range scans
  are coarse anyway;
* the advisory lock makes claimants of one project queue for a few hundred
  microseconds and leaves everything else alone: other projects use other
  keys, readers (``covering``, the guard's hot path) never take it - MVCC
  shows them the last committed claims - and PostgreSQL drops the lock when the
  transaction ends, including when the claimant's connection dies, so a killed
  agent never wedges the mesh.  READ COMMITTED matters: each statement after
  the lock takes a fresh snapshot, so the read sees every claim committed by
  the previous lock holder (REPEATABLE READ would have taken its snapshot at
  the lock statement, before waiting, and could miss it).

``idle_in_transaction_session_timeout`` bounds how long a frozen claimant can
hold the lock; ``lock_timeout`` turns an endless wait into a one-line error
(see :mod:`.connection`).  A dead agent's claims stop counting at once and are
deleted by the next overlapping ``claim`` or by ``doctor --fix``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ... import paths as P
from ...clock import iso
from ...errors import ReservationConflict
from .connection import LOCK_CLAIMS, columns
from .registry import AGENT_FIELDS, AGENT_TIMES, agent_row

if TYPE_CHECKING:
    from typing import Any

    from .connection import Conn, Cur, Database, Rec

RES_FIELDS = ("id", "holder", "session", "path", "kind", "reason", "created", "expires")
RES_TIMES = ("created", "expires")
_RES_COLS = columns(RES_FIELDS, RES_TIMES)


def reservation_row(row: tuple[Any, ...]) -> Rec:
    """A reservation record from the :data:`RES_FIELDS` columns of a row."""
    return {"schema": 1, **dict(zip(RES_FIELDS, row))}


def holder_live(rec: Rec, agent: Rec | None, is_live: Callable[[Rec], bool]) -> bool:
    """Whether the claim ``rec``'s holder is the live registered ``agent`` (of the claim's session, if it has one)."""
    return agent is not None and not (rec.get("session") and agent["session"] != rec["session"]) and is_live(agent)


class Claims:
    def __init__(self, db: Database, is_live: Callable[[Rec], bool]) -> None:
        self.db = db
        self.is_live = is_live
        # Set by the waiting line (.queue): run in the transaction of every claim (under the lock, before the
        # judgement) and every release (after the delete), so a freed claim goes to the first waiter atomically.
        self.settle_in: Callable[[Cur], object] | None = None

    def claim(self, holder: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
              ttl: float) -> list[Rec]:
        from ..claim_rules import conflict_message, find_conflicts, new_claim

        db = self.db
        wanted = [(p, k) for p, k in wanted]
        prefixes = sorted({q for p, _ in wanted for q in P.prefixes(p)})
        dirs = sorted({p for p, k in wanted if k == P.DIR})
        everything = P.ROOT in dirs

        params: list[Any]
        if everything:
            where, params = "r.project = %s", [db.project]
        else:
            where = ("r.project = %s AND (r.path = ANY(%s) OR EXISTS (SELECT 1 FROM unnest(%s::text[]) d(p) "
                     "WHERE r.path > d.p || '/' AND r.path < d.p || '0'))")
            params = [db.project, prefixes, dirs]
        # Every stored claim that could overlap a wanted path, with its holder's registration (to judge liveness).
        select = db.q(f"SELECT {columns(RES_FIELDS, RES_TIMES, 'r')}, a.name IS NOT NULL, "
                      f"{columns(AGENT_FIELDS, AGENT_TIMES, 'a')} FROM {{s}}.reservations r "
                      f"LEFT JOIN {{s}}.agents a ON a.project = r.project AND a.name = r.holder "
                      f"WHERE {where} ORDER BY r.id")

        def judge(cur: Cur) -> tuple[list[Rec], list[str], list[Rec], float]:
            """``(live claims, ids of dead ones, live claims of others in the way, now)``."""
            cur.execute(select, params)
            now = db.now()
            now_iso = iso(now)
            alive: list[Rec] = []
            dead: list[Rec] = []
            for row in cur.fetchall():
                rec = reservation_row(row[:8])
                a = agent_row(row[9:]) if row[8] else None
                ok = rec["expires"] > now_iso and holder_live(rec, a, self.is_live)
                (alive if ok else dead).append(rec)
            return alive, [r["id"] for r in dead], find_conflicts(holder, wanted, alive), now

        def go(conn: Conn) -> list[Rec]:
            # Lock-free first look: a live claim of another agent that is already committed refuses the request
            # as surely as it would under the lock, without queueing behind the claimants that can succeed.
            _, _, conflicts, now = judge(conn.cursor())
            if conflicts:
                raise ReservationConflict(conflict_message(wanted, conflicts, now), conflicts)
            with conn.transaction():
                cur = conn.cursor()
                # The one lock that makes check-and-claim atomic (see the module docstring).
                cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLAIMS, db.project))
                if self.settle_in is not None:
                    self.settle_in(cur)  # waiters first: a claim freed by expiry or death goes to the line
                alive, dead, conflicts, now = judge(cur)
                if conflicts:
                    raise ReservationConflict(conflict_message(wanted, conflicts, now), conflicts)
                expires = iso(now + ttl)
                made, gone = [], list(dead)
                for path, kind in dict.fromkeys(wanted):
                    rec, old = new_claim(holder, session, path, kind, reason, now, expires, alive)
                    made.append(rec)
                    gone += [r["id"] for r in old]
                cur.execute(db.q("DELETE FROM {s}.reservations WHERE project = %s AND (id = ANY(%s) OR expires <= %s)"),
                            (db.project, gone, iso(now)))
                cur.executemany(db.q("INSERT INTO {s}.reservations (project, id, holder, session, path, kind, "
                                     "reason, created, expires) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"),
                                [(db.project, r["id"], holder, session, r["path"], r["kind"], reason, r["created"],
                                  r["expires"]) for r in made])
                db.notify(cur, "reservations")
                return made

        return db.run(go, "reserving")  # type: ignore[no-any-return]

    def release(self, holder: str, paths: list[str] | None = None) -> list[Rec]:
        db = self.db
        cond = ""
        params: list[Any] = [db.project, holder]
        if paths is not None:
            cond = " AND path = ANY(%s)"
            params.append(list(paths))
        sql = db.q(f"""WITH d AS (DELETE FROM {{s}}.reservations WHERE project = %s AND holder = %s{cond}
                         RETURNING {_RES_COLS})
                       SELECT d.*, pg_notify(%s, 'reservations') FROM d""")
        def go(conn: Conn) -> list[tuple[Any, ...]]:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLAIMS, db.project))
                found = cur.execute(sql, [*params, db.project_channel]).fetchall()
                if self.settle_in is not None:
                    self.settle_in(cur)  # the grant commits with the release that made it possible
                return found

        rows = db.run(go, "releasing")
        return sorted((reservation_row(r) for r in rows), key=lambda r: r["id"])

    def reservations(self) -> list[Rec]:
        rows = self.db.fetchall(f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s ORDER BY id",
                                (self.db.project,), "reading claims")
        return [reservation_row(r) for r in rows]

    def held_by(self, holder: str) -> list[Rec]:
        rows = self.db.fetchall(f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s AND holder = %s "
                                "ORDER BY id", (self.db.project, holder), "reading claims")
        return [reservation_row(r) for r in rows]

    def covering(self, path: str, kind: str = "file") -> list[Rec]:
        """Claims on ``path``'s ancestors (directory claims) or on ``path`` itself; for a directory target also the
        claims beneath it.  One indexed query; the caller judges expiry and liveness."""
        prefixes = P.prefixes(path)
        project = self.db.project
        params: list[Any]
        if kind == P.DIR and path == P.ROOT:
            sql, params = f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s", [project]
        elif kind == P.DIR:
            sql = (f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s AND "
                   "((path = ANY(%s) AND (kind = 'dir' OR path = %s)) OR (path > %s AND path < %s))")
            params = [project, prefixes, path, path + "/", path + "0"]
        else:
            sql = (f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s AND path = ANY(%s) "
                   "AND (kind = 'dir' OR path = %s)")
            params = [project, prefixes, path]
        rows = self.db.fetchall(sql, params, "reading claims")
        depth = {p: i for i, p in enumerate(prefixes)}
        out = [reservation_row(r) for r in rows]
        out.sort(key=lambda r: (depth.get(r["path"], len(depth)), r["id"]))
        return out
