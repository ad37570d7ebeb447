"""The watcher (inotify, polling, store notifications), the feed tailer, and ``pi-mesh watch`` as a real process."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time

import pytest

from pi_mesh_plugin.store.files import FileStore
from pi_mesh_plugin.store.files.feed import Feed
from pi_mesh_plugin.watcher import FeedTailer, StoreFeedFollower, Watcher, feed_follower, topic_of

from .conftest import PI_MESH, REPO, run_cli


class Collector:
    """A watcher callback that records every call."""

    def __init__(self) -> None:
        self.calls: queue.Queue = queue.Queue()
        self.seen: list[frozenset] = []

    def __call__(self, topics: frozenset) -> None:
        self.calls.put(topics)

    def wait_for(self, topic: str, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while True:
            if any(topic in t for t in self.seen):
                return
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {topic!r} change reported within {timeout}s (got {self.seen})")
            try:
                self.seen.append(self.calls.get(timeout=left))
            except queue.Empty:
                pass

    def drain(self, quiet: float) -> list[frozenset]:
        """Calls arriving until none came for ``quiet`` seconds."""
        got = []
        while True:
            try:
                got.append(self.calls.get(timeout=quiet))
            except queue.Empty:
                return got

    def reset(self) -> None:
        self.seen = []


def test_topic_of():
    assert topic_of("agents/bob.json") == "agents"
    assert topic_of("agents/.tmp-1-ab-bob.json") == "agents"
    assert topic_of("reservations/123-abc.json") == "reservations"
    assert topic_of("inbox/bob/new/1-a.json") == "inbox"
    assert topic_of("inbox/bob/cur/1-a.json") == "inbox"
    assert topic_of("inbox/bob/tmp/1-a.123.tmp") is None
    assert topic_of("feed.jsonl") == topic_of("feed.1.jsonl") == "feed"
    assert topic_of("locks/agents.lock") is None and topic_of("index/claims.json") is None
    assert topic_of("bad/agents/x.json") is None


def _act_and_expect(make, watcher_mode: str, **kw) -> None:
    alice = make("alice")
    got = Collector()
    with Watcher(alice.store, got, mode=watcher_mode, **kw) as w:
        assert w.mode == watcher_mode
        bob = make("bob")  # join: agents + feed
        got.wait_for("agents")
        got.wait_for("feed")
        got.reset()
        bob.reserve(["src/auth/"], "refactor")
        got.wait_for("reservations")
        got.reset()
        alice.send("bob", "hi")
        got.wait_for("inbox")
        got.reset()
        bob.read_inbox()  # new/ -> cur/: unread counts change
        got.wait_for("inbox")
        got.drain(0.3)
        # reading the mesh is not a change: nothing is reported
        for _ in range(3):
            alice.agents(), alice.reservations(), alice.feed(), bob.read_inbox(unread_only=False, peek=True)
            alice.unread_count("bob"), alice.check("src/auth/login.py")
        assert got.drain(0.4) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("pi-mesh-watch")]
    bob.release()
    assert got.drain(0.3) == []  # stopped: no more callbacks


def test_inotify_watcher_reports_each_topic_and_ignores_reads(mesh_factory, project):
    _act_and_expect(lambda n: mesh_factory(n, cwd=project), "inotify")


def test_polling_watcher_reports_each_topic_and_ignores_reads(mesh_factory, project):
    _act_and_expect(lambda n: mesh_factory(n, cwd=project), "poll", poll_interval=0.05)


def test_burst_is_debounced_into_few_calls(mesh_factory):
    alice, bob = mesh_factory("alice"), mesh_factory("bob")
    got = Collector()
    with Watcher(alice.store, got, debounce=0.1, max_delay=1.0):
        for i in range(30):
            alice.send("bob", f"message {i}")
        calls = got.drain(0.5)
    assert 1 <= len(calls) <= 5, calls
    assert frozenset().union(*calls) >= {"inbox", "feed"}
    assert bob.unread_count() == 30


class NotifyingFileStore(FileStore):
    """The file store plus the notification seam a server-backed store offers (``subscribe``)."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.subscribers: list = []

    def subscribe(self, callback):
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def _tell(self, topic: str) -> None:
        for cb in list(self.subscribers):
            cb(topic)

    def append_feed(self, event: dict) -> None:
        super().append_feed(event)
        self._tell("feed")

    def claim(self, *a, **kw):
        made = super().claim(*a, **kw)
        self._tell("reservations")
        return made


def test_store_notifications_are_preferred_and_unsubscribed(project, mesh_factory):
    from pi_mesh_plugin.mesh import Mesh

    store = NotifyingFileStore(project)
    m = Mesh(project, "alice", store=store, cwd=project)
    m.join()
    got = Collector()
    w = Watcher(store, got).start()
    assert w.mode == "notify" and len(store.subscribers) == 1
    m.reserve(["src/"], "x")
    got.wait_for("reservations")
    got.wait_for("feed")
    w.stop()
    assert store.subscribers == []
    with pytest.raises(ValueError, match="no change notifications"):
        Watcher(FileStore(project), got, mode="notify").start()


class ApiOnly:
    """A real file store seen only through the Store protocol (no directory, no feed file), as a remote store is."""

    mesh_dir = None

    def __init__(self, store: FileStore) -> None:
        self._store = store

    def subscribe(self, callback):
        return None

    def feed_file(self):
        return None

    def ensure_layout(self) -> None:
        pass

    def __getattr__(self, name: str):
        if name == "feed":  # the file store's own feed object is not part of the interface
            raise AttributeError(name)
        return getattr(self._store, name)


def test_store_without_files_or_notifications_is_polled_through_its_api(project, mesh_factory):
    from pi_mesh_plugin.mesh import Mesh

    store = ApiOnly(FileStore(project))
    alice = Mesh(project, "alice", store=store, cwd=project)
    alice.join()
    follower = feed_follower(store)
    assert isinstance(follower, StoreFeedFollower)
    assert [e["event"] for e in follower.history()] == ["join"]
    got = Collector()
    with Watcher(store, got, poll_interval=0.05) as w:
        assert w.mode == "poll"
        bob = mesh_factory("bob", cwd=project)
        got.wait_for("agents")
        alice.send("bob", "hi")
        got.wait_for("inbox")
        bob.reserve(["docs/"], "docs")
        got.wait_for("reservations")
        got.wait_for("feed")
    assert [(e["event"], e["agent"]) for e in follower.read()] == [("join", "bob"), ("message", "alice"),
                                                                   ("reserve", "bob")]
    assert follower.read() == []


# -- the feed tailer ---------------------------------------------------------------

def test_tailer_reads_appended_lines_only_and_waits_for_a_whole_line(tmp_path):
    path = str(tmp_path / "feed.jsonl")
    with open(path, "w") as f:
        f.write('{"n": 1}\n{"n": 2}\n{"n": 3, "torn')  # a line still being written
    t = FeedTailer(path)
    assert t.read() == []
    assert t.history() == [{"n": 1}, {"n": 2}]
    with open(path, "a") as f:
        f.write('": true}\n{"n": 4}\n{"n": ')
    assert t.read() == [{"n": 3, "torn": True}, {"n": 4}]
    assert t.read() == []
    with open(path, "a") as f:
        f.write('5}\nnot json\n{"n": 6}\n')
    assert t.read() == [{"n": 5}, {"n": 6}]
    # truncated in place (a hand-cleared log): start again from the top
    with open(path, "w") as f:
        f.write('{"n": 7}\n')
    assert t.read() == [{"n": 7}]
    t.close()


def test_tailer_follows_rotation_without_loss_or_duplicates(tmp_path):
    mesh_dir = str(tmp_path)
    os.makedirs(os.path.join(mesh_dir, "locks"))
    feed = Feed(mesh_dir, max_bytes=2000)  # rotates every ~25 events
    feed.append({"event": "before", "n": -1})
    t = FeedTailer(feed.path, generations=feed.generation, keep=3)
    assert [e["n"] for e in t.history()] == [-1]
    seen = []
    for n in range(200):
        feed.append({"event": "e", "n": n, "pad": "x" * 40})
        if n % 7 == 0:
            seen += t.read()
    seen += t.read()
    assert [e["n"] for e in seen] == list(range(200))
    assert os.path.exists(feed.generation(3))  # it did rotate, several times
    fresh = FeedTailer(feed.path, generations=feed.generation, keep=3)
    assert fresh.history() == feed.read()
    assert fresh.history(5) == feed.read()[-5:] and fresh.history(0) == []
    t.close()
    fresh.close()


def test_tailer_on_a_feed_that_does_not_exist_yet(tmp_path):
    path = str(tmp_path / "feed.jsonl")
    t = FeedTailer(path)
    assert t.read() == [] and t.history() == []
    with open(path, "w") as f:
        f.write('{"n": 1}\n')
    assert t.read() == [{"n": 1}]
    t.close()


# -- pi-mesh watch / feed --follow as real processes ---------------------------------

class Proc:
    """A pi-mesh process whose stdout lines are collected by a thread."""

    def __init__(self, *args: str, cwd: str) -> None:
        env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.p = subprocess.Popen([*PI_MESH, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, *needles: str, timeout: float = 10.0) -> str:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(f"no line with {needles} within {timeout}s; stderr: {self._err()}") from None
            if all(n in line for n in needles):
                return line

    def _err(self) -> str:
        if self.p.poll() is None:
            return "(still running)"
        return self.p.stderr.read() if self.p.stderr else ""

    def stop(self) -> tuple[int, str]:
        self.p.terminate()
        try:
            rc = self.p.wait(10)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.pump.join(5)
            assert self.p.stdout is not None and self.p.stderr is not None
            err = self.p.stderr.read()
            self.p.stdout.close()
            self.p.stderr.close()
        return rc, err


def test_pi_mesh_watch_prints_events_as_another_process_acts(project):
    assert run_cli("join", "--name", "alice", "--pid", "0", cwd=project).returncode == 0
    watch = Proc("watch", "-n", "1", cwd=project)  # -n 1: prints alice's join once it is following
    try:
        watch.expect("alice", "join")
        r = run_cli("--agent", "alice", "reserve", "src/auth/", "--reason", "fixing login", cwd=project)
        assert r.returncode == 0, r.stderr
        watch.expect("alice", "reserve", '"src/auth"', "fixing login")
        assert run_cli("join", "--name", "bob", "--pid", "0", cwd=project).returncode == 0
        assert run_cli("--agent", "bob", "send", "alice", "hello", cwd=project).returncode == 0
        watch.expect("bob", "join")
        watch.expect("bob", "message", 'to="alice"')
        assert watch.p.poll() is None  # still following
    finally:
        rc, err = watch.stop()
    assert rc == 0 and err == ""  # SIGTERM ends it cleanly: no traceback


def test_pi_mesh_feed_follow_json_with_polling(project):
    assert run_cli("join", "--name", "alice", "--pid", "0", cwd=project).returncode == 0
    follow = Proc("--json", "feed", "--follow", "-n", "1", "--poll", "0.1", cwd=project)
    try:
        first = json.loads(follow.expect('"join"'))
        assert first["agent"] == "alice"
        assert run_cli("--agent", "alice", "release", cwd=project).returncode == 0
        assert run_cli("--agent", "alice", "leave", cwd=project).returncode == 0
        ev = json.loads(follow.expect('"leave"'))
        assert ev["agent"] == "alice" and ev["event"] == "leave"
    finally:
        rc, err = follow.stop()
    assert rc == 0 and err == ""


def test_feed_once_and_bad_options(project):
    assert run_cli("join", "--name", "alice", "--pid", "0", cwd=project).returncode == 0
    r = run_cli("feed", "-n", "5", cwd=project)
    assert r.returncode == 0 and "alice" in r.stdout and "join" in r.stdout
    r = run_cli("--json", "feed", cwd=project)
    assert [e["event"] for e in json.loads(r.stdout)] == ["join"]
    r = run_cli("watch", "--poll", "0", cwd=project)
    assert r.returncode == 2 and r.stderr.startswith("pi-mesh: usage:") and "Traceback" not in r.stderr


def test_follow_api_stops_when_asked(project, mesh_factory):
    from pi_mesh_plugin.cli.feed import follow

    alice = mesh_factory("alice", cwd=project)
    got: list = []
    stop = threading.Event()
    t = threading.Thread(target=follow, args=(alice, got.append), kwargs={"stop": stop, "history": 10})
    t.start()
    try:
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        alice.send("alice", "note to self")
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        t.join(5)
    assert not t.is_alive()
    assert [e["event"] for e in got] == ["join", "message"]



# -- PostgreSQL: LISTEN/NOTIFY through the store's subscribe() ---------------------------

@pytest.mark.pg
def test_watcher_and_feed_on_postgres_use_notifications(pg_url, project, monkeypatch):
    from pi_mesh_plugin.mesh import Mesh

    monkeypatch.setenv("PI_MESH_STORE", pg_url)
    alice = Mesh(project, "alice", cwd=project)
    bob = Mesh(project, "bob", cwd=project)
    try:
        alice.join()
        follower = feed_follower(alice.store)
        assert [e["event"] for e in follower.history()] == ["join"]
        got = Collector()
        with Watcher(alice.store, got) as w:
            assert w.mode == "notify"
            bob.join()
            got.wait_for("agents")
            bob.reserve(["src/"], "pg test")
            got.wait_for("reservations")
            bob.send("alice", "hi")
            got.wait_for("inbox")
            got.wait_for("feed")
            got.drain(0.3)
            alice.agents(), alice.reservations(), alice.feed()
            assert got.drain(0.4) == []  # reads notify nobody
        assert [(e["event"], e["agent"]) for e in follower.read()] == [("join", "bob"), ("reserve", "bob"),
                                                                       ("message", "bob")]
    finally:
        alice.close()
        bob.close()


@pytest.mark.pg
def test_pi_mesh_watch_on_postgres(pg_url, project, monkeypatch):
    monkeypatch.setenv("PI_MESH_STORE", pg_url)
    assert run_cli("join", "--name", "alice", "--pid", "0", cwd=project).returncode == 0
    watch = Proc("watch", "-n", "1", cwd=project)
    try:
        watch.expect("alice", "join")
        r = run_cli("--agent", "alice", "reserve", "src/auth/", "--reason", "on postgres", cwd=project)
        assert r.returncode == 0, r.stderr
        watch.expect("alice", "reserve", "on postgres")
    finally:
        rc, err = watch.stop()
    assert rc == 0 and err == ""
