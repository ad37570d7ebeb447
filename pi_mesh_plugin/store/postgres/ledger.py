"""The edit ledger on PostgreSQL: one ``ledger`` row per (project, working tree, path), the entry as JSON.

The upsert keeps an existing row of *another* agent whose content (``blob``,
``deleted``) is the same as the new entry's - the rule of the file store
(:mod:`..files.ledger`), done in the ``ON CONFLICT … WHERE`` clause so two
writers cannot interleave a read and a write.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .connection import Conn, Database, Rec


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, entry: Rec) -> Rec:
        db = self.db
        body = json.dumps(entry, ensure_ascii=False)

        def go(conn: Conn) -> Rec:
            row = conn.execute(db.q("""
                INSERT INTO {s}.ledger AS l (project, tree, path, agent, entry) VALUES (%s, %s, %s, %s, %s::jsonb)
                ON CONFLICT (project, tree, path) DO UPDATE SET agent = excluded.agent, entry = excluded.entry
                WHERE l.agent = excluded.agent
                   OR (l.entry->>'blob') IS DISTINCT FROM (excluded.entry->>'blob')
                   OR coalesce((l.entry->>'deleted')::boolean, false)
                      <> coalesce((excluded.entry->>'deleted')::boolean, false)
                RETURNING entry"""), (db.project, entry["tree"], entry["path"], entry["agent"], body)).fetchone()
            if row is not None:
                return row[0]  # type: ignore[no-any-return]
            kept = conn.execute(db.q("SELECT entry FROM {s}.ledger WHERE project = %s AND tree = %s AND path = %s"),
                                (db.project, entry["tree"], entry["path"])).fetchone()
            return kept[0] if kept else entry  # type: ignore[no-any-return]

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
