"""The file store: all state as plain files under ``<project>/.pi/mesh/``.

::

    .pi/mesh/
      agents/<name>.json                  one registry file per agent
      inbox/<name>/{tmp,new,cur,bad}/     Maildir-style; ls new/ = unread
      inbox/<name>/orphaned/<session>/    unread mail of a dead agent whose name was taken over
      reservations/<id>.json              one file per claim
      reservations/<batch>.batch          commit marker of a reserve of several paths (see :mod:`.claims`)
      queue/<path key>/<id>-<agent>.json  the waiting line for a claimed path (ls shows the order)
      notices/<key>                       markers of one-time notices sent (e.g. a claim's expiry warning)
      ledger/<tree>/<path-key>.json       the edit ledger: who last wrote each file, and its blob id (.ledger)
      feed.jsonl                          activity feed (rotated: feed.1.jsonl …)
      index/claims.json                   cache of reservations/ for fresh processes (derived, safe to delete)
      locks/                              advisory locks (flock; released by the kernel when a holder dies)
      bad/                                records that failed to parse or validate, set aside
      bad/links/                          symlinks found in the mesh's place, moved aside by doctor --fix

No daemon: every process reads and writes the files directly.  See
:mod:`.fsio` for how a write is made atomic and durable, :mod:`.claims` for
the lock-free reader of reservations, :mod:`.inbox` for delivery, :mod:`.links`
for why no symlink in ``.pi/mesh`` is ever followed.
"""

from __future__ import annotations

import os
import time

from ...errors import CorruptRecord
from ...liveness import is_live, process_alive
from . import fsio, links
from .claims import ClaimStore
from .registry import Registry

TYPE_CHECKING = False  # on the per-call hook path: typing-only imports are skipped at run time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .feed import Feed
    from .inbox import Inboxes
    from .ledger import Ledger
    from .queue import FileQueue

LAYOUT = ("agents", "inbox", "reservations", "queue", "notices", "locks", "index", "bad")
TEMP_GRACE_S = 60.0


class FileStore:
    """:class:`~pi_mesh_plugin.store.base.Store` on plain files."""

    def __init__(self, root: str, heartbeat_ttl: float = 60.0) -> None:
        self.root = root
        self.mesh_dir = os.path.join(root, ".pi", "mesh")
        self.url = "file:" + self.mesh_dir
        self.heartbeat_ttl = heartbeat_ttl
        self.registry = Registry(self.mesh_dir, heartbeat_ttl)
        self.claims = ClaimStore(self.mesh_dir, self._holder_live)
        # claim, release and drop_dead settle the waiting line inside the claims lock; the queue (and its
        # modules) is made the first time that happens, never by a check
        self.claims.settle = lambda: [] if self._nobody_waits() else self.queue.settle_locked()
        self._inboxes: Inboxes | None = None
        self._feed: Feed | None = None
        self._queue: FileQueue | None = None
        self._edits: Ledger | None = None
        self.warnings: list[str] = []
        self._ready = False
        self._checked = False

    # The parts a guard check does not need are made (and their modules imported) on first use: a per-call
    # hook that finds its path free reads the claims and nothing else.
    @property
    def inboxes(self) -> Inboxes:
        if self._inboxes is None:
            from .inbox import Inboxes

            self._inboxes = Inboxes(self.mesh_dir)
        return self._inboxes

    @property
    def feed(self) -> Feed:
        if self._feed is None:
            from .feed import Feed

            self._feed = Feed(self.mesh_dir)
        return self._feed

    @property
    def queue(self) -> FileQueue:
        if self._queue is None:
            from .queue import FileQueue

            self._queue = FileQueue(self.mesh_dir, self.claims, self.inboxes, self._holder_live)
        return self._queue

    @property
    def edits(self) -> Ledger:
        if self._edits is None:
            from .ledger import Ledger

            self._edits = Ledger(self.mesh_dir)
        return self._edits

    def _safe(self) -> None:
        """Refuse a symlinked ``.pi``, ``.pi/mesh``, fixed directory or feed before the first operation."""
        if not self._checked:
            links.check_layout(self.mesh_dir)
            self._checked = True

    def subscribe(self, callback: Callable[[str | None], object]) -> Callable[[], None] | None:
        return None  # plain files: the watcher uses inotify on mesh_dir, or polls

    def feed_file(self) -> tuple[str, Callable[[int], str]] | None:
        return self.feed.path, self.feed.generation

    def ensure_layout(self) -> None:
        if self._ready:
            return
        self._safe()
        for sub in LAYOUT:
            fsio.ensure_dir(os.path.join(self.mesh_dir, sub))
        ignore = os.path.join(self.mesh_dir, ".gitignore")
        if not os.path.exists(ignore):
            try:
                fsio.create_exclusive(ignore, b"# pi-mesh state: never commit it\n*\n")
            except FileExistsError:
                pass
        self._ready = True

    # -- registry -----------------------------------------------------------
    def register(self, agent: dict) -> dict:
        self.ensure_layout()
        rec, replaced = self.registry.register(agent)
        self.inboxes.ensure(rec["name"])
        orphaned = 0
        if replaced is not None:
            self.claims.release(rec["name"], None, session=replaced)
            orphaned = self.inboxes.set_aside(rec["name"], replaced)
        return {"agent": rec, "replaced": replaced, "orphaned": orphaned}

    def unregister(self, name: str, session: str | None = None) -> bool:
        self._safe()
        old = self.registry.unregister(name, session)
        if old is None:
            return False
        # only that session's claims: a new agent may have taken the name between the two locks
        self.claims.release(name, None, session=old["session"])
        return True

    def update_agent(self, name: str, session: str | None, changes: dict) -> dict | None:
        self._safe()
        return self.registry.update(name, session, changes)

    def get_agent(self, name: str) -> dict | None:
        self._safe()
        return self.registry.get(name)

    def has_agent(self, name: str) -> bool:
        self._safe()
        return self.registry.exists(name)

    def list_agents(self) -> list[dict]:
        self._safe()
        return self.registry.all(self.warnings)

    def is_live(self, agent: dict) -> bool:
        return is_live(agent, self.heartbeat_ttl)

    def _holder_live(self, holder: str, session: str | None) -> bool:
        rec = self.registry.get(holder)
        if rec is None or (session is not None and rec["session"] != session):
            return False
        return self.is_live(rec)

    # -- messages -----------------------------------------------------------
    def deliver(self, messages: list[dict]) -> None:
        self.ensure_layout()
        self.inboxes.deliver(messages)

    def broadcast(self, message: dict, recipients: list[str]) -> None:
        self.ensure_layout()
        self.inboxes.deliver_linked(message, recipients)

    def fetch(self, name: str, unread_only: bool = True) -> list[tuple[dict, bool]]:
        self._safe()
        return self.inboxes.fetch(name, unread_only, self.warnings)

    def mark_read(self, name: str, ids: list[str]) -> int:
        self._safe()
        return self.inboxes.mark_read(name, ids)

    def get_message(self, name: str, msg_id: str) -> dict | None:
        self._safe()
        return self.inboxes.get(name, msg_id)

    def unread_count(self, name: str) -> int:
        self._safe()
        return self.inboxes.unread_count(name)

    def wait_for_mail(self, name: str, timeout: float | None = None, poll: float = 0.02) -> int:
        """Block until ``name`` has unread mail or ``timeout`` seconds pass; the unread count (0 on timeout).

        Polls ``inbox/<name>/new`` (one directory listing per ``poll`` seconds); the PostgreSQL store's
        method of the same name is woken by NOTIFY instead.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            n = self.unread_count(name)
            if n or (deadline is not None and time.monotonic() >= deadline):
                return n
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    # -- reservations -------------------------------------------------------
    def claim(self, holder: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
              ttl: float) -> list[dict]:
        self.ensure_layout()
        return self.claims.claim(holder, session, wanted, reason, ttl)

    def release(self, holder: str, paths: list[str] | None = None) -> list[dict]:
        self._safe()
        if not os.path.isdir(self.claims.directory):
            return []
        return self.claims.release(holder, paths)

    def reservations(self) -> list[dict]:
        self._safe()
        return self.claims.index.current().all()

    def enqueue(self, agent: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
                ttl: float) -> dict:
        self.ensure_layout()
        return self.queue.enqueue(agent, session, wanted, reason, ttl)

    def _nobody_waits(self) -> bool:
        """One look at ``queue/``: empty (or absent) means no ticket, and the queue's code is not loaded."""
        if self._queue is not None:
            return False
        try:
            with os.scandir(os.path.join(self.mesh_dir, "queue")) as it:
                return next(it, None) is None
        except (FileNotFoundError, NotADirectoryError):
            return True

    def withdraw(self, agent: str, paths: list[str] | None = None) -> list[dict]:
        if self._nobody_waits():
            return []
        return self.queue.withdraw(agent, paths)

    def tickets(self) -> list[dict]:
        return [] if self._nobody_waits() else self.queue.tickets()

    def settle(self) -> list[tuple[dict, list[dict]]]:
        if not os.path.isdir(self.claims.directory) or self._nobody_waits():
            return []
        return self.queue.settle()

    def mark_once(self, key: str) -> bool:
        """``True`` the first time ``key`` is marked in this mesh, ``False`` ever after (``notices/<key>``)."""
        self.ensure_layout()
        try:
            fsio.create_exclusive(os.path.join(self.mesh_dir, "notices", key), b"")
        except FileExistsError:
            return False
        return True

    def covering(self, path: str, kind: str = "file") -> list[dict]:
        self._safe()
        return self.claims.index.current().covering(path, kind)

    # -- edit ledger --------------------------------------------------------
    def record_write(self, entry: dict) -> dict:
        self.ensure_layout()
        return self.edits.record(entry)

    def ledger(self, tree: str, paths: list[str] | None = None) -> list[dict]:
        return self.edits.get(tree, paths, self.warnings)

    def hand_over(self, tree: str, path: str, changes: dict) -> dict | None:
        return self.edits.hand_over(tree, path, changes)

    # -- feed ---------------------------------------------------------------
    def append_feed(self, event: dict) -> None:
        self.ensure_layout()
        self.feed.append(event)

    def read_feed(self, limit: int | None = None) -> list[dict]:
        self._safe()
        return self.feed.read(limit)

    # -- upkeep -------------------------------------------------------------
    def doctor(self, fix: bool = False) -> list[dict]:
        from .doctor import examine

        return examine(self, fix)

    def close(self) -> None:
        pass

    def temp_is_stale(self, path: str, name: str) -> bool:
        """A temp file whose writer is gone (pid in its name dead) or that is older than a minute."""
        pid = None
        parts = name.split(".") if name.endswith(".tmp") else name.split("-")
        for part in (parts[-2:-1] if name.endswith(".tmp") else parts[1:2]):
            if part.isdigit():
                pid = int(part)
        try:
            age = time.time() - os.lstat(path).st_mtime
        except FileNotFoundError:
            return False
        return age > TEMP_GRACE_S or (pid is not None and pid != os.getpid() and not process_alive(pid, None))


__all__ = ["FileStore", "CorruptRecord"]
