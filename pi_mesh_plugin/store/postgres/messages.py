"""Mail, and waking on change with LISTEN/NOTIFY.

One row per message per recipient (``messages``), with read state
(``read_at``), thread, reply and urgency columns; a dead agent's unread mail is
set aside (``set_aside``: its session) when its name is taken over.  Delivery
commits with ``pg_notify`` on the recipient's channel, so
:meth:`Mailboxes.wait_for_mail` wakes within milliseconds; it re-checks the
unread count at least every :data:`MAIL_POLL` seconds (a polling fallback for
lost connections and for poolers that do not pass ``LISTEN`` through).  Every
write also notifies the project channel with its topic (``agents``,
``reservations``, ``inbox``, ``feed``), which :meth:`Mailboxes.subscribe` turns
into callbacks for :class:`pi_mesh_plugin.watcher.Watcher`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import StoreError
from .connection import CONNECT_TIMEOUT, columns

if TYPE_CHECKING:
    from typing import Any

    from .connection import Conn, Database, Rec

MAIL_POLL = 2.0

_MSG_COLS = columns(("id", "sender", "recipient", "body", "urgent", "reply_to", "thread", "created", "broadcast",
                     "meta"), ("created",))


def message_row(row: tuple[Any, ...]) -> Rec:
    """A message record from the ``_MSG_COLS`` columns of a row."""
    d = {"schema": 1, "id": row[0], "from": row[1], "to": row[2], "text": row[3], "urgent": row[4],
         "reply_to": row[5], "thread": row[6], "created": row[7]}
    if row[8]:
        d["broadcast"] = True
    if row[9] is not None:
        d["meta"] = row[9]
    return d


class Mailboxes:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._listen: Conn | None = None
        self._listening: set[str] = set()
        self._listen_lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []

    def deliver(self, messages: list[Rec]) -> None:
        from psycopg.types.json import Jsonb

        from ...schema import validate

        db = self.db
        rows = []
        for m in messages:
            validate("message", m, "message")
            rows.append((db.project, m["to"], m["id"], m["from"], m["text"], bool(m.get("urgent")), m.get("reply_to"),
                         m.get("thread"), bool(m.get("broadcast")), Jsonb(m["meta"]) if m.get("meta") is not None
                         else None, m["created"], db.mail_channel(m["to"]), m["id"], db.project_channel))
        if not rows:
            return
        # Insert and notify in one statement: the notification goes out exactly when the row commits.
        sql = db.q("""WITH ins AS (
              INSERT INTO {s}.messages (project, recipient, id, sender, body, urgent, reply_to, thread, broadcast, meta,
                                        created)
              VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
              ON CONFLICT (project, recipient, id) DO NOTHING RETURNING 1)
            SELECT pg_notify(%s, %s), pg_notify(%s, 'inbox') FROM ins""")

        def go(conn: Conn) -> None:
            if len(rows) == 1:
                conn.execute(sql, rows[0])
                return
            with conn.transaction():
                conn.cursor().executemany(sql, rows)

        db.run(go, "delivering mail")

    def fetch(self, name: str, unread_only: bool = True) -> list[tuple[Rec, bool]]:
        cond = " AND read_at IS NULL" if unread_only else ""
        rows = self.db.fetchall(
            f"SELECT {_MSG_COLS}, read_at IS NOT NULL FROM {{s}}.messages WHERE project = %s AND recipient = %s "
            f"AND set_aside IS NULL{cond} ORDER BY id", (self.db.project, name), "reading mail")
        return [(message_row(r), bool(r[10])) for r in rows]

    def mark_read(self, name: str, ids: list[str], via: str | None = None) -> int:
        if not ids:
            return 0
        db = self.db

        def go(conn: Conn) -> int:
            with conn.transaction():
                n = conn.execute(db.q(
                    "UPDATE {s}.messages SET read_at = clock_timestamp() WHERE project = %s AND recipient = %s "
                    "AND id = ANY(%s) AND read_at IS NULL AND set_aside IS NULL"), (db.project, name, list(ids))).rowcount
                if via is not None:  # the receipt: the first adapter to show it wins
                    conn.execute(db.q(
                        "UPDATE {s}.messages SET shown_at = clock_timestamp(), shown_via = %s WHERE project = %s "
                        "AND recipient = %s AND id = ANY(%s) AND read_at IS NOT NULL AND shown_at IS NULL"),
                        (via, db.project, name, list(ids)))
                return int(n)

        return int(db.run(go, "marking mail read"))

    def receipts(self, sender: str, ids: list[str] | None = None) -> list[Rec]:
        """One row per message of ``sender`` and recipient: read, set aside, shown (when, via)."""
        cond = "" if ids is None else " AND id = ANY(%s)"
        params: list[Any] = [self.db.project, sender] + ([list(ids)] if ids is not None else [])
        rows = self.db.fetchall(
            f"SELECT {_MSG_COLS}, read_at IS NOT NULL, set_aside, "
            "to_char(shown_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), shown_via "
            f"FROM {{s}}.messages WHERE project = %s AND sender = %s{cond} ORDER BY id, recipient",
            params, "reading receipts")
        return [{"message": message_row(r), "read": bool(r[10]), "set_aside": r[11], "shown": r[12], "via": r[13]}
                for r in rows]

    def orphaned(self, name: str) -> dict[str, int]:
        rows = self.db.fetchall("SELECT set_aside, count(*) FROM {s}.messages WHERE project = %s AND recipient = %s "
                                "AND set_aside IS NOT NULL GROUP BY set_aside ORDER BY set_aside",
                                (self.db.project, name), "reading mail")
        return {r[0]: int(r[1]) for r in rows}

    def fetch_orphaned(self, name: str) -> list[tuple[str, Rec]]:
        rows = self.db.fetchall(
            f"SELECT {_MSG_COLS}, set_aside FROM {{s}}.messages WHERE project = %s AND recipient = %s "
            "AND set_aside IS NOT NULL ORDER BY set_aside, id", (self.db.project, name), "reading mail")
        return [(r[10], message_row(r)) for r in rows]

    def adopt(self, name: str, sessions: list[str] | None = None) -> int:
        db = self.db
        cond = "set_aside IS NOT NULL" if sessions is None else "set_aside = ANY(%s)"
        params: list[Any] = [db.project, name] + ([list(sessions)] if sessions is not None else [])

        def go(conn: Conn) -> int:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute(db.q(f"UPDATE {{s}}.messages SET set_aside = NULL WHERE project = %s AND recipient = %s "
                                 f"AND {cond}"), params)
                n = cur.rowcount
                if n:
                    cur.execute("SELECT pg_notify(%s, 'adopted'), pg_notify(%s, 'inbox')",
                                (db.mail_channel(name), db.project_channel))
                return int(n)

        return int(db.run(go, "adopting mail"))

    def get_message(self, name: str, msg_id: str) -> Rec | None:
        row = self.db.fetchone(f"SELECT {_MSG_COLS} FROM {{s}}.messages WHERE project = %s AND recipient = %s "
                               "AND id = %s AND set_aside IS NULL", (self.db.project, name, msg_id), "reading mail")
        return message_row(row) if row else None

    def unread_count(self, name: str) -> int:
        row = self.db.fetchone("SELECT count(*) FROM {s}.messages WHERE project = %s AND recipient = %s "
                               "AND read_at IS NULL AND set_aside IS NULL", (self.db.project, name), "reading mail")
        return int(row[0])  # type: ignore[index]

    def thread(self, name: str, thread_id: str) -> list[Rec]:
        """The messages of ``name``'s inbox in one thread (the first message and every reply), in id order."""
        rows = self.db.fetchall(f"SELECT {_MSG_COLS} FROM {{s}}.messages WHERE project = %s AND recipient = %s "
                                "AND (thread = %s OR id = %s) ORDER BY id",
                                (self.db.project, name, thread_id, thread_id), "reading mail")
        return [message_row(r) for r in rows]

    # -- waking -------------------------------------------------------------------
    def wait_for_mail(self, name: str, timeout: float | None = None) -> int:
        """Block until ``name`` has unread mail or ``timeout`` seconds pass; returns the unread count (0 on timeout).

        Woken by ``NOTIFY`` on delivery (milliseconds); the count is re-read at
        least every :data:`MAIL_POLL` seconds, so a lost notification (a dropped
        listening connection, a pooler that swallows ``LISTEN``) only costs latency.
        """
        import psycopg

        deadline = None if timeout is None else time.monotonic() + timeout
        chan = self.db.mail_channel(name)
        while True:
            listener = None
            with self._listen_lock:
                try:
                    listener = self._listener()
                    if chan not in self._listening:
                        listener.execute(f'LISTEN "{chan}"')
                        self._listening.add(chan)
                except (psycopg.Error, StoreError):
                    self._drop_listener()
                    listener = None
            n = self.unread_count(name)
            if n:
                return n
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return 0
            step = MAIL_POLL if left is None else min(left, MAIL_POLL)
            if listener is None:
                time.sleep(min(step, 0.25))  # polling fallback
                continue
            with self._listen_lock:
                try:
                    for _ in listener.notifies(timeout=step, stop_after=1):
                        break
                except psycopg.Error:
                    self._drop_listener()

    def _listener(self) -> Conn:
        if self._listen is None or self._listen.closed or self._listen.broken:
            self._listen = self.db.connect()
            self._listening = set()
        return self._listen

    def _drop_listener(self) -> None:
        if self._listen is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._listen.close()
        self._listen = None
        self._listening = set()

    def subscribe(self, callback: Callable[[str | None], object]) -> Callable[[], None]:
        """Call ``callback(topic)`` (``agents``, ``reservations``, ``inbox``, ``feed``; ``None`` after a reconnect,
        meaning "anything may have changed") from a background thread whenever this project changes.
        Returns the function that ends the subscription."""
        sub = _Subscriber(self.db, callback)
        sub.start()
        self._subscribers.append(sub)

        def stop() -> None:
            sub.stop()
            if sub in self._subscribers:
                self._subscribers.remove(sub)

        return stop

    def close(self) -> None:
        """End every subscription and the listening connection."""
        for sub in list(self._subscribers):
            sub.stop()
        self._subscribers.clear()
        with self._listen_lock:
            self._drop_listener()


class _Subscriber:
    """A thread LISTENing on the project channel, calling ``callback(topic)`` per notification."""

    def __init__(self, db: Database, callback: Callable[[str | None], object]) -> None:
        self.db = db
        self.callback = callback
        self.chan = db.project_channel
        self.token = "stop-" + os.urandom(6).hex()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="pi-mesh-pg-listen", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._ready.wait(CONNECT_TIMEOUT + 1)

    def _loop(self) -> None:
        import psycopg

        backoff = 0.1
        first = True
        while not self._stop.is_set():
            conn = None
            try:
                conn = self.db.connect()
                conn.execute(f'LISTEN "{self.chan}"')
                self._ready.set()
                if not first:
                    self._call(None)  # notifications may have been missed while disconnected
                first, backoff = False, 0.1
                while not self._stop.is_set():
                    for n in conn.notifies(timeout=1.0):
                        if n.payload == self.token or self._stop.is_set():
                            return
                        self._call(n.payload)
            except (psycopg.Error, StoreError):
                self._ready.set()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()

    def _call(self, topic: str | None) -> None:
        with contextlib.suppress(Exception):  # a failing consumer must not kill the listener
            self.callback(topic)

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self.db.run(lambda c: c.execute("SELECT pg_notify(%s, %s)", (self.chan, self.token)))
        except StoreError:
            pass
        if self.thread is not threading.current_thread():
            self.thread.join(3.0)
