"""The file store on disk: atomic writes, Maildir inboxes, quarantine of bad files, name takeover, registration."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from pi_mesh_plugin.errors import NameTaken, UnknownAgent
from pi_mesh_plugin.mesh import Mesh
from pi_mesh_plugin.store.files import fsio
from tests import mesh_workers
from tests.conftest import run_cli


def mesh_dir(project: str, *sub: str) -> str:
    return os.path.join(project, ".pi", "mesh", *sub)


def ls(path: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if not n.startswith(".")) if os.path.isdir(path) else []


@pytest.fixture
def pair(mesh_factory, project):
    return mesh_factory("alice", cwd=project), mesh_factory("bob", cwd=project)


# -- atomic writes --------------------------------------------------------------------------

def test_readers_never_see_a_partial_file(tmp_path):
    """A real process replaces a 300 KB file over and over; every read is one whole version."""
    path = str(tmp_path / "rec.json")
    versions = [json.dumps({"v": i, "pad": chr(97 + i) * 300_000}).encode() for i in range(3)]
    fsio.write_atomic(path, versions[0])
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=mesh_workers.write_forever, args=(path, versions, 1.5))
    writer.start()
    reads = 0
    seen = set()
    deadline = time.monotonic() + 20
    while writer.is_alive() and time.monotonic() < deadline:
        with open(path, "rb") as f:
            data = f.read()
        assert data in versions, f"partial or mixed read of {len(data)} bytes"
        seen.add(data[:8])
        reads += 1
    writer.join(10)
    assert writer.exitcode == 0
    assert reads > 20 and len(seen) >= 2, (reads, seen)  # the race was real
    assert ls(str(tmp_path)) == ["rec.json"]  # no temp file left behind


@pytest.mark.parametrize("step", ["temp-write", "file-fsync"])
def test_crash_before_rename_leaves_old_file_and_a_temp_that_doctor_cleans(project, step):
    p = os.path.join(project, "state.json")
    fsio.write_atomic(p, b'{"old": true}\n')
    code = ("import sys; from pi_mesh_plugin.store.files import fsio; "
            f"fsio.set_crash_point({step!r}); fsio.write_atomic(sys.argv[1], b'{{\"new\": true}}')")
    r = subprocess.run([sys.executable, "-c", code, p], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    with open(p, "rb") as f:
        assert f.read() == b'{"old": true}\n'
    temps = [n for n in os.listdir(project) if n.startswith(".tmp-")]
    assert len(temps) == 1 and temps[0].endswith("-state.json")


def test_crashed_delivery_is_never_half_delivered_and_leaves_nothing(pair, project):
    """``pi-mesh send`` killed after writing, before naming: not delivered, and (unnamed delivery, Linux)
    nothing left behind for doctor - the rename way's leftover is tested in test_delivery."""
    alice, bob = pair
    r = run_cli("--root", project, "--agent", "alice", "send", "bob", "lost in a crash", cwd=project,
                env={"PI_MESH_CRASH_AT": "temp-write"})
    assert r.returncode == -signal.SIGKILL
    assert ls(mesh_dir(project, "inbox", "bob", "new")) == []
    assert bob.read_inbox() == []
    assert ls(mesh_dir(project, "inbox", "bob", "tmp")) == []
    assert [f for f in alice.doctor() if f["kind"] == "temp-file"] == []


def test_crash_right_after_rename_means_delivered(pair, project):
    alice, bob = pair
    r = run_cli("--root", project, "--agent", "alice", "send", "bob", "made it", cwd=project,
                env={"PI_MESH_CRASH_AT": "rename"})
    assert r.returncode == -signal.SIGKILL
    assert [m.text for m in bob.read_inbox()] == ["made it"]


# -- Maildir -------------------------------------------------------------------------------

def test_maildir_layout_ls_new_is_unread_and_reading_moves_to_cur(pair, project):
    alice, bob = pair
    m1 = alice.send("bob", "one")
    m2 = alice.send("bob", "two", urgent=True)
    new, cur = mesh_dir(project, "inbox", "bob", "new"), mesh_dir(project, "inbox", "bob", "cur")
    assert ls(new) == sorted([m1.id + ".json", m2.id + ".json"]) and ls(cur) == []
    with open(os.path.join(new, m1.id + ".json")) as f:
        on_disk = json.load(f)
    assert on_disk["from"] == "alice" and on_disk["to"] == "bob" and on_disk["text"] == "one"
    assert bob.unread_count() == 2
    peeked = bob.read_inbox(peek=True)
    assert [m.text for m in peeked] == ["one", "two"] and ls(cur) == []
    got = bob.read_inbox()
    assert [(m.id, m.read) for m in got] == [(m1.id, False), (m2.id, False)]
    assert got[1].urgent
    assert ls(new) == [] and ls(cur) == sorted([m1.id + ".json", m2.id + ".json"])
    assert bob.read_inbox() == [] and bob.unread_count() == 0
    assert [(m.id, m.read) for m in bob.read_inbox(unread_only=False)] == [(m1.id, True), (m2.id, True)]
    assert ls(mesh_dir(project, "inbox", "bob", "tmp")) == []


def test_mark_read_after_peek_is_at_least_once_processing(pair):
    alice, bob = pair
    ids = [alice.send("bob", f"m{i}").id for i in range(3)]
    first = bob.read_inbox(peek=True)
    assert bob.mark_read([first[0].id]) == 1
    assert [m.id for m in bob.read_inbox(peek=True)] == ids[1:]
    assert bob.mark_read([first[0].id]) == 0  # already read


def test_ids_unique_and_sorted_in_arrival_order(pair):
    alice, bob = pair
    sent = [alice.send("bob", f"n{i}").id if i % 2 else bob.send("alice", f"n{i}").id for i in range(40)]
    assert len(set(sent)) == 40 and sent == sorted(sent)
    got = bob.read_inbox()
    assert [m.id for m in got] == sorted(m.id for m in got)
    assert [m.text for m in got] == [f"n{i}" for i in range(1, 40, 2)]


def test_unknown_recipient_writes_nothing(pair, project):
    alice, _ = pair
    before = ls(mesh_dir(project, "inbox"))
    with pytest.raises(UnknownAgent) as info:
        alice.send("carol", "hello?")
    assert "carol" in str(info.value) and info.value.exit_code == 1
    assert ls(mesh_dir(project, "inbox")) == before


def test_broadcast_one_id_one_file_per_live_recipient(mesh_factory, project):
    a, b, c = (mesh_factory(n, cwd=project) for n in ("a", "b", "c"))
    sent = a.broadcast("all hands")
    assert sorted(m.to for m in sent) == ["b", "c"] and len({m.id for m in sent}) == 1
    for m in (b, c):
        got = m.read_inbox()
        assert [(x.id, x.broadcast, x.text) for x in got] == [(sent[0].id, True, "all hands")]
    assert a.read_inbox() == []


def test_reply_threads(pair):
    alice, bob = pair
    q = alice.send("bob", "question")
    r1 = bob.send("alice", "answer", reply_to=q.id)
    r2 = alice.send("bob", "follow-up", reply_to=r1.id)
    assert r1.reply_to == q.id and r1.thread == q.id
    assert r2.thread == q.id  # the thread is the first message, however deep the reply


# -- bad files are quarantined, never lost, never fatal -----------------------------------------

def _good(to: str, frm: str, mid: str, text: str = "fine") -> dict:
    return {"schema": 1, "id": mid, "from": frm, "to": to, "text": text, "urgent": False,
            "created": "2026-01-01T00:00:00.000000Z"}


def test_corrupt_files_in_inbox_go_to_bad_with_a_warning(pair, project, tmp_path):
    alice, bob = pair
    good = [alice.send("bob", "before").id]
    new = mesh_dir(project, "inbox", "bob", "new")
    bad_files = {
        "0000000000000001-aaaaaaaaaa.json": b"{not json",
        "0000000000000002-aaaaaaaaaa.json": b"[1, 2, 3]",
        "0000000000000003-aaaaaaaaaa.json": json.dumps(_good("carol", "alice", "0000000000000003-aaaaaaaaaa")).encode(),
        "0000000000000004-aaaaaaaaaa.json": json.dumps(_good("bob", "alice", "someone-else")).encode(),
        "0000000000000005-aaaaaaaaaa.json": json.dumps({"schema": 1, "id": "0000000000000005-aaaaaaaaaa"}).encode(),
        "0000000000000006-aaaaaaaaaa.json": b"\xff\xfe\x00garbage",
        "0000000000000007-aaaaaaaaaa.json": b"",
        "notes.txt": b"hello",
        "0000000000000008-aaaaaaaaaa.json": b'{"pad": "' + b"x" * (1 << 20) + b'"}',
    }
    for name, data in bad_files.items():
        with open(os.path.join(new, name), "wb") as f:
            f.write(data)
    os.mkdir(os.path.join(new, "0000000000000009-aaaaaaaaaa.json"))
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(_good("bob", "alice", "0000000000000010-aaaaaaaaaa")))
    os.symlink(target, os.path.join(new, "0000000000000010-aaaaaaaaaa.json"))
    os.mkfifo(os.path.join(new, "0000000000000011-aaaaaaaaaa.json"))
    good.append(alice.send("bob", "after").id)

    got = bob.read_inbox()  # must neither crash nor hang (the FIFO)
    assert [m.id for m in got] == good
    warnings = list(bob.warnings)
    assert len(warnings) == len(bad_files) + 3, warnings
    assert all("moved" in w and "/bad/" in w for w in warnings)
    bad = mesh_dir(project, "inbox", "bob", "bad")
    assert ls(bad) == sorted(list(bad_files) + ["0000000000000009-aaaaaaaaaa.json", "0000000000000010-aaaaaaaaaa.json",
                                                "0000000000000011-aaaaaaaaaa.json"])
    for name, data in bad_files.items():  # never lost: byte for byte in bad/
        with open(os.path.join(bad, name), "rb") as f:
            assert f.read() == data
    assert ls(new) == []
    bob.warnings.clear()
    assert bob.read_inbox() == [] and bob.warnings == []


def test_corrupt_file_in_cur_does_not_hide_the_rest(pair, project):
    alice, bob = pair
    ids = [alice.send("bob", t).id for t in ("a", "b")]
    bob.read_inbox()
    with open(mesh_dir(project, "inbox", "bob", "cur", ids[0] + ".json"), "w") as f:
        f.write('{"truncated": ')
    assert [m.id for m in bob.read_inbox(unread_only=False)] == ids[1:]
    assert ls(mesh_dir(project, "inbox", "bob", "bad")) == [ids[0] + ".json"]


def test_corrupt_agent_file_is_skipped_and_set_aside_on_join(pair, project):
    alice, bob = pair
    with open(mesh_dir(project, "agents", "zed.json"), "w") as f:
        f.write("{oops")
    assert sorted(a.name for a in alice.agents()) == ["alice", "bob"]
    assert any("zed.json" in w for w in alice.warnings)
    z = Mesh(project, "zed", cwd=project)
    z.join()
    assert ls(mesh_dir(project, "bad", "agents")) == ["zed.json"]
    assert sorted(a.name for a in alice.agents()) == ["alice", "bob", "zed"]


def test_corrupt_reservation_file_is_ignored_and_doctor_sets_it_aside(pair, project):
    alice, bob = pair
    alice.reserve(["src/auth/"], "real claim")
    with open(mesh_dir(project, "reservations", "0000000000000001-bbbbbbbbbb.json"), "w") as f:
        f.write("not a claim")
    blk = bob.check("src/auth/login.py", cwd=project)
    assert blk is not None and blk.holder == "alice"
    kinds = [(f["kind"], f["fixed"]) for f in bob.doctor(fix=True)]
    assert ("bad-file", True) in kinds
    assert ls(mesh_dir(project, "bad", "reservations")) == ["0000000000000001-bbbbbbbbbb.json"]
    assert bob.check("src/auth/login.py", cwd=project) is not None


# -- names: takeover of a dead agent's name, refusal of a live one ------------------------------

def test_takeover_sets_unread_mail_aside_and_drops_claims(project, mesh_factory):
    owner = subprocess.Popen(["sleep", "60"])
    try:
        old = Mesh(project, "alice", cwd=project)
        old_agent = old.join(pid=owner.pid)
        old.reserve(["src/auth/"], "old session work")
        bob = mesh_factory("bob", cwd=project)
        read_id = bob.send("alice", "read before the end").id
        old.read_inbox()
        unread = [bob.send("alice", f"unread {i}").id for i in range(2)]
        assert bob.check("src/auth/login.py", cwd=project) is not None

        # a second live claimant of the name is refused while the owner lives
        with pytest.raises(NameTaken) as info:
            Mesh(project, "alice", cwd=project).join(pid=os.getpid())
        assert info.value.exit_code == 3 and "alice" in str(info.value)
    finally:
        owner.kill()
        owner.wait()
    # the owner is gone: its claims stop counting at once
    assert bob.check("src/auth/login.py", cwd=project) is None
    assert [a.live for a in bob.agents() if a.name == "alice"] == [False]

    new = Mesh(project, "alice", cwd=project)
    agent = new.join(pid=os.getpid())
    assert agent.session != old_agent.session
    assert len(new.notices) == 1 and "set aside" in new.notices[0] and "orphaned" in new.notices[0]
    orphaned = mesh_dir(project, "inbox", "alice", "orphaned", old_agent.session)
    assert ls(orphaned) == sorted(i + ".json" for i in unread)
    assert new.read_inbox() == []  # not inherited silently
    assert [m.id for m in new.read_inbox(unread_only=False)] == [read_id]  # read mail stays in cur/
    assert ls(mesh_dir(project, "reservations")) == []
    assert new.reservations() == []


def test_rejoin_by_the_same_owner_keeps_the_session(project):
    a = Mesh(project, "alice", cwd=project)
    s1 = a.join().session
    a.reserve(["src/"], "keep me")
    b = Mesh(project, "alice", cwd=project)
    assert b.join().session == s1 and b.notices == []
    assert [r.path for r in b.reservations()] == ["src"]


def test_registration_is_race_free_across_processes(project):
    ctx = multiprocessing.get_context("spawn")
    n = 6
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=mesh_workers.join_same_name, args=(project, "contested", barrier, results))
             for _ in range(n)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(30)
    assert [g for g in got if g[0] == "error"] == []
    winners = [g for g in got if g[0] == "won"]
    assert len(winners) == 1, got
    assert sum(1 for g in got if g[0] == "taken") == n - 1
    with open(mesh_dir(project, "agents", "contested.json")) as f:
        rec = json.load(f)
    assert (rec["pid"], rec["session"]) == winners[0][1:]


def test_every_record_on_disk_validates_against_its_schema(pair, project):
    from pi_mesh_plugin.schema import errors

    alice, bob = pair
    alice.reserve(["src/auth/", "README"], "schema check")
    alice.send("bob", "x", urgent=True)
    bob.heartbeat(status="busy", activity={"last": "edit", "edits": 1})
    checked = 0
    for sub, kind in (("agents", "agent"), ("reservations", "reservation"), ("inbox/bob/new", "message")):
        for fn in ls(mesh_dir(project, sub)):
            with open(mesh_dir(project, sub, fn)) as f:
                rec = json.load(f)
            if fn.endswith(".batch"):  # the commit marker of the two-path reserve: names both claims
                assert sub == "reservations" and len(rec["claims"]) == 2 and fn == rec["batch"] + ".batch"
                continue
            assert errors(kind, rec) == [], (sub, fn)
            checked += 1
    assert checked == 2 + 2 + 1
    with open(mesh_dir(project, "feed.jsonl")) as f:
        events = [json.loads(line) for line in f]
    assert [e["event"] for e in events] == ["join", "join", "reserve", "message"]


@pytest.mark.parametrize("claims", [[{"id": "x"}], "not a list", [5], [{"id": "x", "path": 5}], None])
def test_damaged_claims_index_cache_is_ignored_never_fatal(pair, project, claims):
    """index/claims.json is a cache: a damaged one (with a matching stamp) must not hide a claim or crash."""
    alice, bob = pair
    alice.reserve(["src/auth/"], "real claim")
    time.sleep(0.1)  # past the racy window, so that a reader trusts (and rewrites) the index file
    assert Mesh(project, None, cwd=project).check("src/auth/x") is not None
    idx = mesh_dir(project, "index", "claims.json")
    with open(idx) as f:
        data = json.load(f)
    st = os.stat(mesh_dir(project, "reservations"))
    assert (data["mtime_ns"], data["ino"]) == (st.st_mtime_ns, st.st_ino)  # the cache is current...
    data["claims"] = claims  # ...and damaged
    with open(idx, "w") as f:
        json.dump(data, f)
    fresh = Mesh(project, "bob", cwd=project)
    blk = fresh.check("src/auth/x")
    assert blk is not None and blk.holder == "alice"
    assert [r.path for r in Mesh(project, None, cwd=project).reservations()] == ["src/auth"]
    assert Mesh(project, None, cwd=project).doctor() == []


def test_a_heartbeat_only_agent_can_join_again_from_the_same_mesh(project):
    m = Mesh(project, "remote", cwd=project)
    first = m.join(pid=0)
    m.reserve(["src/"], "kept across a reconnect")
    again = m.join(pid=0, status="reconnected")
    assert again.session == first.session and m.notices == []
    assert [r.path for r in m.reservations()] == ["src"]
    # another Mesh (another session) is still refused the live name
    with pytest.raises(NameTaken):
        Mesh(project, "remote", cwd=project).join(pid=0)


def test_a_mesh_whose_owner_died_joins_again_as_a_new_session(project):
    owner = subprocess.Popen(["sleep", "60"])
    m = Mesh(project, "c", cwd=project)
    first = m.join(pid=owner.pid)
    m.reserve(["src/"], "before the crash")
    owner.kill()
    owner.wait()
    second = subprocess.Popen(["sleep", "60"])
    try:
        again = m.join(pid=second.pid)
        assert again.session != first.session
        assert m.reservations() == []  # the dead session's claims never come back
        # a heartbeat-only agent whose heartbeat went stale starts afresh too
        h = Mesh(project, "hb", cwd=project)
        s1 = h.join(pid=0).session
        h.reserve(["docs/"], "stale soon")
        h.store.update_agent("hb", None, {"last_seen": "2001-01-01T00:00:00.000000Z"})
        assert h.join(pid=0).session != s1
        assert [r.holder for r in h.reservations()] == []
    finally:
        second.kill()
        second.wait()
