"""The activity feed: ``feed`` rows keep the event JSON as written.

Each project keeps at most :data:`FEED_MAX_ROWS` rows; older ones are deleted
every :data:`FEED_TRIM_EVERY` appends (and by ``doctor --fix``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from .connection import Conn, Database, Rec

FEED_MAX_ROWS = 10_000
FEED_TRIM_EVERY = 200


class Feed:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, event: Rec) -> None:
        from ..files.feed import MAX_LINE

        db = self.db
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        if len(line) > MAX_LINE:
            event = {k: (v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v) for k, v in event.items()}
            line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            if len(line) > MAX_LINE:
                line = json.dumps({k: event[k] for k in ("ts", "event", "agent") if k in event})

        def go(conn: Conn) -> None:
            # The feed is a log, not state: its commit does not wait for the WAL flush (a server crash may lose the
            # last few events, never a message or a claim), so an operation pays for one durable commit, not two.
            with conn.pipeline(), conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")
                cur = conn.execute(db.q("""WITH ins AS (INSERT INTO {s}.feed (project, event) VALUES (%s, %s::json)
                                             RETURNING seq)
                                           SELECT seq, pg_notify(%s, 'feed') FROM ins"""),
                                   (db.project, line, db.project_channel))
            row = cur.fetchone()
            if row and row[0] % FEED_TRIM_EVERY == 0:
                self.trim(conn)

        db.run(go, "appending to the feed")

    def trim(self, conn: Conn) -> int:
        """Delete all but the newest :data:`FEED_MAX_ROWS` rows of the project; returns how many went."""
        cur = conn.execute(self.db.q("""DELETE FROM {s}.feed WHERE project = %s AND seq <= (
              SELECT seq FROM {s}.feed WHERE project = %s ORDER BY seq DESC OFFSET %s LIMIT 1)"""),
                           (self.db.project, self.db.project, FEED_MAX_ROWS))
        return cur.rowcount

    def recent(self, event: str, since: str, limit: int = 2000) -> list[Rec]:
        """The newest ``event`` events (at most ``limit``) stamped at or after ``since``, oldest first."""
        rows = self.db.fetchall("SELECT event FROM {s}.feed WHERE project = %s AND ts >= %s::timestamptz - "
                                "interval '5 seconds' AND event->>'event' = %s ORDER BY seq DESC LIMIT %s",
                                (self.db.project, since, event, limit), "reading the feed")
        return [r[0] for r in reversed(rows) if isinstance(r[0], dict) and isinstance(r[0].get("ts"), str)
                and r[0]["ts"] >= since]

    def read(self, limit: int | None = None) -> list[Rec]:
        sql = "SELECT event FROM {s}.feed WHERE project = %s ORDER BY seq DESC"
        params: list[Any] = [self.db.project]
        if limit:
            sql += " LIMIT %s"
            params.append(int(limit))
        rows = self.db.fetchall(sql, params, "reading the feed")
        return [r[0] for r in reversed(rows) if isinstance(r[0], dict)]
