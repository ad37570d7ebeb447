"""The agent registry: ``agents/<name>.json``, one file per agent.

Registration takes ``locks/agents.lock`` and creates the file with
``link(2)`` (atomic content, O_EXCL semantics), so two agents can never hold
one name.  A name whose holder is dead may be taken over; the caller
(:class:`~pi_mesh_plugin.store.files.FileStore`) then drops the old session's
claims and sets its unread mail aside.

Readers keep each parsed record with the file's identity (``lstat``: inode,
size, mtime, ctime) and reuse it while the identity is unchanged - every
writer replaces the file with a new inode, and an in-place edit changes the
mtime.  As for the claims index, a record read within a racy window of its
file's mtime is not kept (a second write in the same clock tick could leave
the identity unchanged), so a change is always seen by the next read.
"""

from __future__ import annotations

import os
import time

from ...errors import CorruptRecord, NameTaken
from ...liveness import is_live, same_namespace
from ...names import validate_name
from . import fsio
from . import modes
from .claimindex import _racy

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from filelock import FileLock


class Registry:
    def __init__(self, mesh_dir: str, heartbeat_ttl: float) -> None:
        self.directory = os.path.join(mesh_dir, "agents")
        self.lock_path = os.path.join(mesh_dir, "locks", "agents.lock")
        self.bad_dir = os.path.join(mesh_dir, "bad", "agents")
        self.heartbeat_ttl = heartbeat_ttl
        self._cache: dict[str, tuple[tuple | None, dict]] = {}
        self.replaced: dict | None = None  # the record the last register() took the name from

    def _lock(self) -> FileLock:
        from filelock import FileLock

        return FileLock(self.lock_path, timeout=30, mode=modes.FILE)

    def path(self, name: str) -> str:
        return os.path.join(self.directory, validate_name(name) + ".json")

    def exists(self, name: str) -> bool:
        """Whether ``name`` has a readable record: :meth:`get` without the copy when the cache is current."""
        hit = self._cache.get(name)
        if hit is not None:
            try:
                st = os.lstat(self.path(name))
            except FileNotFoundError:
                self._cache.pop(name, None)
                return False
            except OSError:
                st = None
            if st is not None and hit[0] == _identity(st):
                return True
        return self.get(name) is not None

    def read(self, name: str) -> dict | None:
        """The agent record, ``None`` if absent; :class:`CorruptRecord` if unreadable."""
        p = self.path(name)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            self._cache.pop(name, None)
            return None
        except OSError:
            st = None
        ident = None if st is None else _identity(st)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == ident:
            return _copy(hit[1])
        started = time.time_ns()
        try:
            rec = fsio.read_json(p)
        except FileNotFoundError:
            self._cache.pop(name, None)
            return None
        except (ValueError, OSError) as e:
            self._cache.pop(name, None)
            raise CorruptRecord(p, str(e)) from None
        from ...schema import validate

        try:
            validate("agent", rec, p)
            if rec["name"] != name:
                raise CorruptRecord(p, f"holds the name {rec['name']!r}")
        except CorruptRecord:
            self._cache.pop(name, None)
            raise
        if st is not None and not _racy(started, st.st_mtime_ns) and not _racy(started, st.st_ctime_ns):
            self._cache[name] = (ident, rec)
            return _copy(rec)
        self._cache.pop(name, None)
        return rec

    def get(self, name: str) -> dict | None:
        try:
            return self.read(name)
        except CorruptRecord:
            return None

    def live(self, rec: dict) -> bool:
        return is_live(rec, self.heartbeat_ttl)

    def register(self, rec: dict) -> tuple[dict, str | None]:
        """Register ``rec``; returns it (as stored) and the session it replaced, if any."""
        from ...schema import validate

        name = rec["name"]
        p = self.path(name)
        fsio.ensure_dir(self.directory)
        with self._lock():
            try:
                old = self.read(name)
            except CorruptRecord:
                fsio.move_aside(p, self.bad_dir)
                old = None
            if old is None:
                validate("agent", rec, p)
                fsio.create_exclusive(p, fsio.dumps(rec))
                return rec, None
            same_owner = (old["pid"] == rec["pid"] and old.get("pid_start") == rec.get("pid_start")
                          and old["host"] == rec["host"] and rec["pid"] != 0 and same_namespace(old, rec))
            if old["session"] == rec["session"] or same_owner:
                rec = {**rec, "session": old["session"], "started": old["started"]}
                validate("agent", rec, p)
                fsio.write_atomic(p, fsio.dumps(rec))
                return rec, None
            if self.live(old):
                raise NameTaken(name, old.get("pid"), old.get("host"))
            validate("agent", rec, p)
            fsio.write_atomic(p, fsio.dumps(rec))
            self.replaced = old
            return rec, old["session"]

    def unregister(self, name: str, session: str | None) -> dict | None:
        with self._lock():
            old = self.get(name)
            if old is None or (session is not None and old["session"] != session):
                return None
            os.unlink(self.path(name))
            fsio.fsync_dir(self.directory)
            return old

    def update(self, name: str, session: str | None, changes: dict) -> dict | None:
        from ...schema import validate

        with self._lock():
            old = self.get(name)
            if old is None or (session is not None and old["session"] != session):
                return None
            rec = {**old, **changes}
            validate("agent", rec, self.path(name))
            fsio.write_atomic(self.path(name), fsio.dumps(rec))
            return rec

    def all(self, warnings: list[str] | None = None) -> list[dict]:
        out = []
        for fn in sorted(fsio.listdir(self.directory)):
            name = fn[:-5] if fn.endswith(".json") else fn
            try:
                rec = self.read(name)
            except (CorruptRecord, ValueError) as e:  # ValueError: a file name that is no valid agent name
                if warnings is not None:
                    warnings.append(f"skipped {os.path.join(self.directory, fn)}: {e}")
                continue
            if rec is not None:
                out.append(rec)
        return out


def _identity(st: os.stat_result) -> tuple:
    """What tells one version of a registry file from another (every writer replaces the file)."""
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _copy(rec: dict) -> dict:
    """A copy a caller may change without touching the cached record (``activity`` is the one nested value)."""
    out = dict(rec)
    act = out.get("activity")
    if type(act) is dict:
        out["activity"] = {k: (list(v) if type(v) is list else v) for k, v in act.items()}
    return out
