"""The PostgreSQL store: the same API as the file store, for agents on several machines.

Selected by ``PI_MESH_STORE=postgresql://…`` or ``[store] url`` in hooks.toml.
The URL may carry ``?schema=NAME`` (default ``pi_mesh``): every table lives in
that schema, which the store creates and upgrades itself (:data:`MIGRATIONS`,
recorded in ``<schema>.schema_version``) on first use or by ``pi-mesh db init``.

**Projects.**  Every table is keyed by a project id, so two projects sharing a
server never see each other's agents, mail or claims.  The id comes from
``[store] project_id`` / ``$PI_MESH_PROJECT_ID``, else from the normalised git
remote of the project root, so checkouts in different places on different
machines meet (:mod:`.project`), else the root path.  Paths are the canonical
project-relative paths the :class:`~pi_mesh_plugin.mesh.Mesh` hands over, so
``/home/a/repo/src`` on one machine and ``/builds/repo/src`` on another are
both ``src``.

**Reservations.**  ``claim`` is one READ COMMITTED transaction that takes a
per-project advisory lock before it reads the claims that could overlap and
writes its own; readers (``covering``, the guard's hot path) never take it.
:mod:`.claims` argues why this and not an exclusion constraint or SERIALIZABLE.

**Liveness across machines.**  As in :func:`pi_mesh_plugin.liveness.is_live`:
an agent on this host (and boot) with a known pid lives exactly as long as its
process; any other is live while its ``last_seen`` heartbeat is younger than
the heartbeat TTL.  A crashed machine stops heartbeating, so its agents die
after the TTL and their claims stop counting (and are deleted by the next
overlapping ``claim`` or by ``doctor --fix``).  Time is the server's: each
connection reads the server's clock and keeps its offset from this machine's
(:meth:`PostgresStore.now`), and heartbeats, claims, expiry and liveness all go
by it, so a client whose clock is off neither sees other hosts' agents as dead
nor looks dead to them; ``doctor`` still reports a clock that is off from the
server's by more than :data:`MAX_SKEW` seconds.

**Limits.**  ``connect_timeout``, ``statement_timeout`` and ``lock_timeout``
(URL query or ``[store]`` in hooks.toml), and a client-side watchdog for a
server that cannot enforce them (frozen, unreachable): a call fails with one
line naming the limit, never hangs (:mod:`.connection`).

**Messages.**  One row per message per recipient; delivery commits with
``pg_notify``, so :meth:`PostgresStore.wait_for_mail` wakes within
milliseconds, and every write notifies the project channel, which
:meth:`PostgresStore.subscribe` turns into callbacks (:mod:`.messages`).

**Edit ledger.**  ``ledger`` rows, one per (project, working tree, path): who last wrote the file and the
blob id it left (:mod:`.ledger`).

**Feed.**  ``feed`` rows keep the event JSON as written; each project keeps at
most :data:`FEED_MAX_ROWS` (:mod:`.feed`).

Errors from the server become :class:`~pi_mesh_plugin.errors.StoreError` with
one line naming the (password-masked) URL (:mod:`.connection`).

The parts: :mod:`.connection` (URL, connection, retry), :mod:`.migrations`,
:mod:`.project`, :mod:`.registry`, :mod:`.messages`, :mod:`.claims`,
:mod:`.feed`, :mod:`.doctor`; :class:`PostgresStore` composes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..addressing import check_addressed, check_broadcast
from . import migrations
from .claims import Claims
from .connection import DEFAULT_SCHEMA, Database, channel, mask_url, split_url
from .doctor import MAX_SKEW, clock_skew, examine
from .doctor import status as db_status
from .feed import FEED_MAX_ROWS, FEED_TRIM_EVERY, Feed
from .ledger import Ledger
from .messages import MAIL_POLL, Mailboxes
from .migrations import LATEST, MIGRATIONS
from .project import derive_project_id, normalise_remote
from .queue import PgQueue
from .registry import Registry

if TYPE_CHECKING:
    from .connection import Conn, Rec

__all__ = ["DEFAULT_SCHEMA", "FEED_MAX_ROWS", "FEED_TRIM_EVERY", "LATEST", "MAIL_POLL", "MAX_SKEW", "MIGRATIONS",
           "PostgresStore", "channel", "derive_project_id", "mask_url", "normalise_remote", "split_url"]


class PostgresStore:
    """:class:`~pi_mesh_plugin.store.base.Store` on a PostgreSQL server (psycopg 3).

    One connection per store, opened on first use (constructing a store never
    touches the network), guarded by a lock so threads may share the store.
    """

    def __init__(self, url: str, root: str, heartbeat_ttl: float = 60.0, project_id: str | None = None,
                 timeouts: dict | None = None) -> None:
        self.db = Database(url, root, project_id, timeouts)
        self.root = root
        self.conninfo, self.schema, self.url = self.db.conninfo, self.db.schema, self.db.url
        self.heartbeat_ttl = heartbeat_ttl
        self.warnings: list[str] = []
        self.mesh_dir: str | None = None  # a server, not files: the watcher uses subscribe()
        self.registry = Registry(self.db, heartbeat_ttl)
        self.mail = Mailboxes(self.db)
        self.claims = Claims(self.db, self.registry.is_live)
        self.queue = PgQueue(self.db, self.registry.is_live)
        self.claims.settle_in = self.queue.settle_in
        self.edits = Ledger(self.db)
        self.events = Feed(self.db)  # not `feed`: watchers take a store's `feed` for the file store's

    # -- plumbing -----------------------------------------------------------------
    @property
    def project(self) -> str:
        return self.db.project

    @property
    def project_channel(self) -> str:
        return self.db.project_channel

    def mail_channel(self, name: str) -> str:
        return self.db.mail_channel(name)

    def now(self) -> float:
        """The server's time: what expiry and liveness are judged by, and heartbeats and claims stamped with."""
        return self.db.now()

    def connect(self) -> Conn:
        """A new autocommit connection with the session settings the store relies on."""
        return self.db.connect()

    def schema_version(self, conn: Conn | None = None) -> int:
        """The schema version in the database (0: no schema yet)."""
        return migrations.schema_version(self.db, conn)

    def migrate(self) -> list[int]:
        """Create or upgrade the schema now; returns the versions applied."""
        return migrations.migrate(self.db)

    # -- registry -----------------------------------------------------------------
    def register(self, agent: Rec) -> Rec:
        res = self.registry.register(agent)
        if res.get("replaced"):
            self.queue.settle()  # the dead session's claims were dropped: the waiting line takes them
        return res

    def unregister(self, name: str, session: str | None = None) -> bool:
        gone = self.registry.unregister(name, session)
        if gone:
            self.queue.settle()  # leaving frees the agent's claims and drops its tickets
        return gone

    def update_agent(self, name: str, session: str | None, changes: Rec) -> Rec | None:
        return self.registry.update_agent(name, session, changes)

    def get_agent(self, name: str) -> Rec | None:
        return self.registry.get_agent(name)

    def has_agent(self, name: str) -> bool:
        return self.registry.has_agent(name)

    def list_agents(self) -> list[Rec]:
        return self.registry.list_agents()

    def is_live(self, agent: Rec) -> bool:
        return self.registry.is_live(agent)

    # -- messages -----------------------------------------------------------------
    def deliver(self, messages: list[Rec]) -> None:
        check_addressed(messages)
        self.mail.deliver(messages)

    def broadcast(self, message: Rec, recipients: list[str]) -> None:
        from ...schema import validate

        check_broadcast(message)
        validate("message", message, "message")
        self.mail.deliver([{**message, "to": r} for r in dict.fromkeys(recipients)])  # a row per recipient

    def fetch(self, name: str, unread_only: bool = True) -> list[tuple[Rec, bool]]:
        return self.mail.fetch(name, unread_only)

    def mark_read(self, name: str, ids: list[str], via: str | None = None) -> int:
        return self.mail.mark_read(name, ids, via)

    def receipts(self, sender: str, ids: list[str] | None = None) -> list[Rec]:
        """What became of ``sender``'s messages: one row per message and recipient (see :mod:`...receipts`)."""
        return self.mail.receipts(sender, ids)

    def orphaned(self, name: str) -> dict[str, int]:
        """``{session: unread messages}`` set aside for ``name`` when its name was taken over."""
        return self.mail.orphaned(name)

    def fetch_orphaned(self, name: str) -> list[tuple[str, Rec]]:
        """``[(old session, message)]`` set aside for ``name``, by session then id."""
        return self.mail.fetch_orphaned(name)

    def adopt(self, name: str, sessions: list[str] | None = None) -> int:
        """Make the mail set aside for ``name`` (these sessions', all when ``None``) its unread mail again."""
        return self.mail.adopt(name, sessions)

    def get_message(self, name: str, msg_id: str) -> Rec | None:
        return self.mail.get_message(name, msg_id)

    def unread_count(self, name: str) -> int:
        return self.mail.unread_count(name)

    def thread(self, name: str, thread_id: str) -> list[Rec]:
        """The messages of ``name``'s inbox in one thread (the first message and every reply), in id order."""
        return self.mail.thread(name, thread_id)

    def wait_for_mail(self, name: str, timeout: float | None = None) -> int:
        """Block until ``name`` has unread mail or ``timeout`` seconds pass; returns the unread count (0 on timeout)."""
        return self.mail.wait_for_mail(name, timeout)

    def subscribe(self, callback: Callable[[str | None], object]) -> Callable[[], None]:
        """Call ``callback(topic)`` from a background thread whenever this project changes; returns the function
        that ends the subscription (see :meth:`.messages.Mailboxes.subscribe`)."""
        return self.mail.subscribe(callback)

    def feed_file(self) -> tuple[str, Callable[[int], str]] | None:
        return None  # the feed is a table: followers read it with read_feed

    def ensure_layout(self) -> None:
        pass  # the schema is migrated when the database is first opened

    # -- reservations -------------------------------------------------------------
    def claim(self, holder: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
              ttl: float) -> list[Rec]:
        return self.claims.claim(holder, session, wanted, reason, ttl)

    def release(self, holder: str, paths: list[str] | None = None) -> list[Rec]:
        return self.claims.release(holder, paths)

    def reservations(self) -> list[Rec]:
        return self.claims.reservations()

    def held_by(self, holder: str) -> list[Rec]:
        return self.claims.held_by(holder)

    def enqueue(self, agent: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
                ttl: float) -> Rec:
        return self.queue.enqueue(agent, session, wanted, reason, ttl)

    def withdraw(self, agent: str, paths: list[str] | None = None) -> list[Rec]:
        return self.queue.withdraw(agent, paths)

    def tickets(self) -> list[Rec]:
        return self.queue.tickets()

    def settle(self) -> list[tuple[Rec, list[Rec]]]:
        return self.queue.settle()

    def mark_once(self, key: str) -> bool:
        return self.queue.mark_once(key)

    def covering(self, path: str, kind: str = "file") -> list[Rec]:
        """Stored claims that overlap ``path`` (canonical); the caller judges expiry and liveness."""
        return self.claims.covering(path, kind)

    # -- edit ledger --------------------------------------------------------------
    def record_write(self, entry: Rec) -> Rec:
        return self.edits.record(entry)

    def ledger(self, tree: str, paths: list[str] | None = None) -> list[Rec]:
        return self.edits.get(tree, paths)

    def hand_over(self, tree: str, path: str, changes: Rec) -> Rec | None:
        return self.edits.hand_over(tree, path, changes)

    # -- feed ---------------------------------------------------------------------
    def append_feed(self, event: Rec) -> None:
        self.events.append(event)

    def read_feed(self, limit: int | None = None) -> list[Rec]:
        return self.events.read(limit)

    def recent_messages(self, since: str) -> list[Rec]:
        """The feed's ``message`` events since ``since`` (ISO), oldest first: what the send governors count."""
        return self.events.recent("message", since)

    # -- upkeep -------------------------------------------------------------------
    def clock_skew(self) -> float:
        """Seconds this machine's clock is ahead of the server's (negative: behind)."""
        return clock_skew(self.db)

    def doctor(self, fix: bool = False) -> list[Rec]:
        """Findings like the file store's, plus ``clock-skew`` and ``set-aside-mail`` (see :mod:`.doctor`)."""
        return examine(self, fix)

    def status(self) -> Rec:
        """What ``pi-mesh db status`` shows."""
        return db_status(self)

    def close(self) -> None:
        self.mail.close()
        self.db.close()
