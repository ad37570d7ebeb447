"""One contract, two backends: every core operation through the Mesh API, on the file store and on PostgreSQL.

Each test taking ``backend`` runs twice (``files``, ``postgres``); for the
postgres run ``PI_MESH_STORE`` names a fresh schema, so the Mesh picks the
store exactly as a user's configuration would.  Tests after the contract
section are PostgreSQL-specific (projects across checkouts, schema versions,
LISTEN/NOTIFY, the ``db`` CLI) and end with the multi-process exclusivity test:
real processes, each pretending to be another machine.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from pi_mesh_plugin.clock import iso, now
from pi_mesh_plugin.errors import (
    InvalidName,
    NameTaken,
    NotJoined,
    ReservationConflict,
    StoreError,
    TooLarge,
    UnknownAgent,
    UsageError,
)
from pi_mesh_plugin.mesh import Mesh
from tests.conftest import REPO, run_cli


@pytest.fixture
def mk(project, backend, mesh_factory):
    """``mk(name, join=True)``: a Mesh for ``name`` in the test project (cwd = project root) on ``backend``."""
    return lambda name, join=True, **kw: mesh_factory(name, join=join, cwd=kw.pop("cwd", project), **kw)


@pytest.fixture
def dead_pid():  # -> int
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def sleeper():
    """A live process to own an agent; kill it to make the agent dead."""
    p = subprocess.Popen(["sleep", "120"])
    yield p
    if p.poll() is None:
        p.kill()
        p.wait()


def _kill(p: subprocess.Popen) -> None:
    p.kill()
    p.wait()


def test_backend_is_the_configured_one(backend, mk):
    from pi_mesh_plugin.store.base import Store

    a = mk("alice")
    assert isinstance(a.store, Store)
    assert type(a.store).__name__ == {"files": "FileStore", "postgres": "PostgresStore"}[backend]


# -- edit ledger ----------------------------------------------------------------------------------------------------
def test_ledger_keeps_the_last_writer_per_tree_and_path(backend, mk):
    a, b = mk("alice"), mk("bob")
    tree, other = "host-1:/work/repo", "host-1:/work/repo-wt"

    def entry(agent, path, blob, deleted=False, t=tree):
        return {"schema": 1, "path": path, "tree": t, "agent": agent, "session": None, "blob": blob,
                "deleted": deleted, "size": 2, "mtime_ns": 1, "tool": "edit", "ts": iso(now())}

    e1 = entry("alice", "src/a.py", "a" * 40)
    assert a.store.record_write(e1) == e1
    assert b.store.record_write(entry("bob", "src/a.py", "a" * 40))["agent"] == "alice"  # same content: kept
    assert b.store.record_write(entry("bob", "src/a.py", "b" * 40))["agent"] == "bob"
    assert a.store.record_write(entry("alice", "src/a.py", "b" * 40))["agent"] == "bob"  # nothing new: kept
    assert b.store.record_write(entry("bob", "src/a.py", "b" * 40))["ts"]  # its own entry: rewritten
    assert b.store.record_write(entry("bob", "src/a.py", None, deleted=True))["deleted"] is True
    a.store.record_write(entry("alice", "src/a.py", "c" * 40, t=other))  # another working tree: its own row
    a.store.record_write(entry("alice", "docs/ünïcode file.md", "d" * 40))
    got = {e["path"]: e for e in b.store.ledger(tree)}
    assert set(got) == {"src/a.py", "docs/ünïcode file.md"} and got["src/a.py"]["agent"] == "bob"
    assert [e["blob"] for e in a.store.ledger(other)] == ["c" * 40]
    assert [e["path"] for e in a.store.ledger(tree, ["src/a.py", "nothing.py"])] == ["src/a.py"]
    assert [e["agent"] for e in got["src/a.py"]["earlier"]] == ["alice"]
    moved = b.store.hand_over(tree, "src/a.py", {"agent": "alice", "handed_over_by": "bob"})
    assert moved["agent"] == "alice" and moved["handed_over_by"] == "bob" and moved["deleted"] is True
    assert a.store.ledger(tree, ["src/a.py"])[0]["agent"] == "alice"
    assert a.store.hand_over(tree, "missing.py", {"agent": "bob"}) is None
    long_path = "d/" * 150 + "f.py"  # longer than a file name may be
    assert a.store.record_write(entry("alice", long_path, "e" * 40))["path"] == long_path
    assert a.store.ledger(tree, [long_path])[0]["blob"] == "e" * 40


# -- registry -------------------------------------------------------------------------------------------------------
def test_registry_join_list_heartbeat_leave(backend, mk):
    a = mk("alice")
    b = mk("bob")
    assert [x.name for x in a.agents()] == ["alice", "bob"]
    assert all(x.live for x in b.agents())
    me = a.me()
    assert me.session == a.session and me.pid == os.getpid() and me.live
    again = mk("alice")  # the same owner process re-registering keeps its session
    assert again.session == a.session
    hb = a.heartbeat(status="refactoring auth", activity={"last": "edit src/x.py", "edits": 3})
    assert hb.status == "refactoring auth"
    got = b.store.get_agent("alice")
    assert got["status"] == "refactoring auth" and got["activity"] == {"last": "edit src/x.py", "edits": 3}
    assert got["last_seen"] >= me.last_seen
    with pytest.raises(Exception) as ei:
        a.heartbeat(status="x" * 501)  # the agent schema bounds a status line
    assert "status" in str(ei.value)
    assert a.leave() is True
    assert a.leave() is False
    assert [x.name for x in b.agents()] == ["bob"]
    assert b.store.get_agent("alice") is None
    assert a.heartbeat() is None


def test_name_taken_by_live_agent_then_taken_over_when_dead(backend, mk, project, sleeper):
    old = mk("carol", join=False)
    old.join(pid=sleeper.pid)
    old.reserve(["src/"], "carol's work")
    bob = mk("bob")
    bob.send("carol", "unread before the crash")
    new = mk("carol", join=False)
    with pytest.raises(NameTaken) as ei:
        new.join()
    assert ei.value.exit_code == 3 and "carol" in str(ei.value) and str(sleeper.pid) in str(ei.value)
    assert bob.check("src/auth/login.py").holder == "carol"
    _kill(sleeper)
    agent = new.join()
    assert agent.session != old.session and agent.pid == os.getpid()
    assert any("set aside" in n and "1 unread" in n for n in new.notices), new.notices
    assert new.reservations() == [] and bob.check("src/auth/login.py") is None
    assert new.read_inbox() == []  # the old session's mail is kept aside, not handed to the new holder
    bob.send("carol", "hello new carol")
    assert [m.text for m in new.read_inbox()] == ["hello new carol"]


def test_liveness_across_hosts_by_heartbeat_ttl(backend, mk, monkeypatch, dead_pid):
    monkeypatch.setenv("PI_MESH_HOSTNAME", "machine-a")
    remote = mk("remote", join=False)
    remote.join(pid=dead_pid)  # its owner pid is dead *on machine-a*
    monkeypatch.setenv("PI_MESH_HOSTNAME", "machine-b")
    local = mk("local")
    # From machine-b the pid means nothing: the fresh heartbeat makes remote live.
    remote.reserve(["src/auth/"], "remote work")
    assert {a.name: a.live for a in local.agents()} == {"local": True, "remote": True}
    assert local.check("src/auth/login.py").holder == "remote"
    # On machine-a itself the owner process decides: it is gone.
    monkeypatch.setenv("PI_MESH_HOSTNAME", "machine-a")
    assert local.check("src/auth/login.py") is None
    monkeypatch.setenv("PI_MESH_HOSTNAME", "machine-b")
    assert local.check("src/auth/login.py") is not None
    # The remote machine stops heartbeating: past the TTL (60 s) it is dead and its claims stop counting.
    remote.heartbeat(last_seen=iso(now() - local.config.heartbeat_ttl - 5))
    assert {a.name: a.live for a in local.agents()} == {"local": True, "remote": False}
    assert local.check("src/auth/login.py") is None
    with pytest.raises(NotJoined):
        remote.reserve(["docs/"], "a dead agent cannot claim")
    made = local.reserve(["src/auth/"], "taking over")
    assert [r.holder for r in made] == ["local"]
    assert [r.holder for r in local.reservations(live_only=False)] == ["local"]  # the dead claim was removed


# -- messages -------------------------------------------------------------------------------------------------------
def test_messaging_read_state_threads_urgent(backend, mk):
    a, b = mk("alice"), mk("bob")
    m1 = b.send("alice", "one")
    m2 = b.send("alice", "two", urgent=True)
    assert a.unread_count() == 2 and b.unread_count("alice") == 2
    peek = a.read_inbox(peek=True)
    assert [(m.id, m.text, m.urgent, m.read, m.sender) for m in peek] == [
        (m1.id, "one", False, False, "bob"), (m2.id, "two", True, False, "bob")]
    assert a.unread_count() == 2
    assert [m.text for m in a.read_inbox()] == ["one", "two"]
    assert a.unread_count() == 0 and a.read_inbox() == []
    both = a.read_inbox(unread_only=False)
    assert [(m.text, m.read) for m in both] == [("one", True), ("two", True)]
    r1 = a.send("bob", "re: one", reply_to=m1.id)
    assert r1.reply_to == m1.id and r1.thread == m1.id
    got = b.read_inbox()
    assert [(m.text, m.thread) for m in got] == [("re: one", m1.id)]
    r2 = b.send("alice", "re: re: one", reply_to=r1.id)
    assert r2.thread == m1.id  # a thread keeps its first message's id
    m3 = b.send("alice", "three")
    assert a.mark_read([m3.id]) == 1 and a.mark_read([m3.id]) == 0
    assert [m.text for m in a.read_inbox()] == ["re: re: one"]
    assert a.store.get_message("alice", m1.id)["text"] == "one"
    assert a.store.get_message("alice", "0000000000000000-0000000000") is None


def test_messaging_refusals(backend, mk):
    a, _ = mk("alice"), mk("bob")
    with pytest.raises(UnknownAgent) as ei:
        a.send("nobody", "hello?")
    assert "nobody" in str(ei.value)
    with pytest.raises(TooLarge):
        a.send("bob", "x" * (64 * 1024 + 1))
    with pytest.raises(UsageError):
        a.send("bob", "   ")
    with pytest.raises(InvalidName):
        a.send("../bob", "hi")
    assert a.unread_count("bob") == 0
    big = a.send("bob", "y" * (64 * 1024))  # exactly at the limit is fine
    assert a.store.get_message("bob", big.id)["text"] == "y" * (64 * 1024)
    with pytest.raises(UsageError):
        a.send("bob", "\u2003\n\t")  # whitespace of any kind is empty


def test_a_recipient_who_left_is_unknown_at_once(backend, mk):
    """``send`` knows every recipient it has sent to; one who leaves (here: through another Mesh,
    as another process would) is unknown to the very next send."""
    a, b = mk("alice"), mk("bob")
    time.sleep(0.1)  # past the file store's racy window: alice's process now keeps bob's record cached
    a.send("bob", "one")
    assert a.store.has_agent("bob") and not a.store.has_agent("nobody")
    b.leave()
    assert not a.store.has_agent("bob")
    with pytest.raises(UnknownAgent):
        a.send("bob", "two")
    mk("bob")  # back again: known again
    a.send("bob", "three")


def test_broadcast_reaches_live_agents_only(backend, mk, dead_pid):
    a, b, c = mk("alice"), mk("bob"), mk("carol")
    ghost = mk("ghost", join=False)
    ghost.join(pid=dead_pid)
    sent = a.broadcast("standup in 5", urgent=True)
    assert sorted(m.to for m in sent) == ["bob", "carol"] and len({m.id for m in sent}) == 1
    [got] = b.read_inbox()
    assert got.broadcast and got.urgent and got.text == "standup in 5" and got.id == sent[0].id and got.to == "bob"
    assert c.unread_count() == 1  # bob reading it leaves carol's unread
    [got] = c.read_inbox()
    assert got.id == sent[0].id and got.to == "carol"
    assert c.store.get_message("carol", sent[0].id)["to"] == "carol"
    assert [m.to for m in b.read_inbox(unread_only=False)] == ["bob"]
    assert a.unread_count() == 0 and a.unread_count("ghost") == 0


def test_store_broadcast_refuses_what_is_not_a_broadcast(backend, mk):
    a, b = mk("alice"), mk("bob")
    rec = {"schema": 1, "id": "01TESTBROADCAST", "from": "alice", "to": "bob", "text": "x", "urgent": False,
           "created": "2026-11-25T00:00:00.000000Z"}
    with pytest.raises(ValueError):
        a.store.broadcast(rec, ["bob"])  # to is not '*'
    with pytest.raises(ValueError):
        a.store.broadcast({**rec, "to": "*"}, ["bob"])  # '*' without broadcast
    with pytest.raises(ValueError):
        a.store.deliver([{**rec, "to": "*", "broadcast": True}])  # '*' is not an inbox
    assert b.unread_count() == 0


def test_wait_for_mail_wakes_on_delivery(backend, mk):
    a, b = mk("alice"), mk("bob")
    assert a.store.wait_for_mail("alice", timeout=0.2) == 0
    woke: list[float] = []

    def wait() -> None:
        woke.append(a.store.wait_for_mail("alice", timeout=10))
        woke.append(time.monotonic())

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    sent_at = time.monotonic()
    b.send("alice", "wake up")
    t.join(10)
    assert woke[0] == 1
    assert woke[1] - sent_at < 0.5  # files: a 20 ms poll; postgres: NOTIFY, not its 2 s fallback poll
    assert a.store.wait_for_mail("alice", timeout=5) == 1  # unread mail: returns at once


# -- reservations ---------------------------------------------------------------------------------------------------
def test_reserve_conflict_names_holder_and_claims_nothing(backend, mk):
    a, b = mk("alice"), mk("bob")
    [r] = a.reserve(["src/auth/"], "auth refactor")
    assert (r.holder, r.path, r.kind, r.reason) == ("alice", "src/auth", "dir", "auth refactor")
    with pytest.raises(ReservationConflict) as ei:
        b.reserve(["src/other.py", "src/auth/login.py"], "fix")
    e = ei.value
    assert e.exit_code == 3
    assert [(c.holder, c.path) for c in e.conflicts] == [("alice", "src/auth")]
    assert str(e) == ('cannot reserve src/other.py, src/auth/login.py: src/auth/ is reserved by alice '
                      '("auth refactor", expires in 30m). Nothing was reserved; message the holder to coordinate.')
    assert [x.holder for x in b.reservations()] == ["alice"]  # all or nothing: src/other.py was not claimed
    with pytest.raises(ReservationConflict):
        b.reserve(["src/"], "the parent overlaps the claim beneath")
    with pytest.raises(ReservationConflict):
        b.reserve(["."], "the whole project overlaps everything")
    assert [x.path for x in b.reserve(["src/authz/", "docs/"], "siblings do not overlap")] == ["src/authz", "docs"]
    assert [x.path for x in a.reserve(["src/auth/login.py"], "own claims never conflict")] == ["src/auth/login.py"]
    assert b.check("src/auth/login.py").holder == "alice"


def test_renew_and_release(backend, mk):
    a, b = mk("alice"), mk("bob")
    [r1] = a.reserve(["src/auth/"], "one", ttl="10m")
    [r2] = a.reserve(["src/auth/"], "two", ttl="1h")
    assert r2.created == r1.created and r2.id != r1.id and r2.expires > r1.expires and r2.reason == "two"
    assert [r.id for r in a.reservations()] == [r2.id]
    a.reserve(["src/x.py", "docs/"], "more")
    b.reserve(["lib/"], "bob's")
    gone = a.release(["docs/"])
    assert [r.path for r in gone] == ["docs"]
    assert sorted(r.path for r in a.reservations()) == ["lib", "src/auth", "src/x.py"]
    assert a.release(["lib/"]) == []  # never someone else's
    assert sorted(r.path for r in a.release()) == ["src/auth", "src/x.py"]
    assert [r.holder for r in a.reservations()] == ["bob"]
    assert b.release() and b.release() == []


def test_expired_claims_stop_blocking(backend, mk):
    a, b = mk("alice"), mk("bob")
    a.reserve(["src/auth/"], "short", ttl=0.3)
    assert b.check("src/auth/login.py") is not None
    time.sleep(0.4)
    assert b.check("src/auth/login.py") is None
    assert a.reservations() == [] and len(a.reservations(live_only=False)) == 1
    b.reserve(["src/auth/"], "mine now")
    assert [(r.holder, r.path) for r in b.reservations(live_only=False)] == [("bob", "src/auth")]


def test_dead_holder_claims_stop_blocking(backend, mk, sleeper):
    ghost = mk("ghost", join=False)
    ghost.join(pid=sleeper.pid)
    ghost.reserve(["src/"], "about to crash")
    b = mk("bob")
    assert b.check("src/auth/login.py").holder == "ghost"
    _kill(sleeper)
    assert b.check("src/auth/login.py") is None
    b.reserve(["src/auth/"], "after the crash")
    assert [r.holder for r in b.reservations(live_only=False)] == ["bob"]


# -- check ----------------------------------------------------------------------------------------------------------
def test_check_overlap_semantics(backend, mk, project):
    a, b, c = mk("alice"), mk("bob"), mk("carol")
    a.reserve(["src/auth/login.py"], "file only")
    c.reserve(["src/auth-old/x.py", "src/auth0.py", "src/authz/", "src/autha"], "siblings that sort near src/auth/")
    cover = lambda path, kind: sorted(r["path"] for r in b.store.covering(path, kind))
    assert cover("src/auth", "dir") == ["src/auth/login.py"]
    assert cover("src/auth/login.py", "file") == ["src/auth/login.py"]
    assert cover("src", "file") == [] and cover("src/auth", "file") == []
    assert cover("src", "dir") == ["src/auth-old/x.py", "src/auth/login.py", "src/auth0.py", "src/autha", "src/authz"]
    assert cover("src/authz/deep/file.py", "file") == ["src/authz"]
    c.release()
    block = b.check("src/auth/login.py", tool="write")
    assert (block.holder, block.reason, block.canonical, block.tool) == ("alice", "file only", "src/auth/login.py",
                                                                         "write")
    assert "reserved by agent alice" in block.message and 'send_message(to="alice"' in block.message
    assert b.check("src/auth/other.py") is None           # a file claim covers that file only
    assert b.check("src/auth/login.py.bak") is None
    assert b.check("src/auth/") is not None               # a directory target covers claims beneath it
    assert b.check("src", kind="dir") is not None
    assert b.check(".") is not None
    assert b.check("src/authz", kind="dir") is None
    assert b.check(os.path.join(project, "src", ".", "auth", "..", "auth", "login.py")) is not None
    sub = mk("bob", join=False, cwd=os.path.join(project, "src"))
    assert sub.check("auth/login.py") is not None          # same claim, spelled from another directory
    assert b.check("/etc/passwd") is None                  # outside the project: never blocked
    assert a.check("src/auth/login.py") is None            # own claim
    assert mk(None, join=False).check("src/auth/login.py") is not None  # no identity: checked against all
    a.reserve(["src/auth/"], "now the directory")
    assert b.check("src/auth/new_file.py").reason == "now the directory"
    assert b.check("src/auth-old/x.py") is None and b.check("src/authz/x.py") is None
    assert b.check("src/aut") is None


# -- feed -----------------------------------------------------------------------------------------------------------
def test_feed_records_operations_in_order(backend, mk):
    a, b = mk("alice"), mk("bob")
    b.send("alice", "hi")
    a.reserve(["src/"], "feed test")
    with pytest.raises(ReservationConflict):
        b.reserve(["src/auth/"], "clash")
    a.release()
    a.record("custom", detail={"n": 1})
    events = a.feed()
    assert [(e["event"], e["agent"]) for e in events] == [
        ("join", "alice"), ("join", "bob"), ("message", "bob"), ("reserve", "alice"), ("refused", "bob"),
        ("release", "alice"), ("custom", "alice")]
    assert events[4]["holders"] == ["alice"] and events[-1]["detail"] == {"n": 1}
    assert list(events[0])[:3] == ["ts", "event", "agent"]  # field order as written
    assert a.feed(2) == events[-2:]
    a.record("huge", blob="z" * 10_000)  # an oversized event is cut down, never refused
    assert a.feed(1)[0]["event"] == "huge" and len(a.feed(1)[0]["blob"]) < 300


# -- doctor ---------------------------------------------------------------------------------------------------------
def test_doctor_finds_and_fixes(backend, mk, sleeper):
    a = mk("alice")
    ghost = mk("ghost", join=False)
    ghost.join(pid=sleeper.pid)
    ghost.reserve(["lib/"], "ghost's")
    a.reserve(["src/"], "short", ttl=0.2)
    _kill(sleeper)
    time.sleep(0.3)
    kinds = lambda found: sorted((f["kind"], f["fixed"]) for f in found
                                 if f["kind"] in ("stale-agent", "expired-claim", "dead-claim"))
    found = a.doctor()
    assert ("stale-agent", False) in kinds(found) and ("expired-claim", False) in kinds(found)
    assert any("ghost" in f["detail"] for f in found if f["kind"] == "stale-agent")
    fixed = a.doctor(fix=True)
    assert ("stale-agent", True) in kinds(fixed) and ("expired-claim", True) in kinds(fixed)
    assert kinds(a.doctor()) == []
    assert [x.name for x in a.agents()] == ["alice"] and a.reservations(live_only=False) == []


# -- the same CLI and hooks on either store ------------------------------------------------------------------------
def test_cli_and_claude_hook_do_not_care_which_store(backend, project):
    """Real ``pi-mesh`` processes: nothing but the store URL differs between the two runs."""
    r = run_cli("--agent", "alice", "join", "--pid", "0", "--harness", "script", cwd=project)
    assert r.returncode == 0, r.stderr
    r = run_cli("--agent", "alice", "reserve", "src/auth/", "--reason", "cli refactor", cwd=project)
    assert r.returncode == 0 and "reserved src/auth/" in r.stdout, r.stderr
    r = run_cli("--agent", "bob", "join", "--pid", "0", cwd=project)
    assert r.returncode == 0, r.stderr
    r = run_cli("--agent", "bob", "check", "src/auth/login.py", cwd=project)
    assert r.returncode == 3 and "reserved by agent alice" in r.stdout
    event = {"hook_event_name": "PreToolUse", "session_id": "s1", "cwd": project, "tool_name": "Edit",
             "tool_input": {"file_path": os.path.join(project, "src", "auth", "login.py"), "old_string": "a",
                            "new_string": "b"}}
    r = run_cli("hook", "claude-code", "--agent", "bob", cwd=project, input=json.dumps(event))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny" and "cli refactor" in out["permissionDecisionReason"]
    event["tool_input"]["file_path"] = os.path.join(project, "README.md")
    r = run_cli("hook", "claude-code", "--agent", "bob", cwd=project, input=json.dumps(event))
    assert (r.returncode, r.stdout.strip()) == (0, "")
    r = run_cli("--agent", "bob", "send", "alice", "may I have src/auth?", cwd=project)
    assert r.returncode == 0, r.stderr
    r = run_cli("--agent", "alice", "--json", "inbox", cwd=project)
    assert [m["text"] for m in json.loads(r.stdout)] == ["may I have src/auth?"]


# -- PostgreSQL only ------------------------------------------------------------------------------------------------
@pytest.fixture
def pg_env(pg_url, monkeypatch):  # -> str
    monkeypatch.setenv("PI_MESH_STORE", pg_url)
    return pg_url


def _checkout(tmp_path, name: str, remote: str | None) -> str:
    root = tmp_path / name
    (root / "src" / "auth").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(root), "remote", "add", "origin", remote], check=True)
    return str(root)


def test_pg_project_id_from_git_remote_joins_checkouts(pg_env, tmp_path):
    from pi_mesh_plugin.store.postgres import normalise_remote

    assert normalise_remote("git@github.com:Acme/repo.git") == "github.com/acme/repo"
    assert normalise_remote("https://user:pw@GitHub.com/acme/Repo.git/") == "github.com/acme/repo"
    assert normalise_remote("ssh://git@github.com:22/Acme/repo") == "github.com/acme/repo"
    assert normalise_remote("git@git.example.org:Team/Tool.git") == "git.example.org/Team/Tool"
    one = _checkout(tmp_path, "laptop-checkout", "git@github.com:Acme/repo.git")
    two = _checkout(tmp_path, "ci/builds/repo", "https://ci-token@github.com/Acme/repo")
    other = _checkout(tmp_path, "other", "git@github.com:Acme/other.git")
    a, b, c = (Mesh(r, n, cwd=r) for r, n in ((one, "alice"), (two, "bob"), (other, "carol")))
    try:
        for m in (a, b, c):
            m.join()
        assert a.store.project == b.store.project == "github.com/acme/repo" != c.store.project
        a.reserve(["src/auth/"], "same repository, another checkout")
        assert b.check("src/auth/login.py").holder == "alice"   # different absolute paths, same canonical path
        assert c.check("src/auth/login.py") is None              # another project never sees the claim
        assert [x.name for x in c.agents()] == ["carol"]
        with pytest.raises(UnknownAgent):
            c.send("alice", "not in my project")
        c2 = Mesh(other, "alice", cwd=other)
        c2.join()  # the same name in another project is another agent
        c2.close()
    finally:
        for m in (a, b, c):
            m.close()


def test_pg_project_id_from_config_wins(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("PI_MESH_STORE", pg_url)
    one = _checkout(tmp_path, "one", "git@github.com:Acme/repo.git")
    two = _checkout(tmp_path, "two", None)  # no remote: would be its path
    (tmp_path / "two" / "hooks.toml").write_text('[store]\nproject_id = "github.com/acme/repo"\n')
    a, b = Mesh(one, "alice", cwd=one), Mesh(two, "bob", cwd=two)
    try:
        a.join()
        b.join()
        assert b.store.project == a.store.project
        a.reserve(["src/"], "shared by configuration")
        assert b.check("src/auth/login.py").holder == "alice"
    finally:
        a.close()
        b.close()


def test_pg_schema_is_versioned_and_created_on_first_use(pg_url, project):
    import psycopg

    from pi_mesh_plugin.store.postgres import LATEST, PostgresStore, split_url

    s = PostgresStore(pg_url, project)
    try:
        assert s.schema_version() == LATEST          # first use created it
        assert s.migrate() == []                     # and it is idempotent
        base, schema = split_url(pg_url)
        with psycopg.connect(base, autocommit=True) as c:
            assert c.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY version').fetchall() == [
                (v,) for v in range(1, LATEST + 1)]
            c.execute(f'INSERT INTO "{schema}".schema_version VALUES (999, %s)', ("from the future",))
        newer = PostgresStore(pg_url, project)
        with pytest.raises(StoreError) as ei:
            newer.list_agents()
        assert "newer" in str(ei.value) and "\n" not in str(ei.value)
        newer.close()
    finally:
        s.close()


def test_pg_schema_upgrades_itself_on_first_use(pg_url, project, monkeypatch):
    import psycopg

    from pi_mesh_plugin.store import postgres
    from pi_mesh_plugin.store.postgres import migrations

    old = Mesh(project, "alice", cwd=project, store=postgres.PostgresStore(pg_url, project))
    old.join()
    old.reserve(["src/"], "made under version 1")
    old.close()
    nxt = migrations.LATEST + 1
    v2 = (nxt, "index agents by host", ["CREATE INDEX agents_host ON {s}.agents (project, host)"])
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, v2])
    monkeypatch.setattr(migrations, "LATEST", nxt)
    new = Mesh(project, "bob", cwd=project, store=postgres.PostgresStore(pg_url, project))
    new.join()  # the first use upgrades, keeping the data
    assert new.check("src/x.py").holder == "alice"
    assert new.store.schema_version() == nxt and new.store.migrate() == []
    base, schema = postgres.split_url(pg_url)
    with psycopg.connect(base, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname = 'agents_host'",
                         (schema,)).fetchone() == (1,)
    new.close()


def test_pg_db_cli_init_and_status(pg_url, project):
    env = {"PI_MESH_STORE": pg_url}
    r = run_cli("db", "init", cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    from pi_mesh_plugin.store.postgres import LATEST

    assert f"version {LATEST}" in r.stdout and "applied " + ", ".join(map(str, range(1, LATEST + 1))) in r.stdout
    r = run_cli("db", "init", cwd=project, env=env)
    assert r.returncode == 0 and "already up to date" in r.stdout
    r = run_cli("--json", "db", "status", cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["schema_version"] == LATEST and info["agents"] == 0 and info["project"] == os.path.realpath(project)
    r = run_cli("db", "status", cwd=project)
    assert r.returncode == 2 and "no PostgreSQL store configured" in r.stderr and len(r.stderr.splitlines()) == 1


def test_pg_unreachable_server_is_one_line_and_guard_fails_closed(project):
    bad = "postgresql://postgres:secret@127.0.0.1:1/test"
    r = run_cli("agents", cwd=project, env={"PI_MESH_STORE": bad})
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "127.0.0.1" in r.stderr and "secret" not in r.stderr
    from pi_mesh_plugin.host import decide
    from pi_mesh_plugin.records import ToolCall
    from pi_mesh_plugin.store.postgres import PostgresStore

    m = Mesh(project, "alice", cwd=project, store=PostgresStore(bad, project))
    block = decide(m, ToolCall(tool="edit", paths=("src/auth/login.py",), cwd=project))
    assert block is not None and "could not read the reservations" in block.message


def test_pg_subscribe_reports_topics(pg_env, mesh_factory, project):
    a, b = mesh_factory("alice", cwd=project), mesh_factory("bob", cwd=project)
    seen: list[str | None] = []
    got = threading.Event()

    def cb(topic: str | None) -> None:
        seen.append(topic)
        if "reservations" in seen and "inbox" in seen:
            got.set()

    stop = a.store.subscribe(cb)
    try:
        b.send("alice", "hi")
        b.reserve(["src/"], "topic test")
        assert got.wait(5), seen
        assert "feed" in seen
    finally:
        stop()


def test_pg_feed_is_bounded(pg_env, mesh_factory, project, monkeypatch):
    from pi_mesh_plugin.store.postgres import feed

    monkeypatch.setattr(feed, "FEED_MAX_ROWS", 30)
    monkeypatch.setattr(feed, "FEED_TRIM_EVERY", 10)
    a = mesh_factory("alice", cwd=project)
    for i in range(100):
        a.record("tick", i=i)
    events = a.feed()
    assert 30 <= len(events) <= 40 and events[-1]["i"] == 99


# -- multi-process exclusivity, processes on "different hosts" ------------------------------------------------------
def test_pg_exclusivity_across_processes_on_different_hosts(pg_env, project, tmp_path):
    paths = ["src/", "src/auth/", "src/auth/login.py", "src/auth/"]  # pairwise overlapping
    cycles = 30
    start = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = []
    for i, p in enumerate(paths):
        out = tmp_path / f"w{i}.json"
        procs.append((out, subprocess.Popen(
            [sys.executable, "-m", "tests.contract.claim_worker", project, f"worker-{i}", f"host-{i}", p,
             str(cycles), str(start), str(out)], env=env, cwd=REPO)))
    time.sleep(0.5)
    start.write_text("go")
    results = []
    for out, proc in procs:
        assert proc.wait(120) == 0
        results.append(json.loads(out.read_text()))
    spans = sorted((t0, t1, r["name"]) for r in results for t0, t1 in r["intervals"])
    assert len(spans) == cycles * len(paths)
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert overlaps == []
    assert sum(r["refused"] for r in results) > 0  # they did contend
    assert len({s[2] for s in spans}) == len(paths)


def test_pg_reconnects_after_the_server_drops_the_connection(pg_env, mesh_factory, project):
    import psycopg

    from pi_mesh_plugin.store.postgres import split_url

    a, b = mesh_factory("alice", cwd=project), mesh_factory("bob", cwd=project)
    a.reserve(["src/"], "before the drop")
    base, schema = split_url(pg_env)
    with psycopg.connect(base, autocommit=True) as admin:
        killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name = %s AND pid <> pg_backend_pid()",
                               (f"pi-mesh/{schema}",)).fetchone()[0]
    assert killed >= 2
    assert b.check("src/auth/login.py").holder == "alice"  # reopened and retried, not an error
    assert [r.path for r in a.release()] == ["src"]


_HEARTBEATING_AGENT = """
import sys, time
from pi_mesh_plugin.mesh import Mesh
m = Mesh(sys.argv[1], "crashy", cwd=sys.argv[1])
m.join(harness="script")
m.reserve(["src/auth/"], "held by a machine about to crash")
print("ready", flush=True)
while True:
    time.sleep(0.1)
    m.heartbeat()
"""


def test_pg_crashed_machine_claims_expire_after_heartbeat_ttl(pg_env, project, monkeypatch):
    os.makedirs(os.path.join(project, ".pi"), exist_ok=True)
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write('[defaults]\nheartbeat_ttl = "1s"\n')
    env = {**os.environ, "PI_MESH_HOSTNAME": "machine-crashy",
           "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _HEARTBEATING_AGENT, project], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        monkeypatch.setenv("PI_MESH_HOSTNAME", "machine-survivor")
        me = Mesh(project, "survivor", cwd=project)
        me.join()
        assert me.config.heartbeat_ttl == 1.0
        time.sleep(1.5)  # longer than the TTL: only the heartbeats keep crashy live
        assert me.check("src/auth/login.py").holder == "crashy"
        proc.kill()  # the machine dies: no more heartbeats
        proc.wait()
        deadline = time.monotonic() + 5
        while me.check("src/auth/login.py") is not None:
            assert time.monotonic() < deadline, "the dead machine's claim never expired"
            time.sleep(0.1)
        assert time.monotonic() - (deadline - 5) >= 0.5  # it did block until the TTL ran out
        assert [r.holder for r in me.reserve(["src/auth/"], "after the crash")] == ["survivor"]
        me.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_held_by_is_reservations_filtered_by_holder(mk, project, backend):
    """What renewing an agent's claims reads: only its own, the same records reservations() holds - also for
    a fresh process answering from the unparsed claims index, and for names that prefix one another."""
    names = ["al", "alice", "alicia", "bob"]
    meshes = {n: mk(n) for n in names}
    for i, n in enumerate(names * 3):
        meshes[n].reserve([f"area{i}/{n}.py"], f'reason "holder":"{names[(i + 1) % 4]}" {i}')
    meshes["bob"].release([f"area{3}/bob.py"])

    def check(store) -> None:
        every = store.reservations()
        for n in names + ["nobody"]:
            assert store.held_by(n) == [r for r in every if r["holder"] == n], n

    check(meshes["al"].store)
    time.sleep(0.1)  # past the racy window: a new process trusts the index file
    fresh = Mesh(project, None, cwd=project, **({} if backend == "files" else {"store": meshes["al"].store}))
    for n in names:
        assert sorted(r["path"] for r in fresh.store.held_by(n)) == sorted(
            r.path for r in meshes[n].reservations() if r.holder == n)
    check(fresh.store)
