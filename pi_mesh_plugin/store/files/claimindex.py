"""The readers' side of :mod:`.claims`: an index of every claim keyed by canonical path.

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
from . import fsio
from .claimpaths import canonical_claim

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
