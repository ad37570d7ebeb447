"""The performance shortcuts of the file store keep its semantics (the "fresh state" rule: a change made by another process is seen by the next call).

Each test defeats one shortcut the way another process or a human could:
an agent record rewritten in place (even with its mtime put back), an inbox
removed behind a sender's back, a broadcast to many inboxes at once.
"""

from __future__ import annotations

import json
import os
import shutil
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from pi_mesh_plugin.store.files import fsio
from pi_mesh_plugin.store.files.registry import Registry


def _rewrite_in_place(path: str, old: bytes, new: bytes, keep_mtime: bool) -> None:
    st = os.stat(path)
    with open(path, "rb") as f:
        data = f.read()
    assert old in data and len(old) == len(new)
    with open(path, "r+b") as f:  # same inode, same size
        f.write(data.replace(old, new))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_agent_record_rewritten_in_place_is_seen_by_the_next_read(project, mesh_factory) -> None:
    alice = mesh_factory("alice")
    reg = Registry(os.path.join(project, ".pi", "mesh"), 60.0)
    path = reg.path("alice")
    time.sleep(0.1)  # past the racy window: the record is now cached by the reader
    first = reg.read("alice")
    assert first is not None and reg.read("alice") == first
    assert "alice" in reg._cache  # the shortcut under test is in use
    session = first["session"]
    other = session[:-1] + ("0" if session[-1] != "0" else "1")
    _rewrite_in_place(path, session.encode(), other.encode(), keep_mtime=True)  # ctime still moves
    assert reg.read("alice")["session"] == other
    time.sleep(0.1)
    assert reg.read("alice")["session"] == other
    _rewrite_in_place(path, other.encode(), session.encode(), keep_mtime=False)
    assert reg.read("alice")["session"] == session
    assert alice.me().session == session


def test_agent_record_replaced_right_after_a_read_is_seen(project, mesh_factory) -> None:
    mesh_factory("alice")
    reg = Registry(os.path.join(project, ".pi", "mesh"), 60.0)
    for i in range(20):  # replacements within the same clock tick as the read
        rec = reg.read("alice")
        rec["status"] = f"step {i}"
        fsio.write_atomic(reg.path("alice"), fsio.dumps(rec))
        assert reg.read("alice")["status"] == f"step {i}"


def test_a_corrupted_cached_agent_record_is_reported_not_served(project, mesh_factory) -> None:
    mesh_factory("alice")
    reg = Registry(os.path.join(project, ".pi", "mesh"), 60.0)
    time.sleep(0.1)
    assert reg.get("alice") is not None
    with open(reg.path("alice"), "r+b") as f:
        f.write(b"!")
    assert reg.get("alice") is None


def test_send_recreates_an_inbox_removed_behind_its_back(project, mesh_factory) -> None:
    alice, bob = mesh_factory("alice"), mesh_factory("bob")
    alice.send("bob", "one")
    shutil.rmtree(os.path.join(project, ".pi", "mesh", "inbox", "bob"))
    alice.send("bob", "two")
    alice.broadcast("three")
    assert [m.text for m in bob.read_inbox()] == ["two", "three"]


def test_broadcast_is_one_file_linked_into_every_inbox(project, mesh_factory) -> None:
    """One inode, a name in each recipient's new/, 'to' '*' on disk; each reader gets its own name as 'to'
    and moves only its own name to cur/."""
    sender = mesh_factory("sender")
    others = [mesh_factory(f"r{i}") for i in range(12)]
    sent = sender.broadcast("to all", urgent=True)
    assert sorted(m.to for m in sent) == sorted(o.agent for o in others)
    inodes = set()
    for o in others:
        d = os.path.join(project, ".pi", "mesh", "inbox", o.agent)
        assert os.listdir(os.path.join(d, "tmp")) == []
        (fn,) = os.listdir(os.path.join(d, "new"))
        st = os.stat(os.path.join(d, "new", fn))
        inodes.add((st.st_dev, st.st_ino))
        assert st.st_nlink == len(others)
        with open(os.path.join(d, "new", fn), "rb") as f:
            rec = json.loads(f.read())
        assert rec["to"] == "*" and rec["broadcast"] is True and rec["text"] == "to all" and rec["urgent"] is True
    assert len(inodes) == 1
    first, rest = others[0], others[1:]
    got = first.read_inbox()
    assert [(m.id, m.to, m.broadcast) for m in got] == [(sent[0].id, first.agent, True)]
    assert first.unread_count() == 0 and all(o.unread_count() == 1 for o in rest)
    assert [m.to for m in first.read_inbox(unread_only=False)] == [first.agent]
    assert first.store.get_message(first.agent, sent[0].id)["to"] == first.agent
    for o in rest:
        assert [(m.id, m.to) for m in o.read_inbox()] == [(sent[0].id, o.agent)]


def test_a_star_message_without_broadcast_is_set_aside(project, mesh_factory) -> None:
    """'*' is only a broadcast's recipient: a hand-placed file saying '*' without broadcast is not mail."""
    alice, bob = mesh_factory("alice"), mesh_factory("bob")
    m = alice.send("bob", "real")
    new = os.path.join(project, ".pi", "mesh", "inbox", "bob", "new")
    with open(os.path.join(new, m.id + ".json")) as f:
        rec = json.load(f)
    rec.update(id=m.id[:-1] + ("0" if m.id[-1] != "0" else "1"), to="*")
    with open(os.path.join(new, rec["id"] + ".json"), "w") as f:
        json.dump(rec, f)
    assert [x.text for x in bob.read_inbox()] == ["real"]
    assert any("for '*'" in w for w in bob.warnings)
    assert os.listdir(os.path.join(project, ".pi", "mesh", "inbox", "bob", "bad")) == [rec["id"] + ".json"]


def test_fsync_all_raises_the_error_of_a_bad_descriptor(tmp_path) -> None:
    import pytest

    good = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    bad = os.open(os.devnull, os.O_RDONLY)
    os.close(bad)  # a closed descriptor: fsync fails with EBADF
    try:
        fsio.fsync_all([good, good])
        with pytest.raises(OSError):
            fsio.fsync_all([good, bad])
    finally:
        os.close(good)


_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=True),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(record=st.dictionaries(st.text(max_size=8), _values, max_size=8))
def test_dumps_writes_exactly_what_json_dumps_with_indent_writes(record: dict) -> None:
    try:
        expected = (json.dumps(record, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: the ASCII form, as before
        expected = (json.dumps(record, ensure_ascii=True, indent=1) + "\n").encode("ascii")
    assert fsio.dumps(record) == expected


@settings(max_examples=300, deadline=None)
@given(event=st.dictionaries(st.text(max_size=8), _values, max_size=8))
def test_feed_lines_are_exactly_what_json_dumps_compact_writes(event: dict) -> None:
    flat = fsio.flat_json(event, "{", ":", ",", "}")
    if flat is not None:  # None: not flat, the feed falls back to json's encoder
        assert flat == json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    else:
        assert not event or any(type(v) not in (str, int, bool, type(None)) for v in event.values())


def _claim_files(project: str, claims: list[tuple[str, str]]) -> str:
    """Write claim files (as the store does) held by a live agent; returns the mesh dir."""
    from pi_mesh_plugin.clock import iso, new_id, now
    from pi_mesh_plugin.mesh import Mesh

    holder = Mesh(project, "holder", cwd=project)
    holder.join()
    mesh_dir = os.path.join(project, ".pi", "mesh")
    t = now()
    for path, kind in claims:
        rec = {"schema": 1, "id": new_id(), "holder": "holder", "session": holder.session, "path": path,
               "kind": kind, "reason": 'a "reason"\n{"path":"src",', "created": iso(t), "expires": iso(t + 3600)}
        fsio.write_atomic(os.path.join(mesh_dir, "reservations", rec["id"] + ".json"), fsio.dumps(rec))
    return mesh_dir


def test_a_fresh_process_answers_from_the_index_file_exactly_as_from_the_claim_files(project) -> None:
    from pi_mesh_plugin.store.files.claimindex import ClaimIndex

    claims = [(".", "file"), ("src", "dir"), ("src/auth/login.py", "file"), ("src/auth", "file"),
              ("docs/é t\"x", "dir"), ("docs/é t\"x/a.md", "file"), ("a/b/c/d", "dir"), ("a/b", "file"),
              ("ü/名前.py", "file"), ("sp ace/x", "dir")]
    mesh_dir = _claim_files(project, claims)
    directory, index_file = os.path.join(mesh_dir, "reservations"), os.path.join(mesh_dir, "index", "claims.json")
    time.sleep(0.1)  # past the racy window, so the index file is written and trusted
    truth = ClaimIndex(directory, index_file)
    truth.rescan()
    truth.write_index_file()
    with open(index_file, "rb") as f:
        assert json.loads(f.read())["count"] == len(claims)  # one JSON document, one claim per line
    queries = ["src/auth/login.py", "src/x.py", "src", "docs/é t\"x/a.md", "docs/é t\"x/b/c.md", "docs/é t",
               "a/b/c/d/e.py", "a/b", "a/b/c", "a/bc", "ü/名前.py", "sp ace/x/y", "sp ace", "nothing/here.py", "."]
    for q in queries:
        for kind in ("file", "dir"):
            fresh = ClaimIndex(directory, index_file).current()
            want = sorted(r["id"] for r in truth.current().covering(q, kind))
            assert sorted(r["id"] for r in fresh.covering(q, kind)) == want, (q, kind)
            if kind == "file" and q != ".":
                assert fresh._raw is not None  # answered from the lines it needed, not the whole document
    # a longer-lived reader: the first few file queries are lazy, then it parses the index once
    warm = ClaimIndex(directory, index_file)
    for q in queries * 2:
        want = sorted(r["id"] for r in truth.current().covering(q, "file"))
        assert sorted(r["id"] for r in warm.current().covering(q, "file")) == want, q
    assert warm._raw is None and warm.files
    assert sorted(r["id"] for r in warm.all()) == sorted(r["id"] for r in truth.all())


def test_a_damaged_index_file_in_the_line_layout_is_never_trusted_to_hide_a_claim(project) -> None:
    from pi_mesh_plugin.store.files.claimindex import ClaimIndex

    mesh_dir = _claim_files(project, [("src/auth", "dir"), ("src/other", "dir")])
    directory, index_file = os.path.join(mesh_dir, "reservations"), os.path.join(mesh_dir, "index", "claims.json")
    time.sleep(0.1)
    idx = ClaimIndex(directory, index_file)
    idx.rescan()
    idx.write_index_file()
    with open(index_file, "rb") as f:
        good = f.read()
    damaged = [good.replace(b'\n{"path":"src/auth"', b'{"path":"src/auth"'),   # two claims on one line
               good.replace(b'"kind":"dir"', b'"kind":5', 1),                  # a bad field
               good.replace(b'"count":2', b'"count":1'),                         # a wrong count
               good[:-3] + b"\n",                                              # torn at the end
               good.replace(b'\n{"path":"src/auth","', b'\n{"path":"src/auth","x":[', 1)]  # a line that is no JSON
    for bad in damaged:
        with open(index_file, "wb") as f:
            f.write(bad)
        fresh = ClaimIndex(directory, index_file).current()
        assert [r["path"] for r in fresh.covering("src/auth/login.py")] == ["src/auth"], bad[:300]
        assert len(ClaimIndex(directory, index_file).current().all()) == 2


def test_changing_a_returned_agent_record_does_not_change_the_next_read(project, mesh_factory) -> None:
    alice = mesh_factory("alice")
    alice.heartbeat(activity={"last": "edit", "files_touched": ["a.py"], "edits": 1})
    reg = Registry(os.path.join(project, ".pi", "mesh"), 60.0)
    time.sleep(0.1)
    rec = reg.read("alice")
    assert "alice" in reg._cache
    rec["status"] = "changed"
    rec["activity"]["edits"] = 99
    rec["activity"]["files_touched"].append("b.py")
    again = reg.read("alice")
    assert again.get("status") != "changed" and again["activity"] == {"last": "edit", "files_touched": ["a.py"],
                                                                      "edits": 1}


def test_temp_files_of_a_forked_child_carry_the_childs_pid() -> None:
    """Temp names carry the writer's pid (doctor tells a leftover from a write in progress by it);
    the pid is cached, so a forked child must not inherit the parent's."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, f"{fsio._pid[0]} {os.getpid()}".encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        cached, real = f.read().split()
    os.waitpid(pid, 0)
    assert cached == real != str(os.getpid())
