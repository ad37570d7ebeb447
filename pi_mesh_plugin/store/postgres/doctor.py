"""``pi-mesh doctor`` and ``pi-mesh db status`` for the PostgreSQL store.

Findings are dicts ``{"kind", "path", "detail", "fixed"}`` like the file
store's (``stale-agent``, ``unjudged-agent``, ``expired-claim``, ``dead-claim``, ``orphan-inbox``)
plus ``clock-skew`` (timestamps are written from the writer's clock, as with
the file store, so a clock off from the server's by more than
:data:`MAX_SKEW` seconds is reported) and ``set-aside-mail``; ``path`` names
the table and key, e.g. ``agents/alice``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import clock
from ...clock import iso
from ...liveness import unjudged, verdict
from . import migrations
from .claims import holder_live

if TYPE_CHECKING:
    from . import PostgresStore
    from .connection import Conn, Database, Rec

MAX_SKEW = 2.0


def clock_skew(db: Database) -> float:
    """Seconds this machine's clock is ahead of the server's (negative: behind)."""
    t0 = clock.now()
    row = db.run(lambda c: c.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone())
    t1 = clock.now()
    return (t0 + t1) / 2 - float(row[0])


def examine(store: PostgresStore, fix: bool) -> list[Rec]:
    db = store.db
    found: list[Rec] = []

    def add(kind: str, path: str, detail: str, fixed: bool = False) -> None:
        found.append({"kind": kind, "path": path, "detail": detail, "fixed": fixed})

    skew = store.clock_skew()
    if abs(skew) > MAX_SKEW:
        add("clock-skew", "server", f"this machine's clock is {abs(skew):.1f}s "
            f"{'ahead of' if skew > 0 else 'behind'} the PostgreSQL server's: expiry and liveness are judged "
            "on the server's clock, but keep the clocks in sync (NTP): feed times and a person's view are local")
    agents = {}
    for rec in store.list_agents():
        agents[rec["name"]] = rec
        if not store.is_live(rec):
            judged = verdict(rec, store.heartbeat_ttl)
            if judged != "gone":
                add("unjudged-agent", f"agents/{rec['name']}", unjudged(rec, judged))
                continue
            fixed = store.unregister(rec["name"], rec["session"]) if fix and judged == "gone" else False
            add("stale-agent", f"agents/{rec['name']}", f"{rec['name']} (pid {rec['pid']} on {rec['host']}) "
                f"is gone (last seen {rec['last_seen']})", fixed)
            if fixed:
                del agents[rec["name"]]
    now = store.now()
    bad_ids = []
    for rec in store.reservations():
        if rec["expires"] <= iso(now):
            add("expired-claim", f"reservations/{rec['id']}",
                f"{rec['holder']}'s claim on {rec['path']} expired {rec['expires']}")
            bad_ids.append(rec["id"])
        elif not holder_live(rec, agents.get(rec["holder"]), store.is_live):
            add("dead-claim", f"reservations/{rec['id']}", f"{rec['holder']} holds {rec['path']} but is gone")
            bad_ids.append(rec["id"])
    if fix and bad_ids:
        gone = {r[0] for r in db.fetchall("DELETE FROM {s}.reservations WHERE project = %s AND id = ANY(%s) "
                                          "RETURNING id", (db.project, bad_ids), "removing dead claims")}
        for f in found:
            if f["kind"] in ("expired-claim", "dead-claim") and f["path"].split("/", 1)[1] in gone:
                f["fixed"] = True
    rows = db.fetchall(
        "SELECT recipient, count(*) FILTER (WHERE set_aside IS NULL), count(*) FILTER (WHERE set_aside IS NOT NULL) "
        "FROM {s}.messages WHERE project = %s GROUP BY recipient ORDER BY recipient", (db.project,), "reading mail")
    for name, kept, aside in rows:
        if name not in agents and kept:
            add("orphan-inbox", f"inbox/{name}", f"{kept} message(s) for {name}, who is not registered (mail kept)")
        if aside:
            add("set-aside-mail", f"inbox/{name}", f"{aside} unread message(s) of an earlier session of {name} "
                "set aside when the name was taken over (kept; `pi-mesh inbox --orphaned --agent "
                f"{name}` shows them, `--adopt all` makes them its mail)")
    if fix:
        db.run(store.events.trim, "trimming the feed")
    return found


def status(store: PostgresStore) -> Rec:
    """What ``pi-mesh db status`` shows."""
    db = store.db

    def go(conn: Conn) -> Rec:
        version = migrations.schema_version(db, conn)
        server = (conn.execute("SHOW server_version").fetchone() or ["?"])[0]
        counts = conn.execute(db.q("""SELECT
            (SELECT count(*) FROM {s}.agents WHERE project = %(p)s),
            (SELECT count(*) FROM {s}.reservations WHERE project = %(p)s),
            (SELECT count(*) FROM {s}.messages WHERE project = %(p)s AND read_at IS NULL AND set_aside IS NULL),
            (SELECT count(*) FROM {s}.feed WHERE project = %(p)s),
            (SELECT count(*) FROM {s}.projects)"""), {"p": db.project}).fetchone() or (0, 0, 0, 0, 0)
        return {"url": db.url, "server_version": server, "schema": db.schema, "schema_version": version,
                "latest_version": migrations.LATEST, "project": db.project, "agents": counts[0],
                "reservations": counts[1], "unread_messages": counts[2], "feed_events": counts[3],
                "projects": counts[4]}

    return db.run(go, "reading status")  # type: ignore[no-any-return]
