"""The agents table: register (race-free, taking over a dead agent's name), heartbeats, leaving.

Liveness across machines is :func:`pi_mesh_plugin.liveness.is_live`: an agent
on this host (and boot) with a known pid lives exactly as long as its process;
any other is live while its ``last_seen`` heartbeat is younger than the
heartbeat TTL.  A crashed machine stops heartbeating, so its agents die after
the TTL and their claims stop counting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import NameTaken, StoreError
from ...liveness import is_live, same_namespace
from ..takeover import inherits
from .connection import columns

if TYPE_CHECKING:
    from typing import Any

    from .connection import Conn, Cur, Database, Rec

AGENT_FIELDS = ("name", "session", "pid", "pid_start", "host", "boot_id", "pid_ns", "cwd", "harness", "model",
                "started", "last_seen", "status", "activity")
AGENT_TIMES = ("started", "last_seen")
_AGENT_COLS = columns(AGENT_FIELDS, AGENT_TIMES)


def agent_row(row: tuple[Any, ...]) -> Rec:
    """An agent record from the :data:`AGENT_FIELDS` columns of a row."""
    d = {"schema": 1, **dict(zip(AGENT_FIELDS, row))}
    for k in ("status", "activity", "pid_ns"):
        if d[k] is None:
            del d[k]
    return d


class Registry:
    def __init__(self, db: Database, heartbeat_ttl: float) -> None:
        self.db = db
        self.heartbeat_ttl = heartbeat_ttl
        self._registered_project = False

    def is_live(self, agent: Rec) -> bool:
        return is_live(agent, self.heartbeat_ttl, self.db.now())

    def register(self, agent: Rec) -> Rec:
        from ...schema import validate

        db = self.db
        rec = validate("agent", dict(agent), "agent")
        name = rec["name"]

        def go(conn: Conn) -> Rec:
            with conn.transaction():
                cur = conn.cursor()
                if not self._registered_project:
                    cur.execute(db.q("""INSERT INTO {s}.projects (project, root) VALUES (%s, %s)
                        ON CONFLICT (project) DO UPDATE SET last_seen = now(), root = EXCLUDED.root"""),
                                (db.project, db.root))
                for _ in range(3):
                    row = self._lock_row(cur, name)
                    if row is not None:
                        break
                    cur.execute(db.q("INSERT INTO {s}.agents (project, " + ", ".join(AGENT_FIELDS) + ") VALUES ("
                                     + ", ".join(["%s"] * (len(AGENT_FIELDS) + 1))
                                     + ") ON CONFLICT (project, name) DO NOTHING"), self._params(rec))
                    if cur.rowcount == 1:
                        db.notify(cur, "agents")
                        return {"agent": rec, "replaced": None, "orphaned": 0, "handed": 0}
                else:  # pragma: no cover - inserted and deleted by others three times in a row
                    raise StoreError(f"PostgreSQL store {db.url}: could not register {name}: the name keeps changing")
                old = agent_row(row)
                same_owner = (old["pid"] == rec["pid"] and old.get("pid_start") == rec.get("pid_start")
                              and old["host"] == rec["host"] and rec["pid"] != 0 and same_namespace(old, rec))
                replaced, orphaned, handed = None, 0, 0
                if old["session"] == rec["session"] or same_owner:
                    new = {**rec, "session": old["session"], "started": old["started"]}
                elif self.is_live(old):
                    raise NameTaken(name, old.get("pid"), old.get("host"))
                else:
                    new, replaced = rec, old["session"]
                    self._drop_session_claims(cur, name, replaced)
                    if inherits(old, rec):  # a restart: the unread mail stays the name's (see store/takeover.py)
                        cur.execute(db.q("SELECT count(*) FROM {s}.messages WHERE project = %s AND recipient = %s "
                                         "AND read_at IS NULL AND set_aside IS NULL"), (db.project, name))
                        handed = int(cur.fetchone()[0])  # type: ignore[index]
                    else:
                        cur.execute(db.q("UPDATE {s}.messages SET set_aside = %s WHERE project = %s "
                                         "AND recipient = %s AND read_at IS NULL AND set_aside IS NULL"),
                                    (replaced, db.project, name))
                        orphaned = cur.rowcount
                validate("agent", new, "agent")
                self._update_row(cur, new)
                db.notify(cur, "agents")
                return {"agent": new, "replaced": replaced, "orphaned": orphaned, "handed": handed}

        res: Rec = db.run(go, f"registering {name}")
        self._registered_project = True
        return res

    def unregister(self, name: str, session: str | None = None) -> bool:
        db = self.db

        def go(conn: Conn) -> bool:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute(db.q("DELETE FROM {s}.agents WHERE project = %s AND name = %s "
                                 "AND (%s::text IS NULL OR session = %s) RETURNING session"),
                            (db.project, name, session, session))
                row = cur.fetchone()
                if row is None:
                    return False
                db.notify(cur, "agents")
                self._drop_session_claims(cur, name, row[0])  # that session's claims only, as the file store does
                return True

        return bool(db.run(go, f"unregistering {name}"))

    def update_agent(self, name: str, session: str | None, changes: Rec) -> Rec | None:
        from ...schema import validate

        def go(conn: Conn) -> Rec | None:
            with conn.transaction():
                cur = conn.cursor()
                row = self._lock_row(cur, name)
                if row is None:
                    return None
                old = agent_row(row)
                if session is not None and old["session"] != session:
                    return None
                rec = validate("agent", {**old, **changes}, f"agent {name}")
                self._update_row(cur, rec)
                self.db.notify(cur, "agents")
                return rec

        return self.db.run(go, f"updating {name}")  # type: ignore[no-any-return]

    def get_agent(self, name: str) -> Rec | None:
        row = self.db.fetchone(f"SELECT {_AGENT_COLS} FROM {{s}}.agents WHERE project = %s AND name = %s",
                               (self.db.project, name), "reading the registry")
        return agent_row(row) if row else None

    def has_agent(self, name: str) -> bool:
        row = self.db.fetchone("SELECT 1 FROM {s}.agents WHERE project = %s AND name = %s",
                               (self.db.project, name), "reading the registry")
        return row is not None

    def list_agents(self) -> list[Rec]:
        rows = self.db.fetchall(f"SELECT {_AGENT_COLS} FROM {{s}}.agents WHERE project = %s ORDER BY name",
                                (self.db.project,), "reading the registry")
        return [agent_row(r) for r in rows]

    # -- inside a transaction ---------------------------------------------------
    def _lock_row(self, cur: Cur, name: str) -> tuple[Any, ...] | None:
        """``name``'s row, locked until the transaction ends (``None``: not registered)."""
        cur.execute(self.db.q(f"SELECT {_AGENT_COLS} FROM {{s}}.agents WHERE project = %s AND name = %s FOR UPDATE"),
                    (self.db.project, name))
        return cur.fetchone()

    def _params(self, rec: Rec) -> list[Any]:
        from psycopg.types.json import Jsonb

        vals: list[Any] = [self.db.project]
        for k in AGENT_FIELDS:
            v = rec.get(k)
            vals.append(Jsonb(v) if k == "activity" and v is not None else v)
        return vals

    def _update_row(self, cur: Cur, rec: Rec) -> None:
        sets = ", ".join(f"{k} = %s" for k in AGENT_FIELDS[1:])
        params = self._params(rec)
        cur.execute(self.db.q(f"UPDATE {{s}}.agents SET {sets} WHERE project = %s AND name = %s"),
                    [*params[2:], self.db.project, rec["name"]])

    def _drop_session_claims(self, cur: Cur, name: str, session: str | None) -> None:
        """Delete the claims ``name`` holds in ``session`` (or in no session)."""
        cur.execute(self.db.q("DELETE FROM {s}.reservations WHERE project = %s AND holder = %s "
                              "AND (session = %s OR session IS NULL)"), (self.db.project, name, session))
        if cur.rowcount:
            self.db.notify(cur, "reservations")
