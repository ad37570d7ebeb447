"""Knowing when the mesh changes, without a busy loop.

:class:`Watcher` calls ``callback(topics)`` - a frozenset drawn from
:data:`TOPICS` (``agents``, ``reservations``, ``inbox``, ``feed``) - shortly
after the mesh changes.  Bursts are debounced into one call.  Where the
notifications come from depends on the store, best first:

``notify``
    The store offers ``subscribe(callback) -> unsubscribe`` (the PostgreSQL
    store can implement it with LISTEN/NOTIFY).  ``callback`` is called from
    any thread with a topic string (or ``None``: "something changed"); the
    return value is a callable, or an object with ``close()``, that ends the
    subscription.  Nothing else is asked of a backend.
``inotify``
    The file store: ``.pi/mesh/`` (``agents/``, ``reservations/``,
    ``inbox/*/new`` and ``cur``, ``feed*.jsonl``) watched with watchdog
    (inotify on Linux, FSEvents/kqueue elsewhere).  Reading the mesh creates
    no events (open/close-without-write are filtered out), so a dashboard that
    re-reads on every change does not wake itself up.
``poll``
    Fallback when watchdog is missing or cannot watch (inotify limits, network
    file systems) and for stores with neither: a cheap fingerprint of each
    topic every ``poll_interval`` seconds, sleeping in between.

Liveness and expiry change with time, not with files: a dashboard still
needs a slow clock to age its rows (see :mod:`pi_mesh_plugin.dashboard`).

:class:`FeedTailer` follows ``feed.jsonl`` as ``tail -F`` does: it reads only
the bytes appended since the last read (an open file descriptor plus an
offset), notices rotation by the inode changing and finishes the rotated file
before switching, and keeps a torn last line until its newline arrives.
:func:`feed_follower` picks a tailer for any store.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Self

    Event = dict[str, Any]

TOPICS = frozenset({"agents", "reservations", "inbox", "feed"})

Callback = Callable[[frozenset[str]], None]


def topic_of(rel: str) -> str | None:
    """The topic a path (relative to ``.pi/mesh``) belongs to, ``None`` for locks, temp and index files."""
    parts = rel.replace(os.sep, "/").split("/")
    head = parts[0]
    if head in ("agents", "reservations"):
        return head if len(parts) <= 2 else None
    if head == "inbox":
        if len(parts) <= 2 or parts[2] in ("new", "cur"):
            return "inbox"
        return None
    if head.startswith("feed") and head.endswith(".jsonl") and len(parts) == 1:
        return "feed"
    return None


class Watcher:
    """Debounced change notifications for one store (see the module docstring).

    ``mode`` is ``"auto"`` (notify, else inotify, else poll), or one of
    ``"notify"``, ``"inotify"``, ``"poll"`` to insist; after :meth:`start`,
    :attr:`mode` says which one runs.  ``topics`` restricts what is reported.
    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, store: Any, callback: Callback, *, topics: Iterable[str] = TOPICS, debounce: float = 0.05,
                 max_delay: float = 0.5, poll_interval: float = 1.0, mode: str = "auto") -> None:
        if mode not in ("auto", "notify", "inotify", "poll"):
            raise ValueError(f"unknown watch mode {mode!r}")
        self.store = store
        self.callback = callback
        self.topics = frozenset(topics) & TOPICS
        self.debounce = debounce
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.mode = mode
        self.errors: list[str] = []
        self._pending: set[str] = set()
        self._first = 0.0
        self._last = 0.0
        self._cond = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._observer: Any = None
        self._unsubscribe: Callable[[], object] | None = None
        self._stop_poll = threading.Event()

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> Self:
        wanted = self.mode
        self.mode = ""
        if wanted in ("auto", "notify"):
            self._start_notify()
            if not self.mode and wanted == "notify":
                raise ValueError("this store offers no change notifications")
        if not self.mode and wanted in ("auto", "inotify") and self.store.mesh_dir:
            try:
                self._start_inotify()
            except (ImportError, OSError) as e:
                if wanted == "inotify":
                    raise
                self.errors.append(f"file-system events unavailable ({type(e).__name__}: {e}); polling")
        if not self.mode:
            self._start_poll()
        t = threading.Thread(target=self._dispatch, name="pi-mesh-watch-dispatch", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop watching; no callback starts after this returns (one already running may finish)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._stop_poll.set()
        if self._unsubscribe is not None:
            try:
                self._unsubscribe()
            except Exception as e:  # noqa: BLE001 - a backend's failure to unsubscribe must not break shutdown
                self.errors.append(f"unsubscribe failed: {e}")
            self._unsubscribe = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None
        me = threading.current_thread()
        for t in self._threads:
            if t is not me:
                t.join(timeout)
        self._threads = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sources --------------------------------------------------------------
    def notify(self, topic: str | None = None) -> None:
        """Report a change of ``topic`` (``None``: every topic).  Thread-safe; sources call this."""
        topics = self.topics if topic is None or topic not in TOPICS else {topic} & self.topics
        if not topics:
            return
        with self._cond:
            t = time.monotonic()
            if not self._pending:
                self._first = t
            self._last = t
            self._pending.update(topics)
            self._cond.notify_all()

    def _start_notify(self) -> None:
        unsub = self.store.subscribe(self.notify)
        if unsub is not None:
            self._unsubscribe = unsub
            self.mode = "notify"

    def _start_inotify(self) -> None:
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        self.store.ensure_layout()
        assert self.store.mesh_dir is not None
        mesh_dir = os.path.abspath(self.store.mesh_dir)
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                for p in (event.src_path, getattr(event, "dest_path", "") or ""):
                    if isinstance(p, bytes):
                        p = os.fsdecode(p)
                    if not p:
                        continue
                    rel = os.path.relpath(p, mesh_dir)
                    if rel.startswith(".."):
                        continue
                    topic = topic_of(rel)
                    if topic:
                        watcher.notify(topic)

        # watchdog's recursive inotify warns when a directory created under a watched one (inbox/<new agent>/tmp)
        # is added twice - by the creation event and by the scan of its parent - and then keeps one callback.
        # Harmless, but under `-W error` the warning kills watchdog's emitter thread, and otherwise it is printed
        # over the dashboard: silence exactly that message.
        warnings.filterwarnings("ignore", message=r"Callback with id .* already exists for watch",
                                category=RuntimeWarning)
        observer = Observer()
        observer.daemon = True
        observer.schedule(Handler(), mesh_dir, recursive=True,
                          event_filter=[FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
                                        FileClosedEvent, DirCreatedEvent, DirDeletedEvent, DirMovedEvent])
        observer.start()
        self._observer = observer
        self.mode = "inotify"

    def _start_poll(self) -> None:
        fingerprint: Callable[[], dict[str, object]] = self._file_fingerprint if self.store.mesh_dir else self._store_fingerprint
        t = threading.Thread(target=self._poll, args=(fingerprint,), name="pi-mesh-watch-poll", daemon=True)
        self.mode = "poll"
        self._last_prints = fingerprint()
        t.start()
        self._threads.append(t)

    def _poll(self, fingerprint: Callable[[], dict[str, object]]) -> None:
        while not self._stop_poll.wait(self.poll_interval):
            try:
                prints = fingerprint()
            except Exception as e:  # noqa: BLE001 - a failed poll (store down) is retried, not fatal
                self.errors.append(f"poll failed: {type(e).__name__}: {e}")
                continue
            for topic, value in prints.items():
                if self._last_prints.get(topic) != value:
                    self.notify(topic)
            self._last_prints = prints

    def _file_fingerprint(self) -> dict[str, object]:
        base = self.store.mesh_dir

        def listing(d: str) -> tuple[tuple[str, int, int, int], ...]:
            out = []
            try:
                with os.scandir(d) as it:
                    for e in it:
                        try:
                            st = e.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        out.append((e.name, st.st_ino, st.st_size, st.st_mtime_ns))
            except (FileNotFoundError, NotADirectoryError):
                return ()
            return tuple(sorted(out))

        inbox = os.path.join(base, "inbox")
        boxes = []
        try:
            names = sorted(os.listdir(inbox))
        except FileNotFoundError:
            names = []
        for n in names:
            boxes.append((n, listing(os.path.join(inbox, n, "new")), listing(os.path.join(inbox, n, "cur"))))
        try:
            st = os.stat(os.path.join(base, "feed.jsonl"))
            feed: tuple[int, ...] = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            feed = ()
        return {"agents": listing(os.path.join(base, "agents")),
                "reservations": listing(os.path.join(base, "reservations")),
                "inbox": tuple(boxes), "feed": feed}

    def _store_fingerprint(self) -> dict[str, object]:
        s = self.store
        agents = s.list_agents()
        out: dict[str, object] = {"agents": _dump(agents), "reservations": _dump(s.reservations())}
        if "inbox" in self.topics:
            out["inbox"] = tuple(s.unread_count(a["name"]) for a in agents)
        if "feed" in self.topics:
            out["feed"] = _dump(s.read_feed(1))
        return out

    # -- delivery -------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                # debounce: wait for a quiet spell, but never longer than max_delay after the first change
                while not self._stopping:
                    t = time.monotonic()
                    quiet_at = self._last + self.debounce
                    deadline = self._first + self.max_delay
                    if t >= quiet_at or t >= deadline:
                        break
                    self._cond.wait(min(quiet_at, deadline) - t)
                if self._stopping:
                    return
                topics = frozenset(self._pending)
                self._pending.clear()
            try:
                self.callback(topics)
            except Exception as e:  # noqa: BLE001 - a failing consumer must not kill the watcher
                self.errors.append(f"callback failed: {type(e).__name__}: {e}")


def _dump(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


class FeedTailer:
    """Follow one append-only JSON-lines file across rotations, reading only new bytes.

    ``from_start=False`` starts at the current end (only later events are
    returned by :meth:`read`); :meth:`history` gives the events before that
    point, rotated generations included, without a gap or an overlap.
    """

    def __init__(self, path: str, from_start: bool = False, generations: Callable[[int], str] | None = None,
                 keep: int = 0) -> None:
        self.path = path
        self._gen = generations
        self._keep = keep
        self._fd: int | None = None
        self._ino: int | None = None
        self._offset = 0
        self._buf = b""
        self._old: tuple[int, int] | None = None  # (fd, offset) of the rotated file, drained once more
        self._start = 0
        self._open(seek_end=not from_start)
        self._start = self._offset

    def _open(self, seek_end: bool) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a link or fifo is not the feed
        except (FileNotFoundError, OSError):
            self._fd, self._ino, self._offset = None, None, 0
            return False
        st = os.fstat(fd)
        self._fd, self._ino = fd, st.st_ino
        self._offset = st.st_size if seek_end else 0
        if seek_end and self._offset:
            # start after the last complete line: a line being written belongs to what follows
            back = min(self._offset, 1 << 16)
            tail = os.pread(fd, back, self._offset - back)
            self._offset -= back - (tail.rfind(b"\n") + 1)
        return True

    def close(self) -> None:
        for fd in (self._fd, self._old[0] if self._old else None):
            if fd is not None:
                os.close(fd)
        self._fd, self._old = None, None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _drain(fd: int, offset: int) -> tuple[bytes, int]:
        chunks = []
        while True:
            data = os.pread(fd, 1 << 16, offset)
            if not data:
                break
            chunks.append(data)
            offset += len(data)
        return b"".join(chunks), offset

    def _lines(self, data: bytes) -> list[Event]:
        data = self._buf + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._buf = data
            return []
        self._buf = data[cut + 1:]
        return _parse(data[: cut + 1])

    def read(self) -> list[Event]:
        """The events appended since the last call (complete lines only)."""
        out: list[Event] = []
        if self._old is not None:  # a writer may still have appended to the rotated file
            fd, off = self._old
            data, _ = self._drain(fd, off)
            os.close(fd)
            self._old = None
            out += _parse(data)
        if self._fd is None and not self._open(seek_end=False):
            return out
        assert self._fd is not None
        data, self._offset = self._drain(self._fd, self._offset)
        out += self._lines(data)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None  # rotated away, the next file not created yet
        if st is None or st.st_ino != self._ino:
            if self._buf:
                out += _parse(self._buf + b"\n")
                self._buf = b""
            self._old = (self._fd, self._offset)
            self._fd = None
            if st is not None and self._open(seek_end=False):
                data, self._offset = self._drain(self._fd, 0)  # type: ignore[arg-type]
                out += self._lines(data)
        elif st.st_size < self._offset:  # truncated in place: start again from the top
            self._buf = b""
            data, self._offset = self._drain(self._fd, 0)
            out += self._lines(data)
        return out

    def history(self, limit: int | None = None) -> list[Event]:
        """Events written before this tailer started (the last ``limit``), oldest first."""
        out: list[Event] = []
        if self._gen is not None:
            for i in range(self._keep, 0, -1):
                from .store.files.feed import MAX_BYTES, read_tail

                data = read_tail(self._gen(i), 2 * MAX_BYTES)  # bounded; a symlink is not followed
                if data is not None:
                    out += _parse(data)
        if self._fd is not None and self._start:
            out += _parse(os.pread(self._fd, self._start, 0))
        if limit is not None:
            return out[-limit:] if limit > 0 else []
        return out


class StoreFeedFollower:
    """For stores without a feed file: re-read the recent feed and return what follows the last event seen."""

    WINDOW = 500

    def __init__(self, store: Any) -> None:
        self.store = store
        self._backlog: list[Event] = store.read_feed(self.WINDOW)
        self._last = _dump(self._backlog[-1]) if self._backlog else None

    def history(self, limit: int | None = None) -> list[Event]:
        if limit is not None:
            return self._backlog[-limit:] if limit > 0 else []
        return list(self._backlog)

    def read(self) -> list[Event]:
        events: list[Event] = self.store.read_feed(self.WINDOW)
        if not events:
            return []
        start = 0
        if self._last is not None:
            for i in range(len(events) - 1, -1, -1):
                if _dump(events[i]) == self._last:
                    start = i + 1
                    break
        new = events[start:]
        if new:
            self._last = _dump(new[-1])
        return new

    def close(self) -> None:
        pass


def feed_follower(store: Any) -> FeedTailer | StoreFeedFollower:
    """A follower of ``store``'s feed: a :class:`FeedTailer` on the file store, else a :class:`StoreFeedFollower`."""
    tail = store.feed_file()
    if tail is not None:
        store.ensure_layout()
        from .store.files.feed import KEEP

        return FeedTailer(tail[0], generations=tail[1], keep=KEEP)
    return StoreFeedFollower(store)


def _parse(data: bytes) -> list[Event]:
    from .store.files.feed import parse_lines

    return parse_lines(data)  # a torn, hand-edited or hostile line is skipped, as Feed.read does
