"""Reservations as files: ``reservations/<id>.json``, one claim per file.

Writers (``claim``, ``release``) work under an advisory lock
(``locks/reservations.lock``, :mod:`filelock`; the kernel drops it when its
holder dies, so a killed process never wedges the mesh) and make each change
as whole files: a new claim is a new file, a renewal writes a new file with a
new id and removes the old one.  A file's content therefore never changes
under its name, which lets readers cache records by file name.

Readers (``covering``, the guard's hot path) never take the lock.  They keep
an index of all claims keyed by canonical path, revalidated on every call by
one ``stat`` of the directory: any entry added, renamed or removed changes the
directory's mtime.  Timestamps are coarse (a kernel tick, or a whole second on
some filesystems), so - as git does with a "racily clean" index - an index
whose scan began less than a racy window after the directory's mtime is not
trusted, and the next call rescans (incrementally: only unseen names are read).
A claim is therefore visible to the next ``covering`` call the moment
``claim`` returned, in any process.

A fresh process (a hook run per tool call) would have to read every claim
file; writers therefore also leave ``index/claims.json``, the whole index
with the directory stamp it was built from, and readers use it under the same
rule.  The files in ``reservations/`` stay the truth: the index is only used
when its stamp matches the directory, and is rebuilt from the files otherwise.

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

The index file is one JSON document laid out one claim per line, each line
starting with the claim's path (``{"path":"src/auth",...}``), with the number
of claims in the header line.  A fresh process asking about one file does not
parse it all: it checks the layout (the count of claim lines, a C-speed
byte count) and parses only the lines of the path's prefixes, found by byte
search; anything else (a directory query, a listing, a rescan, a layout that
does not check out) parses the whole document as before.
"""

from __future__ import annotations

import os
import time
from stat import S_ISDIR, S_ISLNK

from ... import paths as P
from ...jsonc import dumps as _dumps
from ...safejson import loads
from ...clock import iso, new_id, parse_iso
from ...clock import now as clock_now
from . import fsio
from . import modes
from .claimpaths import canonical_claim

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from filelock import FileLock

INDEX_MAX_BYTES = 256 << 20   # the index of ~500,000 claims; a larger (hand-made) file is not read
RACY_NS = 50_000_000          # > one kernel tick at HZ=100 (10 ms), with margin
RACY_COARSE_NS = 2_500_000_000  # filesystems with whole-second timestamps


BATCH = ".batch"  # reservations/<batch>.batch: the commit marker of a reserve of several paths
_INDEXED_KEYS = ("id", "holder", "path", "kind", "reason", "created", "expires")


def _lazy_header(raw: bytes) -> dict | None:
    """The header of an index file in the one-claim-per-line layout, if its layout checks out."""
    if not raw.startswith(b'{"schema":1,'):
        return None
    nl = raw.find(b"\n")
    if nl == -1 or not raw.endswith(b"\n]}\n"):
        return None
    first = raw[:nl]
    if not first.endswith(b',"claims":['):
        return None
    try:
        head = loads(first[: -len(',"claims":[')] + b"}")
        if not isinstance(head, dict):
            return None
        n = head["count"]
        if type(n) is not int or type(head["mtime_ns"]) is not int or type(head["ino"]) is not int \
                or type(head["scan_start_ns"]) is not int:
            return None
    except (ValueError, KeyError, TypeError):
        return None
    # every claim on a line of its own, each line a claim: n claim lines, n + 2 newlines in all
    if raw.count(b'\n{"path":') != n or raw.count(b"\n") != n + 2:
        return None
    return head


def _racy(scan_start_ns: int, mtime_ns: int) -> bool:
    window = RACY_COARSE_NS if mtime_ns % 1_000_000_000 == 0 else RACY_NS
    return scan_start_ns - mtime_ns <= window


class ClaimIndex:
    """An in-memory view of ``reservations/``: ``{name: record}`` plus lookup tables."""

    __slots__ = ("directory", "index_file", "stamp", "scan_start", "files", "bad", "by_path", "_under", "_raw",
                 "_lazy_left", "_roots", "pending", "markers")
    LAZY_QUERIES = 4

    def __init__(self, directory: str, index_file: str) -> None:
        self.directory = directory
        self.index_file = index_file
        self.stamp: tuple[int, int] | None = None
        self.scan_start = 0
        self.files: dict[str, dict] = {}
        self.bad: dict[str, str] = {}
        self.by_path: dict[str, list[dict]] = {}
        self._under: set[str] | None = set()
        self._raw: bytes | None = None  # index file bytes not parsed yet (see the module docstring)
        self._lazy_left = 0
        self._roots: tuple[str, str] | None = None
        self.pending: dict[str, dict] = {}  # claims of a reserve not committed (yet, or ever): never in force
        self.markers: set[str] = set()  # names of commit markers, <batch>.batch

    def roots(self) -> tuple[str, str]:
        """The project root (``<root>/.pi/mesh/reservations``) as spelled and resolved, for :mod:`.claimpaths`."""
        if self._roots is None:
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(self.directory))))
            self._roots = (root, P.normalise_root(root))
        return self._roots

    @property
    def under(self) -> set[str]:
        """Every proper ancestor of a claimed path (built on the first directory query: a hook
        process checking one file never pays for it)."""
        self._materialise()
        u = self._under
        if u is None:
            u = set()
            for p in self.by_path:
                if p != P.ROOT:
                    u.update(P.prefixes(p)[:-1])
            self._under = u
        return u

    # -- freshness ----------------------------------------------------------
    def current(self) -> ClaimIndex:
        """Bring the index up to date with the directory (cheap when nothing changed)."""
        try:
            st = os.lstat(self.directory)
        except FileNotFoundError:
            self._set({}, {}, None, time.time_ns())
            return self
        if not S_ISDIR(st.st_mode):
            from ...errors import StoreError, SymlinkRefused

            if S_ISLNK(st.st_mode):
                raise SymlinkRefused(self.directory)  # another directory's claims are not this project's
            # Reading a file (or anything else) here as "no claims" would let every write through.
            raise StoreError(f"{self.directory} is not a directory; the reservations cannot be read")
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self.stamp and not _racy(self.scan_start, stamp[0]):
            return self
        if self.stamp is None and self._load_index_file(stamp):
            return self
        self.rescan()
        return self

    def _load_index_file(self, stamp: tuple[int, int]) -> bool:
        try:
            fd = os.open(self.index_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return False  # absent, or a symlink: the files are read instead
        try:
            raw = os.read(fd, INDEX_MAX_BYTES + 1)
        except OSError:
            return False
        finally:
            os.close(fd)
        if len(raw) > INDEX_MAX_BYTES:
            return False
        head = _lazy_header(raw)
        if head is not None:
            if (head["mtime_ns"], head["ino"]) != stamp or _racy(head["scan_start_ns"], stamp[0]):
                return False
            self._set({}, {}, stamp, head["scan_start_ns"])
            self._raw = raw  # parsed line by line on demand
            self._lazy_left = self.LAZY_QUERIES
            return True
        return self._parse_index(raw, stamp)

    def _materialise(self) -> bool:
        """Parse a lazily loaded index file in full; ``False`` (and nothing loaded) if it does not parse."""
        raw = self._raw
        if raw is None:
            return True
        self._raw = None
        stamp = self.stamp
        if stamp is not None and self._parse_index(raw, stamp):
            return True
        self._set({}, {}, None, 0)  # a damaged cache: forget it and read the files
        self.rescan()
        return False

    def _parse_index(self, raw: bytes, stamp: tuple[int, int]) -> bool:
        try:
            data = loads(raw)
            if not isinstance(data, dict):
                return False
            if (data["mtime_ns"], data["ino"]) != stamp or _racy(data["scan_start_ns"], stamp[0]):
                return False
            files = {c["id"] + ".json": c for c in data["claims"]}
            # a cache is never trusted blindly: a damaged one is ignored (rebuilt), never fatal
            if not all(type(c.get(k)) is str for c in files.values() for k in _INDEXED_KEYS):
                return False
            self._set(files, {}, stamp, data["scan_start_ns"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        return True

    def rescan(self) -> None:
        """Re-read the directory; only names not seen before are parsed."""
        from ...schema import validate  # imported only when a claim file must be parsed

        self._materialise()  # reuse what the index file knew: only new names are read
        start = time.time_ns()
        try:
            st = os.lstat(self.directory)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        files: dict[str, dict] = {}
        bad: dict[str, str] = {}
        pending: dict[str, dict] = {}
        names = fsio.listdir(self.directory)
        markers = {n for n in names if n.endswith(BATCH)}
        for name in names:
            rec = self.files.get(name) or self.pending.get(name)
            if rec is None and name not in markers:
                full = os.path.join(self.directory, name)
                try:
                    if not name.endswith(".json"):
                        raise ValueError("is not a .json file")
                    rec = validate("reservation", fsio.read_json(full), full)
                    if rec["id"] + ".json" != name:
                        raise ValueError(f"holds id {rec['id']!r} but is named {name!r}")
                    rec = canonical_claim(rec, *self.roots())
                except FileNotFoundError:
                    continue  # released while we looked
                except (ValueError, OSError) as e:
                    bad[name] = str(e)
                    continue
            if rec is None:
                continue
            batch = rec.get("batch")
            if batch is not None and batch + BATCH not in markers:
                pending[name] = rec  # its reserve has not committed: all of its claims or none are in force
            else:
                files[name] = rec
        self._set(files, bad, stamp, start)
        self.pending, self.markers = pending, markers
        if stamp is not None and not _racy(time.time_ns(), stamp[0]):
            self.write_index_file()

    def _set(self, files: dict[str, dict], bad: dict[str, str], stamp: tuple[int, int] | None, start: int) -> None:
        by_path: dict[str, list[dict]] = {}
        for rec in files.values():
            p = rec["path"]
            recs = by_path.get(p)
            if recs is None:
                by_path[p] = [rec]
            else:
                recs.append(rec)
        self.files, self.bad, self.stamp, self.scan_start = files, bad, stamp, start
        self.by_path, self._under, self._raw = by_path, None, None

    def write_index_file(self) -> None:
        if self.stamp is None or not self._materialise():
            return
        claims = list(self.files.values())
        head = {"schema": 1, "mtime_ns": self.stamp[0], "ino": self.stamp[1], "scan_start_ns": self.scan_start,
                "count": len(claims)}
        def dump(obj: object) -> str:
            return _dumps(obj, separators=(",", ":"))  # ensure_ascii: the byte search relies on it

        lines = [dump({"path": c["path"], **c}) for c in claims]
        body = ",\n".join(lines) + "\n" if lines else ""
        text = dump(head)[:-1] + ',"claims":[\n' + body + "]}\n"
        try:
            fsio.write_atomic(self.index_file, text.encode("ascii"), durable=False)
        except OSError:
            pass  # the index is a cache; the files stay the truth

    # -- queries ------------------------------------------------------------
    def covering(self, path: str, kind: str = P.FILE) -> list[dict]:
        """Claims overlapping ``path``: claims covering it, and for a directory target, claims beneath it."""
        if self._raw is not None:
            # The first few file queries of a fresh process (a hook checks one or a few paths) are
            # answered from the lines they need; after that the process is a longer-lived one, which
            # parses the whole index once and then pays O(1) per query.
            if kind == P.FILE and path != P.ROOT and self._lazy_left > 0:
                self._lazy_left -= 1
                found = self._lazy_covering(path)
                if found is not None:
                    return found
            self._materialise()
        out: list[dict] = []
        by_path = self.by_path
        for prefix in P.prefixes(path):
            recs = by_path.get(prefix)
            if recs:
                for r in recs:
                    if r["kind"] == P.DIR or prefix == path:
                        out.append(r)
        if kind == P.DIR and (path in self.under or path == P.ROOT):
            seen = {id(r) for r in out}
            for p, recs in by_path.items():
                if p != path and P.is_within(p, path):
                    out.extend(r for r in recs if id(r) not in seen)
        return out

    def _lazy_covering(self, path: str) -> list[dict] | None:
        """``covering(path, FILE)`` from the unparsed index file (``None``: a line did not parse)."""
        raw = self._raw
        assert raw is not None
        out: list[dict] = []
        dump = _dumps
        for prefix in P.prefixes(path):
            needle = b'\n{"path":' + dump(prefix).encode("ascii") + b","
            i = raw.find(needle)
            while i != -1:
                end = raw.index(b"\n", i + 1)
                line = raw[i + 1:end]
                try:
                    rec = loads(line[:-1] if line.endswith(b",") else line)
                except ValueError:
                    return None
                if not isinstance(rec, dict) or not all(type(rec.get(k)) is str for k in _INDEXED_KEYS):
                    return None
                if rec["kind"] == P.DIR or prefix == path:
                    out.append(rec)
                i = raw.find(needle, end)
        return out

    def all(self) -> list[dict]:
        self._materialise()
        return sorted(self.files.values(), key=lambda r: r["id"])

    def held_by(self, holder: str) -> list[dict]:
        """``holder``'s claims, by id.  A fresh process (a hook renewing its agent's claims) parses only the
        index lines that name ``holder`` (inside an encoded string every quote is escaped, so the needle
        matches the holder field alone; each hit is checked once parsed)."""
        raw = self._raw
        if raw is not None:
            needle = b'"holder":' + _dumps(holder).encode("ascii")
            out: list[dict] = []
            i = raw.find(needle)
            while i != -1:
                start, end = raw.rfind(b"\n", 0, i) + 1, raw.index(b"\n", i)
                line = raw[start:end]
                try:
                    rec = loads(line[:-1] if line.endswith(b",") else line)
                except ValueError:
                    rec = None
                if not isinstance(rec, dict) or not all(type(rec.get(k)) is str for k in _INDEXED_KEYS):
                    break  # not the layout this search relies on: parse the whole index instead
                if rec["holder"] == holder:
                    out.append(rec)
                i = raw.find(needle, end)
            else:
                return sorted(out, key=lambda r: r["id"])
        return [r for r in self.all() if r["holder"] == holder]


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


def find_conflicts(holder: str, wanted: list[tuple[str, str]], alive: list[dict]) -> list[dict]:
    """The claims in ``alive`` of holders other than ``holder`` that overlap a wanted ``(path, kind)``, each once.

    Shared by every backend's ``claim``, as are :func:`new_claim` and :func:`conflict_message`."""
    conflicts: list[dict] = []
    for path, kind in wanted:
        for r in alive:
            if r["holder"] != holder and P.overlap(path, kind, r["path"], r["kind"]) and r not in conflicts:
                conflicts.append(r)
    return conflicts


def new_claim(holder: str, session: str | None, path: str, kind: str, reason: str, now: float, expires: str,
              alive: list[dict]) -> tuple[dict, list[dict]]:
    """``(validated claim record, the holder's claims in alive on exactly (path, kind) that it renews)``; a renewal
    keeps the first one's ``created``."""
    from ...schema import validate

    old = [r for r in alive if r["holder"] == holder and r["path"] == path and r["kind"] == kind]
    rec = {"schema": 1, "id": new_id(now), "holder": holder, "session": session, "path": path, "kind": kind,
           "reason": reason, "created": old[0]["created"] if old else iso(now), "expires": expires}
    validate("reservation", rec)
    return rec, old


def conflict_message(wanted: list[tuple[str, str]], conflicts: list[dict], now: float) -> str:
    from ...clock import format_duration

    parts = []
    for r in conflicts:
        shown = r["path"] + ("/" if r["kind"] == P.DIR and r["path"] != P.ROOT else "")
        try:
            left = format_duration(parse_iso(r["expires"]) - now)
        except ValueError:
            left = "?"
        parts.append(f'{shown} is reserved by {r["holder"]} ("{r["reason"]}", expires in {left})')
    asked = ", ".join(p + ("/" if k == P.DIR and p != P.ROOT else "") for p, k in wanted)
    return f"cannot reserve {asked}: " + "; ".join(parts) + ". Nothing was reserved; message the holder to coordinate."
