"""The activity feed: one line per event, rotation, and the descriptor a process keeps open.

Each process keeps ``feed.jsonl`` open between events; these tests make sure
the open descriptor never sends an event where no reader looks (a rotated,
deleted or renamed file) nor into a file that is not the feed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from pi_mesh_plugin.store.files import feed as feedmod
from pi_mesh_plugin.store.files.feed import KEEP, Feed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def mesh_dir(tmp_path):
    os.makedirs(tmp_path / "locks")
    return str(tmp_path)


def lines(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(x) for x in f]


def test_events_after_another_process_rotated_go_to_the_new_file(mesh_dir):
    feed = Feed(mesh_dir)
    feed.append({"event": "a"})
    # what Feed.rotate does in another process (this one's descriptor stays open on the old file)
    os.replace(feed.path, feed.generation(1))
    os.chmod(feed.generation(1), 0o444)
    feed.append({"event": "b"})
    assert lines(feed.generation(1)) == [{"event": "a"}]
    assert lines(feed.path) == [{"event": "b"}]


def test_a_deleted_feed_is_created_again(mesh_dir):
    feed = Feed(mesh_dir)
    feed.append({"event": "a"})
    os.unlink(feed.path)
    feed.append({"event": "b"})
    assert lines(feed.path) == [{"event": "b"}]


def test_a_feed_renamed_by_hand_stops_receiving_events_after_the_path_check(mesh_dir, monkeypatch):
    feed = Feed(mesh_dir)
    feed.append({"event": "a"})
    os.rename(feed.path, os.path.join(mesh_dir, "old-feed.jsonl"))
    monkeypatch.setattr(feedmod, "PATH_CHECK_S", 0.0)
    feed.append({"event": "b"})
    assert lines(feed.path) == [{"event": "b"}]
    assert lines(os.path.join(mesh_dir, "old-feed.jsonl")) == [{"event": "a"}]


def test_a_descriptor_closed_and_reused_elsewhere_is_never_written(mesh_dir, tmp_path):
    feed = Feed(mesh_dir)
    feed.append({"event": "a"})
    fd = feedmod._open[feed.path][0]
    other = str(tmp_path / "someone-elses.txt")
    src = os.open(other, os.O_WRONLY | os.O_CREAT, 0o644)  # while fd is open: another number
    os.close(fd)  # someone closes "all other descriptors"...
    reused = os.dup2(src, fd)  # ...and the number is handed out again (dup2: that very number)
    os.close(src)
    try:
        assert reused == fd
        feed.append({"event": "b"})
        with open(other) as f:
            assert f.read() == ""
        assert lines(feed.path) == [{"event": "a"}, {"event": "b"}]
        os.fstat(reused)  # still open: the feed did not close a descriptor that is not its own
    finally:
        os.close(reused)


def test_a_closed_descriptor_is_replaced(mesh_dir):
    feed = Feed(mesh_dir)
    feed.append({"event": "a"})
    os.close(feedmod._open[feed.path][0])
    feed.append({"event": "b"})
    assert lines(feed.path) == [{"event": "a"}, {"event": "b"}]


def test_only_a_few_feeds_stay_open(tmp_path):
    feeds = []
    for i in range(3 * feedmod._KEEP_OPEN):
        d = tmp_path / f"p{i}"
        os.makedirs(d / "locks")
        feeds.append(Feed(str(d)))
        feeds[-1].append({"event": "x", "n": i})
    assert len(feedmod._open) <= feedmod._KEEP_OPEN
    for i, f in enumerate(feeds):  # a feed whose descriptor was closed opens it again
        f.append({"event": "y", "n": i})
        assert lines(f.path) == [{"event": "x", "n": i}, {"event": "y", "n": i}]


_WRITER = """
import sys
from pi_mesh_plugin.store.files.feed import Feed
feed = Feed(sys.argv[1], max_bytes=int(sys.argv[2]))
for n in range(int(sys.argv[3])):
    feed.append({"event": "e", "w": int(sys.argv[4]), "n": n, "pad": "x" * 30})
"""


def test_concurrent_writers_rotating_lose_nothing_and_keep_old_generations_bounded(mesh_dir):
    """Four processes append while rotating one another's files: every line whole, none lost,
    and a rotated file stops growing (a writer holding it open noticed the rotation)."""
    writers, per, max_bytes = 4, 300, 25_000
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, mesh_dir, str(max_bytes), str(per), str(w)], env=env)
             for w in range(writers)]
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    feed = Feed(mesh_dir, max_bytes=max_bytes)
    got = feed.read()
    assert sorted((e["w"], e["n"]) for e in got) == [(w, n) for w in range(writers) for n in range(per)]
    assert os.path.exists(feed.generation(2)), "the test must rotate more than once"
    line = len(json.dumps(got[0], separators=(",", ":"))) + 8
    for i in range(1, KEEP + 1):
        if os.path.exists(feed.generation(i)):
            # a writer may land a line or two between another's rotation and its own fstat; never more
            assert os.path.getsize(feed.generation(i)) <= max_bytes + 2 * writers * line
            assert not os.stat(feed.generation(i)).st_mode & 0o200


def test_a_child_forked_while_another_thread_appends_can_append(mesh_dir):
    feed = Feed(mesh_dir)
    feed.append({"event": "parent"})
    feedmod._lock.acquire()  # as if another thread were inside append() at the moment of the fork
    try:
        pid = os.fork()
        if pid == 0:
            try:
                signal.alarm(10)  # a child stuck on the inherited lock dies (and the test fails) instead of hanging
                feed.append({"event": "child"})
            finally:
                os._exit(0)
    finally:
        feedmod._lock.release()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert {"event": "child"} in lines(feed.path)
