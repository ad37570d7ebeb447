"""Reservations as files: ``reservations/<id>.json``, one claim per file.

Writers (``claim``, ``release``) work under an advisory lock
(``locks/reservations.lock``, :mod:`filelock`; the kernel drops it when its
holder dies, so a killed process never wedges the mesh) and make each change
as whole files: a new claim is a new file, a renewal writes a new file with a
new id and removes the old one.  A file's content therefore never changes
under its name, which lets readers cache records by file name.

A reserve of several paths is all or nothing, even for a writer killed part-way: each of its
claim files carries ``"batch": "<batch id>"``, and a claim with a batch is in force only once
``reservations/<batch>.batch`` exists - the commit marker, created (``link(2)``, fsynced) after
every claim file of the reserve is durable.  Readers see the marker in the same directory listing,
so the directory stamp that revalidates the index covers it; claims of a batch without its marker
are ``pending``, never counted, and since a reserve runs entirely under the lock, any pending claim
a lock holder sees is a killed reserve's: the next ``claim`` or ``drop_dead`` removes it (``doctor``
reports it as ``unfinished-reserve``).  A marker no claim file names any more is removed by the
writer that removed the last one.  Crash points ``claim-written`` (after the first claim file),
``claim-staged`` (all written, no marker) and ``claim-committed`` (marker made) are in the
torture suite.

The readers' side, the index, is :mod:`.claimindex`; what a claim is and when two conflict,
:mod:`pi_mesh_plugin.store.claim_rules`.
"""

from __future__ import annotations

import os

from ...clock import iso, new_id, parse_iso
from ...clock import now as clock_now
from ..claim_rules import conflict_message, find_conflicts, new_claim
from . import fsio, modes
from .claimindex import BATCH, ClaimIndex

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from filelock import FileLock

__all__ = ["ClaimIndex", "ClaimStore", "conflict_message", "find_conflicts", "new_claim"]


class ClaimStore:
    """The writers' side, used by :class:`~pi_mesh_plugin.store.files.FileStore`."""

    def __init__(self, mesh_dir: str, is_holder_live: Callable[[str, str | None], bool]) -> None:
        self.directory = os.path.join(mesh_dir, "reservations")
        self.lock_path = os.path.join(mesh_dir, "locks", "reservations.lock")
        self.index = ClaimIndex(self.directory, os.path.join(mesh_dir, "index", "claims.json"))
        self.is_holder_live = is_holder_live
        # Set by the waiting line (.queue): run inside this lock at the start of claim and the end of
        # release and drop_dead, so a freed claim goes to the first waiter atomically with its release.
        self.settle: Callable[[], object] | None = None

    def _lock(self) -> FileLock:
        from filelock import FileLock

        return FileLock(self.lock_path, timeout=30, mode=modes.FILE)

    def live(self, rec: dict, now: float, holders: dict | None = None) -> bool:
        """Unexpired and held by a live holder; ``holders`` memoises the holders within one operation."""
        try:
            if parse_iso(rec["expires"]) <= now:
                return False
        except ValueError:
            return False
        key = (rec["holder"], rec.get("session"))
        if holders is None:
            return self.is_holder_live(*key)
        if key not in holders:
            holders[key] = self.is_holder_live(*key)
        return holders[key]  # type: ignore[no-any-return]

    def claim(self, holder: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
              ttl: float) -> list[dict]:
        from ...errors import ReservationConflict

        with self._lock():
            if self.settle is not None:
                self.settle()  # waiters first: a claim freed by expiry or death goes to the line
            now = clock_now()
            index = self.index
            index.rescan()
            current = index.all()
            holders: dict = {}
            dead = [r for r in current if not self.live(r, now, holders)]
            gone = {id(r) for r in dead}  # by identity: `r not in dead` compared dicts, O(claims x dead)
            alive = [r for r in current if id(r) not in gone] if dead else current
            conflicts = find_conflicts(holder, wanted, alive)
            if conflicts:
                raise ReservationConflict(conflict_message(wanted, conflicts, now), conflicts)
            self._unlink(dead + list(index.pending.values()))  # pending under the lock: a killed reserve's
            made, renewed = [], []
            expires = iso(now + ttl)
            paths = list(dict.fromkeys(wanted))
            batch = new_id(now) if len(paths) > 1 else None
            for path, kind in paths:
                rec, old = new_claim(holder, session, path, kind, reason, now, expires, alive)
                if batch is not None:
                    rec["batch"] = batch
                fsio.create_exclusive(os.path.join(self.directory, rec["id"] + ".json"), fsio.dumps(rec))
                fsio.crash_point("claim-written")
                renewed += old
                made.append(rec)
            if batch is not None:  # every claim file is durable: one atomic create puts them all in force
                fsio.crash_point("claim-staged")
                marker = {"schema": 1, "batch": batch, "holder": holder, "claims": [r["id"] for r in made]}
                fsio.create_exclusive(os.path.join(self.directory, batch + BATCH), fsio.dumps(marker))
                fsio.crash_point("claim-committed")
            self._unlink(renewed)  # a renewal's new file exists (durably) before the old one goes
            index.rescan()
            self._sweep()
            index.write_index_file()
            return made

    def release(self, holder: str, paths: list[str] | None, session: str | None = None) -> list[dict]:
        with self._lock():
            self.index.rescan()
            gone = [r for r in self.index.all() if r["holder"] == holder
                    and (paths is None or r["path"] in paths)
                    and (session is None or r.get("session") in (session, None))]
            self._drop(gone)
            if self.settle is not None:
                self.settle()
            return gone

    def drop_dead(self) -> list[dict]:
        """Remove expired claims and claims of dead holders; returns them."""
        with self._lock():
            now = clock_now()
            self.index.rescan()
            holders: dict = {}
            gone = [r for r in self.index.all() if not self.live(r, now, holders)]
            self._drop(gone + list(self.index.pending.values()))  # pending under the lock: never committed
            if self.settle is not None:
                self.settle()
            return gone

    def _drop(self, recs: list[dict]) -> None:
        """Remove these claims and bring the index (and its file) up to date.  Under the lock."""
        if recs or self.index.markers:
            self._unlink(recs)
            self.index.rescan()
            self._sweep()
            self.index.write_index_file()

    def _sweep(self) -> None:
        """Remove the commit markers no claim file names any more.  Under the lock, after a rescan."""
        index = self.index
        used = {r.get("batch") for r in (*index.files.values(), *index.pending.values())}
        stale = [m for m in index.markers if m[: -len(BATCH)] not in used]
        for m in stale:
            try:
                os.unlink(os.path.join(self.directory, m))
            except FileNotFoundError:
                pass
        if stale:
            fsio.fsync_dir(self.directory)
            index.rescan()

    def _unlink(self, recs: list[dict]) -> None:
        """Remove the claim files, then fsync the directory once.  Under the lock."""
        for rec in recs:
            try:
                os.unlink(os.path.join(self.directory, rec["id"] + ".json"))
            except FileNotFoundError:
                pass
        if recs:
            fsio.fsync_dir(self.directory)
