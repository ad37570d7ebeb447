"""The store interface: what a backend must do, and nothing about how.

The :class:`~pi_mesh_plugin.mesh.Mesh` does everything that depends on the
local machine (canonicalising paths against this checkout, case folding,
finding the caller's pid) and hands the store backend-neutral facts: names,
records shaped like the JSON Schemas in ``schemas/``, and canonical paths
relative to the project root.  A backend owns atomicity and liveness:

* ``register`` is race-free: two live agents never hold one name;
* ``claim`` is an atomic check-and-claim: it refuses (raising
  :class:`~pi_mesh_plugin.errors.ReservationConflict`, claiming nothing) when
  any wanted path overlaps a live claim of another agent, and no two
  concurrent ``claim`` calls can both succeed on overlapping paths;
* ``covering`` answers from current state - a claim is visible to every
  process the moment ``claim`` returned;
* ``deliver`` makes each message durable before it returns; a message is
  never deleted because reading it failed (bad records are quarantined);
  ``broadcast`` does the same for one message to many (``to`` is ``*``; each
  recipient fetches it addressed to itself).
* the waiting line (``enqueue``, ``settle``...) keeps the rules of
  :mod:`pi_mesh_plugin.store.queue_rules`: FIFO per path, never two holders,
  only live waiters, no waiting cycle; a freed claim is granted inside the
  same lock or transaction as the ``release`` (or the ``claim``) that sees it
  freed.

Records cross this interface as ``dict``; times as ISO 8601 strings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Store(Protocol):
    url: str
    heartbeat_ttl: float
    @property
    def mesh_dir(self) -> str | None:
        """The directory of plain files the store lives in, watched with inotify; ``None`` for a server."""
    #: one line per record set aside while reading (quarantined, unreadable), for ``Mesh.warnings``
    warnings: list[str]

    def now(self) -> float:
        """The time (epoch seconds) this store judges expiry and liveness by, and stamps heartbeats and claims
        with: this machine's clock for the file store, the server's for PostgreSQL."""

    def ensure_layout(self) -> None:
        """Make whatever must exist before the first operation (idempotent, cheap once done)."""

    def subscribe(self, callback: Callable[[str | None], object]) -> Callable[[], None] | None:
        """Call ``callback(recipient or None)`` on every change, from another thread, until the returned
        function is called; ``None`` when the store has no change notifications (watch ``mesh_dir`` or poll)."""

    def feed_file(self) -> tuple[str, Callable[[int], str]] | None:
        """The feed as a file to tail: its path and the path of its ``i``-th older generation; ``None`` when
        the feed lives elsewhere (follow it with ``read_feed``)."""

    # -- registry ---------------------------------------------------------
    def register(self, agent: dict) -> dict:
        """Register ``agent`` (an agent record).  If the name is held by a live
        agent of another session (and another owner process), raise
        :class:`~pi_mesh_plugin.errors.NameTaken`.  A dead holder's name is taken
        over: its claims are dropped, and its unread mail handed to the new session when that is a restart
        (:func:`pi_mesh_plugin.store.takeover.inherits`), else set aside.  Returns
        ``{"agent": record, "replaced": old_session_or_None, "orphaned": n set aside, "handed": n kept}``."""

    def unregister(self, name: str, session: str | None = None) -> bool:
        """Remove the agent (only that session's, if given) and all its claims."""

    def update_agent(self, name: str, session: str | None, changes: dict) -> dict | None:
        """Merge ``changes`` into the agent record (heartbeat, status, activity); ``None`` if gone."""

    def get_agent(self, name: str) -> dict | None: ...

    def has_agent(self, name: str) -> bool:
        """Whether ``name`` is registered (live or not) - what ``send`` asks of every recipient."""

    def list_agents(self) -> list[dict]: ...

    def is_live(self, agent: dict) -> bool:
        """Liveness of an agent record, by owner process or heartbeat."""

    # -- messages ---------------------------------------------------------
    def deliver(self, messages: list[dict]) -> None:
        """Durably deliver each message record to its ``to`` inbox."""

    def broadcast(self, message: dict, recipients: list[str]) -> None:
        """Durably deliver one message (``to`` is ``*``, ``broadcast`` true) to each recipient.

        Each recipient fetches it with ``to`` set to its own name.  The file store writes one
        file and links it into every inbox; PostgreSQL inserts a row per recipient.
        """

    def fetch(self, name: str, unread_only: bool = True) -> list[tuple[dict, bool]]:
        """Messages of ``name`` in id order, each with its read flag; no state changes."""

    def mark_read(self, name: str, ids: list[str], via: str | None = None) -> int:
        """Mark messages read; returns how many changed.  With ``via`` (the adapter that put them into the
        reader's context) each gets a "shown" receipt, once: the first adapter and time are kept."""

    def receipts(self, sender: str, ids: list[str] | None = None) -> list[dict]:
        """``sender``'s messages (these ids, all when ``None``) in id order, one row per recipient:
        ``{"message": record addressed to the recipient, "read": bool, "set_aside": session or None,
        "shown": time or None, "via": adapter or None}``."""

    def orphaned(self, name: str) -> dict[str, int]:
        """``{old session: count}`` of the unread mail set aside when ``name`` was taken over."""

    def fetch_orphaned(self, name: str) -> list[tuple[str, dict]]:
        """``[(old session, message)]``: the mail set aside for ``name``, by session then id."""

    def adopt(self, name: str, sessions: list[str] | None = None) -> int:
        """Make the mail set aside for ``name`` (these sessions', all when ``None``) unread mail of ``name``
        again; returns how many messages."""

    def get_message(self, name: str, msg_id: str) -> dict | None:
        """One message of ``name``'s inbox by id, read or not."""

    def unread_count(self, name: str) -> int: ...

    # -- reservations -----------------------------------------------------
    def claim(self, holder: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
              ttl: float) -> list[dict]:
        """Atomically claim ``wanted`` (``(canonical path, kind)`` pairs) or refuse all."""

    def release(self, holder: str, paths: list[str] | None = None) -> list[dict]:
        """Release the holder's claims on exactly these canonical paths (all when ``None``)."""

    def reservations(self) -> list[dict]:
        """Every stored claim, live or not."""

    def held_by(self, holder: str) -> list[dict]:
        """``holder``'s claims (every session, expired or not), by id: ``reservations()`` filtered, without
        reading everyone else's."""

    def covering(self, path: str, kind: str = "file") -> list[dict]:
        """Stored claims that overlap ``path`` (canonical); the caller judges expiry and liveness."""

    # -- the waiting line -------------------------------------------------
    def enqueue(self, agent: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
                ttl: float) -> dict:
        """Join the line for ``wanted`` (or keep one's place when already in it for exactly these paths).

        Returns ``{"granted": claims, "ticket": t}`` when granted at once, else ``{"granted": None, "ticket": t,
        "position": n, "ahead": [agents], "holders": [agents in the way]}``; the holders are told (a message from
        ``mesh``).  Raises :class:`~pi_mesh_plugin.errors.WaitCycle` (nothing queued) when waiting would close
        a cycle."""

    def withdraw(self, agent: str, paths: list[str] | None = None) -> list[dict]:
        """Leave the line: the agent's tickets touching these canonical paths (all when ``None``)."""

    def tickets(self) -> list[dict]:
        """The whole line, in order (ticket records: ``id``, ``agent``, ``paths``, ``reason``, ``ttl``, ``queued``)."""

    def settle(self) -> list[tuple[dict, list[dict]]]:
        """Grant what can be granted now (expired claims, dead holders and waiters are noticed here)."""

    def mark_once(self, key: str) -> bool:
        """``True`` the first time ``key`` is marked in this project, ``False`` after (one-time notices)."""
    # -- edit ledger ------------------------------------------------------
    def record_write(self, entry: dict) -> dict:
        """Store ``entry`` (``{path, agent, session, tree, blob, deleted, size, mtime_ns, tool, ts}``) as the
        latest write of ``(tree, path)``; returns the entry now stored.  An existing entry of *another* agent
        with the same content (``blob`` and ``deleted``) is kept: a write that left nothing new takes nothing
        over.  ``tree`` names the working tree (``host:root``): uncommitted changes live in one."""

    def ledger(self, tree: str, paths: list[str] | None = None) -> list[dict]:
        """The latest recorded write of each of ``paths`` (all when ``None``) in the working tree ``tree``."""

    def hand_over(self, tree: str, path: str, changes: dict) -> dict | None:
        """Merge ``changes`` (a new ``agent``/``session``, ``handed_over_by``) into the entry of ``path``;
        ``None`` when there is none."""

    # -- feed and upkeep --------------------------------------------------
    def append_feed(self, event: dict) -> None: ...

    def read_feed(self, limit: int | None = None) -> list[dict]: ...

    def recent_messages(self, since: str) -> list[dict]:
        """The feed's ``message`` events stamped at or after ``since`` (ISO), oldest first, read from the newest
        end only (see :mod:`pi_mesh_plugin.limits`)."""

    def doctor(self, fix: bool = False) -> list[dict]:
        """Findings (stale agents, expired or orphaned claims, bad records, leftovers), fixed when asked."""

    def close(self) -> None: ...
