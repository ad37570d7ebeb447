"""The activity feed: ``feed.jsonl``, one JSON object per line, append-only.

Each event is one ``write(2)`` on a file opened with ``O_APPEND``, so lines
from concurrent writers never interleave.  When the file passes
``MAX_BYTES`` it is rotated (``feed.jsonl`` → ``feed.1.jsonl`` → … →
``feed.<KEEP>.jsonl``, the oldest dropped) under ``locks/feed.lock``, which
bounds the feed to about ``(KEEP + 1) × MAX_BYTES``.

A process keeps ``feed.jsonl`` open between events (every ``send`` appends
one, and opening the file again each time was a third of what ``send``
costs beyond its own fsyncs).  Before each write one ``fstat`` of the open
descriptor tells whether it is still the feed: the rotation clears the
write bits of the file it moves to ``feed.1.jsonl``, a deleted file has no
links left, and a descriptor closed and reused by someone else has another
inode; any of these opens ``feed.jsonl`` afresh.  A file renamed by hand is
noticed by a ``stat`` of the path at most a second later.
"""

from __future__ import annotations

import _thread
import os
import time
from stat import S_ISREG

from ...jsonc import dumps
from ...safejson import loads
from .fsio import flat_json

MAX_BYTES = 1 << 20
KEEP = 3
MAX_LINE = 4000
PATH_CHECK_S = 1.0  # how long a feed renamed by hand may still receive this process's events
_KEEP_OPEN = 4      # feeds (projects) this process keeps open at once

# path -> [fd, st_dev, st_ino, monotonic time of the last check of the path]; one lock, so that no
# thread closes a descriptor that another is about to write to
_open: dict[str, list] = {}
_lock = _thread.allocate_lock()


def _after_fork() -> None:
    global _lock
    _lock = _thread.allocate_lock()  # a fork while another thread held it must not leave the child locked


os.register_at_fork(after_in_child=_after_fork)


class Feed:
    def __init__(self, mesh_dir: str, max_bytes: int = MAX_BYTES) -> None:
        self.path = os.path.join(mesh_dir, "feed.jsonl")
        self.lock_path = os.path.join(mesh_dir, "locks", "feed.lock")
        self.max_bytes = max_bytes

    def append(self, event: dict) -> None:
        line = flat_json(event, "{", ":", ",", "}") or dumps(event, ensure_ascii=False, separators=(",", ":"))
        if len(line) > MAX_LINE:
            event = {k: (v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v) for k, v in event.items()}
            line = dumps(event, ensure_ascii=False, separators=(",", ":"))[:MAX_LINE]
            if not line.endswith("}"):
                line = dumps({k: event[k] for k in ("ts", "event", "agent") if k in event})
        try:
            data = (line + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a non-UTF-8 file name): \u-escape it, as fsio.dumps does
            data = (dumps(loads(line), separators=(",", ":")) + "\n").encode("ascii")
        with _lock:
            fd, size = self._descriptor()
            os.write(fd, data)
        if size + len(data) > self.max_bytes:
            self.rotate()

    def _descriptor(self) -> tuple[int, int]:
        """The open ``feed.jsonl`` and its size before this write (call with ``_lock`` held)."""
        ent = _open.get(self.path)
        if ent is not None:
            fd = ent[0]
            try:
                st = os.fstat(fd)
            except OSError:  # closed behind our back: nothing of ours to close
                del _open[self.path]
            else:
                if st.st_ino != ent[2] or st.st_dev != ent[1]:
                    del _open[self.path]  # the number now names someone else's file: leave it alone
                elif st.st_nlink == 0 or not st.st_mode & 0o200 or not self._still_named(ent, st):
                    del _open[self.path]
                    os.close(fd)  # deleted, rotated, or renamed by hand
                else:
                    return fd, st.st_size
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            from .links import refused

            raise refused(e, self.path) from None
        st = os.fstat(fd)
        if not S_ISREG(st.st_mode):  # a fifo or device placed as feed.jsonl: never written to
            os.close(fd)
            from ...errors import StoreError

            raise StoreError(f"{self.path} is not a regular file; run `pi-mesh doctor`")
        if len(_open) >= _KEEP_OPEN:
            oldest = next(iter(_open))
            os.close(_open.pop(oldest)[0])
        _open[self.path] = [fd, st.st_dev, st.st_ino, time.monotonic()]
        return fd, st.st_size

    def _still_named(self, ent: list, st: os.stat_result) -> bool:
        t = time.monotonic()
        if t - ent[3] < PATH_CHECK_S:
            return True
        try:
            named = os.lstat(self.path)
        except OSError:
            return False
        ent[3] = t
        return (named.st_ino, named.st_dev) == (st.st_ino, st.st_dev)

    def rotate(self) -> None:
        from filelock import FileLock

        with FileLock(self.lock_path, timeout=30):
            try:
                if os.stat(self.path).st_size <= self.max_bytes:
                    return  # another process rotated it
            except FileNotFoundError:
                return
            for i in range(KEEP - 1, 0, -1):
                older = self.generation(i)
                if os.path.exists(older):
                    os.replace(older, self.generation(i + 1))
            os.replace(self.path, self.generation(1))
            try:
                os.chmod(self.generation(1), 0o444)  # tells writers holding it open to open feed.jsonl afresh
            except OSError:
                pass  # not ours to change: writers holding it notice the rename within PATH_CHECK_S

    def generation(self, i: int) -> str:
        return self.path if i == 0 else self.path[: -len(".jsonl")] + f".{i}.jsonl"

    def read(self, limit: int | None = None) -> list[dict]:
        out: list[dict] = []
        for i in range(KEEP, -1, -1):
            data = read_tail(self.generation(i), 2 * self.max_bytes)
            if data is not None:
                out += parse_lines(data)
        return out[-limit:] if limit else out


_STR_FIELDS = ("ts", "event", "agent", "to", "tool", "path", "holder", "reason", "command", "harness")
_LIST_FIELDS = ("paths", "holders")


def feed_event(raw: bytes) -> dict | None:
    """One feed line as an event, or ``None`` for a line no reader should meet: torn, hand-edited,
    over twice ``MAX_LINE``, nested too deeply, or with a shown field of the wrong type."""
    if len(raw) > 2 * MAX_LINE:
        return None
    try:
        ev = loads(raw)
    except ValueError:
        return None
    if type(ev) is not dict:
        return None
    for k in _STR_FIELDS:
        v = ev.get(k)
        if v is not None and type(v) is not str:
            return None
    for k in _LIST_FIELDS:
        v = ev.get(k)
        if v is not None and (type(v) is not list or not all(type(x) is str for x in v)):
            return None
    return ev


def parse_lines(data: bytes) -> list[dict]:
    """The events of a run of feed lines; bad lines are skipped, never fatal."""
    out = []
    for raw in data.splitlines():
        if raw.strip():
            ev = feed_event(raw)
            if ev is not None:
                out.append(ev)
    return out


def read_tail(path: str, limit: int) -> bytes | None:
    """The last ``limit`` bytes of a feed file (whole lines only), ``None`` if absent or not a regular file.

    A symlink is not followed and a fifo is not waited on: the feed is always a file the mesh made."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        start = max(0, st.st_size - limit)
        data = os.pread(fd, st.st_size - start, start)
    finally:
        os.close(fd)
    if start:
        nl = data.find(b"\n")
        data = data[nl + 1:] if nl != -1 else b""
    return data
