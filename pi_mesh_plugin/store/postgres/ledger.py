"""The edit ledger on PostgreSQL: one ``ledger`` row per (project, working tree, path), the entry as JSON.

A write reads the row ``FOR UPDATE`` and applies the file store's rule
(:func:`..files.ledger.merge`: an existing entry of another agent with the same
content is kept; the others who wrote before are carried in ``earlier``), in
one transaction, so two writers of one path cannot interleave.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import Conn, Database, Rec


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, entry: Rec) -> Rec:
        from ..files.ledger import merge

        db = self.db

        def go(conn: Conn) -> Rec:
            with conn.transaction():
                key = (db.project, entry["tree"], entry["path"])
                # the row lock orders two writers of one path; a first insert races only with another insert,
                # which ON CONFLICT turns into an update
                row = conn.execute(db.q("""SELECT entry FROM {s}.ledger WHERE project = %s AND tree = %s
                                           AND path = %s FOR UPDATE"""), key).fetchone()
                new = merge(row[0] if row else None, entry)
                if new is None:
                    return row[0]  # type: ignore[no-any-return,index]
                conn.execute(db.q("""INSERT INTO {s}.ledger (project, tree, path, agent, entry)
                                     VALUES (%s, %s, %s, %s, %s::jsonb)
                                     ON CONFLICT (project, tree, path) DO UPDATE
                                     SET agent = excluded.agent, entry = excluded.entry"""),
                             (*key, new["agent"], json.dumps(new, ensure_ascii=False)))
                return new

        return db.run(go, "recording a write in the ledger")  # type: ignore[no-any-return]

    def get(self, tree: str, paths: list[str] | None = None) -> list[Rec]:
        if paths is None:
            rows = self.db.fetchall("SELECT entry FROM {s}.ledger WHERE project = %s AND tree = %s ORDER BY path",
                                    (self.db.project, tree), "reading the ledger")
        else:
            rows = self.db.fetchall("""SELECT entry FROM {s}.ledger WHERE project = %s AND tree = %s
                                       AND path = ANY(%s) ORDER BY path""",
                                    (self.db.project, tree, list(dict.fromkeys(paths))), "reading the ledger")
        return [r[0] for r in rows if isinstance(r[0], dict)]

    def hand_over(self, tree: str, path: str, changes: Rec) -> Rec | None:
        row = self.db.fetchone("""UPDATE {s}.ledger SET entry = entry || %s::jsonb,
                                         agent = coalesce(%s, agent)
                                  WHERE project = %s AND tree = %s AND path = %s RETURNING entry""",
                               (json.dumps(changes, ensure_ascii=False), changes.get("agent"), self.db.project, tree,
                                path), "handing over a ledger entry")
        return row[0] if row else None
