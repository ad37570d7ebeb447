"""The waiting line for claims, and claims that live as long as the work: one contract over both stores.

Each test taking ``backend`` runs on the file store and on PostgreSQL.  Time is
controlled by moving ``time.time`` (every expiry and renewal decision reads
it, in the Mesh and in both stores), never by sleeping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pi_mesh_plugin.errors import ReservationConflict, UsageError, WaitCycle
from pi_mesh_plugin.records import Queued
from tests.conftest import run_cli


@pytest.fixture
def mk(project, backend, mesh_factory):
    return lambda name, join=True, **kw: mesh_factory(name, join=join, cwd=kw.pop("cwd", project), **kw)


@pytest.fixture
def owner():
    """``owner()`` -> a live process to own an agent (kill it to make the agent die)."""
    procs = []

    def make() -> subprocess.Popen:
        p = subprocess.Popen(["sleep", "120"])
        procs.append(p)
        return p

    yield make
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def clock(monkeypatch):
    """``clock.advance(seconds)`` moves the wall clock every expiry decision reads."""
    real = time.time

    class Clock:
        offset = 0.0

        def advance(self, seconds: float) -> None:
            self.offset += seconds

    c = Clock()
    monkeypatch.setattr(time, "time", lambda: real() + c.offset)
    return c


def mail(m, sender="mesh"):
    return [(x.text, x.urgent) for x in m.read_inbox() if x.sender == sender]


def holders(m, path="src/auth/login.py"):
    return sorted({r.holder for r in m.reservations() if r.path in ("src/auth", path)})


def test_queue_in_order_and_grant_is_pushed(backend, mk, project):
    alice, bob, carol = mk("alice"), mk("bob"), mk("carol")
    alice.reserve(["src/auth/"], "refactor login")
    block = bob.check("src/auth/login.py")
    assert 'reserve(paths=["src/auth/"], reason="...", queue=true)' in block.message
    with pytest.raises(ReservationConflict):
        bob.reserve(["src/auth/"], "fix a bug")  # without queue=True a conflict still refuses
    q1 = bob.reserve(["src/auth/"], "fix a bug", queue=True)
    q2 = carol.reserve(["src/auth/"], "add tests", queue=True)
    assert isinstance(q1, Queued) and isinstance(q2, Queued)
    assert (q1.position, q1.holders, q1.ahead) == (1, ["alice"], [])
    assert (q2.position, q2.ahead) == (2, ["bob"])
    assert q2.text.startswith("queued, 2nd in line behind alice on src/auth/")
    again = bob.reserve(["src/auth/"], "fix a bug", queue=True)
    assert again.id == q1.id and again.position == 1  # asking again keeps one's place
    if backend == "files":
        line = sorted(os.listdir(os.path.join(project, ".pi", "mesh", "queue", "src%2Fauth")))
        assert [n.rsplit("-", 1)[1] for n in line] == ["bob.json", "carol.json"]
    told = mail(alice)
    assert len(told) == 2 and told[0][0].startswith("bob is waiting for src/auth/ (1st in line)")
    assert not told[0][1]  # the holder is told, not interrupted
    assert [t["agent"] for t in bob.waiting()] == ["bob", "carol"]
    assert alice.release() and holders(alice) == ["bob"]
    (text, urgent), = mail(bob)
    assert urgent and text.startswith("src/auth/ is now yours, reserved for you at ")
    assert mail(carol) == []
    assert bob.check("src/auth/login.py") is None and carol.check("src/auth/login.py").holder == "bob"
    bob.release(["src/auth/"])
    assert holders(alice) == ["carol"] and mail(carol)[0][0].startswith("src/auth/ is now yours")
    assert bob.waiting() == []


def test_queue_granted_at_once_when_free(backend, mk):
    alice = mk("alice")
    made = alice.reserve(["src/auth/"], "work", queue=True)
    assert isinstance(made, list) and made[0].holder == "alice"


def test_waiting_cycle_refused_naming_it(backend, mk):
    alice, bob, carol = mk("alice"), mk("bob"), mk("carol")
    alice.reserve(["src/auth/"], "a")
    bob.reserve(["src/api.py"], "b")
    carol.reserve(["docs/"], "c")
    assert isinstance(alice.reserve(["src/api.py"], "a2", queue=True), Queued)  # alice waits for bob
    assert isinstance(bob.reserve(["docs/"], "b2", queue=True), Queued)  # bob waits for carol
    with pytest.raises(WaitCycle) as ei:
        carol.reserve(["src/auth/"], "c2", queue=True)  # carol would wait for alice: a cycle
    assert ei.value.cycle == ["carol", "alice", "bob", "carol"]
    assert "carol -> alice -> bob -> carol" in str(ei.value) and ei.value.exit_code == 3
    assert [t["agent"] for t in carol.waiting()] == ["alice", "bob"]  # nothing was queued for carol


def test_dead_waiter_is_skipped_and_dead_holder_passes_on(backend, mk, owner):
    holder_proc, waiter_proc = owner(), owner()
    alice = mk("alice", join=False)
    alice.join(pid=holder_proc.pid)
    bob = mk("bob", join=False)
    bob.join(pid=waiter_proc.pid)
    carol = mk("carol")
    alice.reserve(["src/auth/"], "a")
    bob.reserve(["src/auth/"], "b", queue=True)
    carol.reserve(["src/auth/"], "c", queue=True)
    waiter_proc.kill()
    waiter_proc.wait()
    holder_proc.kill()  # the holder dies: nobody releases; the next one touching the claims hands it on
    holder_proc.wait()
    assert carol.check("src/auth/login.py") is None  # the slow path of check settles the line
    assert holders(carol) == ["carol"]
    assert mail(carol)[0][0].startswith("src/auth/ is now yours") and carol.waiting() == []


def test_release_leaves_the_line(backend, mk):
    alice, bob = mk("alice"), mk("bob")
    alice.reserve(["src/auth/"], "a")
    bob.reserve(["src/auth/"], "b", queue=True)
    bob.release(["src/auth/"])
    assert bob.waiting() == []
    alice.release()
    assert holders(alice) == [] and mail(bob) == []


def test_expiry_goes_to_the_waiter_on_a_heartbeat(backend, mk, clock):
    alice, bob = mk("alice"), mk("bob")
    alice.reserve(["src/auth/"], "a", ttl="10m")
    bob.reserve(["src/auth/"], "b", queue=True)
    clock.advance(9 * 60)
    alice.heartbeat()  # a heartbeat keeps alice live, but not her claim: it is not work
    assert holders(bob) == ["alice"]
    clock.advance(2 * 60)
    bob.heartbeat()
    assert holders(bob) == ["bob"]
    assert mail(bob)[0][0].startswith("src/auth/ is now yours")


def test_claims_renew_while_working_and_lapse_when_idle(backend, mk, clock):
    alice, bob = mk("alice"), mk("bob")
    ttl = alice.config.reservation_ttl  # 30 min
    alice.reserve(["src/auth/"], "long refactor")
    first = alice.reservations()[0]
    for _ in range(12):  # three hours of work, a guarded call every quarter of an hour
        clock.advance(ttl / 2)
        alice.touch_activity()
        assert holders(bob) == ["alice"]
    r = alice.reservations()[0]
    assert r.created == first.created and r.expires > first.expires and r.id != first.id
    bob.reserve(["src/auth/"], "b", queue=True)
    clock.advance(ttl + 1)  # alice goes idle for a whole TTL
    bob.heartbeat()
    assert holders(bob) == ["bob"]


def test_renewal_stops_at_max_reservation_with_one_warning(backend, mk, clock):
    alice = mk("alice")
    cfg = alice.config
    alice.reserve(["src/auth/"], "forever")
    t = 0.0
    while t < cfg.max_reservation + cfg.reservation_ttl:
        clock.advance(60)
        t += 60
        alice.touch_activity()
    assert alice.reservations() == []  # never renewed past max_reservation: it expired
    warned = [x for x, _ in mail(alice) if x.startswith("your claim on src/auth/ expires in")]
    assert len(warned) == 1 and "max_reservation" in warned[0]


def test_auto_claim_opt_in(backend, mk, project):
    plain = mk("plain")
    assert plain.auto_claim(["src/a.py"]) == []
    cfg = os.path.join(project, ".pi", "hooks.toml")
    os.makedirs(os.path.dirname(cfg), exist_ok=True)
    with open(cfg, "w") as f:
        f.write("[agents.auto]\nauto_claim = true\nauto_claim_ttl = \"2m\"\n")
    auto, bob = mk("auto"), mk("bob")
    made = auto.auto_claim(["src/a.py"])
    assert [(r.path, r.kind) for r in made] == [("src/a.py", "file")]
    assert bob.check("src/a.py").holder == "auto"
    assert auto.auto_claim(["src/a.py"]) == []  # plenty of lease left: no write
    bob.reserve(["src/b.py"], "mine")
    assert auto.auto_claim(["src/b.py"]) == []  # never takes what another agent holds
    auto.leave()
    assert bob.check("src/a.py") is None


def test_mesh_is_a_reserved_name(backend, mk):
    with pytest.raises(UsageError):
        mk("mesh")


def test_reserve_queue_and_wait_cli(backend, mk, project, store_url):
    alice = mk("alice")
    alice.reserve(["src/auth/"], "a")
    env = {"PI_MESH_STORE": store_url} if store_url else {}
    run_cli("join", "--name", "bob", "--pid", str(os.getpid()), cwd=project, env=env)
    r = run_cli("--agent", "bob", "reserve", "src/auth/", "--reason", "b", "--wait", "1s", cwd=project, env=env)
    assert r.returncode == 3, r.stderr
    assert "timed out after 1s waiting for src/auth/; left the line" in r.stdout
    assert alice.waiting() == []
    r = run_cli("--agent", "bob", "reserve", "src/auth/", "--reason", "b", "--queue", cwd=project, env=env)
    assert r.returncode == 0 and r.stdout.startswith("queued, 1st in line behind alice"), r.stdout + r.stderr
    waiter = subprocess.Popen([sys.executable, "-m", "pi_mesh_plugin", "--agent", "bob", "reserve", "src/auth/",
                               "--reason", "b", "--wait", "60s"], cwd=project, env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not alice.waiting() and time.monotonic() < deadline:
        time.sleep(0.01)
    alice.release()
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert "reserved src/auth/ until" in out
    r = run_cli("--agent", "alice", "agents", cwd=project, env=env)
    assert "holds: src/auth/" in r.stdout


def test_waiters_are_shown_to_everyone(backend, mk, project, store_url):
    from pi_mesh_plugin.dashboard.rows import snapshot
    from pi_mesh_plugin.plugins.mesh import list_agents
    from pi_mesh_plugin.plugins.mesh import reserve as reserve_tool

    alice, bob, carol = mk("alice"), mk("bob"), mk("carol")
    alice.reserve(["src/auth/"], "a")
    assert reserve_tool(bob, ["src/auth/"], "b", queue=True).startswith("queued, 1st in line behind alice")
    assert reserve_tool(carol, ["src/auth/"], "c", queue=True).startswith("queued, 2nd in line behind alice")
    text = list_agents(alice)
    assert "alice (live, you) - holds src/auth/ - waited for: src/auth/ (bob, carol)" in text
    assert "bob (live) - waiting for src/auth/ (1st in line, behind alice)" in text
    row, = [c for c in snapshot(alice)["claims"] if c["holder"] == "alice"]
    assert row["waiters"] == ["bob", "carol"]
    env = {"PI_MESH_STORE": store_url} if store_url else {}
    r = run_cli("--agent", "alice", "agents", cwd=project, env=env)
    assert "waited for: src/auth/ (bob, carol)" in r.stdout and "waiting for: src/auth/ (2nd in line" in r.stdout


def test_leaving_hands_the_claims_to_the_line(backend, mk):
    alice, bob = mk("alice"), mk("bob")
    alice.reserve(["src/auth/"], "a")
    bob.reserve(["src/auth/"], "b", queue=True)
    alice.leave()
    assert holders(bob) == ["bob"] and mail(bob)[0][0].startswith("src/auth/ is now yours")
