"""PostgreSQL faults: a frozen server, locks held by another agent, a client clock that is off.

The frozen-server tests start a throwaway cluster of their own on a loopback port (never the shared
server) and SIGSTOP every process of it, so the server accepts TCP connections in the kernel and
answers nothing - the worst a server can do.  Every wait in these tests has a generous bound that
only catches a hang; none asserts a speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import PI_MESH, REPO
from tests.test_hooks import claude_event, hook
from tests.test_sidecar import Sidecar

psycopg = pytest.importorskip("psycopg")

FAST = "connect_timeout=2&statement_timeout=1&lock_timeout=1"


def _with(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


@pytest.fixture(scope="module")
def cluster():
    from tests.pg_fixtures import _Cluster, _pg_bin

    if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
        pytest.skip("no initdb/pg_ctl to start a throwaway PostgreSQL cluster")
    c = _Cluster()
    try:
        url = c.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        c.stop()
        pytest.skip(f"a throwaway cluster did not start: {e}")
    c.url = url
    yield c
    for pid in _cluster_pids(c):  # never leave it stopped, whatever a test did
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    c.stop()


def _cluster_pids(c) -> list[int]:
    """The postmaster of ``c`` and every process it started."""
    with open(os.path.join(c.data, "postmaster.pid")) as f:
        master = int(f.readline())
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == master:
                pids.append(int(entry))
    return pids


@contextlib.contextmanager
def frozen(c):
    pids = _cluster_pids(c)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.fixture
def own_url(cluster, request):
    """A fresh schema on the throwaway cluster, with short limits."""
    import uuid

    return _with(cluster.url, f"schema=f_{uuid.uuid4().hex[:12]}&{FAST}")


@pytest.fixture
def alice_holds(own_url, project, monkeypatch):
    from pi_mesh_plugin.mesh import Mesh

    monkeypatch.setenv("PI_MESH_STORE", own_url)
    m = Mesh(project, "alice")
    m.join()
    m.reserve(["src/auth/"], "refactoring login")
    yield m
    m.close()


def test_a_frozen_server_blocks_a_running_sidecar_naming_the_timeout_and_it_recovers(cluster, alice_holds, project):
    s = Sidecar(project, env={"PI_MESH_AGENT": "bob"})
    try:
        s.ok("hello", name="bob", harness="pi", pid=os.getpid(), model="scripted")
        res = s.ok("pre_tool_call", tool="write", input={"path": "src/auth/login.py"}, cwd=project)
        assert res["allow"] is False and "alice" in res["reason"]
        assert s.ok("pre_tool_call", tool="write", input={"path": "docs/a.md"}, cwd=project)["allow"] is True
        with frozen(cluster):
            for path in ("docs/a.md", "src/auth/login.py", "docs/b.md"):  # the running call, then a reconnect
                resp = s.request("pre_tool_call", tool="write", input={"path": path}, cwd=project)
                reason = resp["result"]["reason"] if resp["ok"] else resp["error"]
                assert resp["ok"] is False or resp["result"]["allow"] is False, resp
                assert "timed out after" in reason and ("statement_timeout" in reason
                                                        or "connect_timeout" in reason), reason
                assert "\n" not in reason.split("Run `pi-mesh doctor`")[0]
            assert s.ok("ping")  # the sidecar still answers requests that need no server
        # thawed: within max(statement_timeout, lock_timeout) + 1 s of the last timeout calls still fail at once
        # with it (blocked, never allowed); then the server is asked again and the claims are enforced again
        for _ in range(300):
            res = s.ok("pre_tool_call", tool="write", input={"path": "src/auth/login.py"}, cwd=project)
            assert res["allow"] is False, res
            if "timed out" not in res["reason"]:
                break
            time.sleep(0.05)
        assert "alice" in res["reason"], res
        assert s.ok("pre_tool_call", tool="write", input={"path": "docs/a.md"}, cwd=project)["allow"] is True
        rc, err = s.close()
        assert rc == 0 and "Traceback" not in err
    finally:
        s.release()


def test_a_frozen_server_blocks_a_hook_naming_the_timeout(cluster, alice_holds, project, own_url):
    event = claude_event(project, "Write", {"file_path": f"{project}/docs/new.md", "content": "x"})
    env = {"PI_MESH_AGENT": "bob", "PI_MESH_STORE": own_url}
    with frozen(cluster):
        r = hook("claude-code", event, env=env, cwd=project)
        out = json.loads(r.stdout)["hookSpecificOutput"]
        assert out["permissionDecision"] == "deny", out
        reason = out["permissionDecisionReason"]
        assert "timed out after 2s (connect_timeout)" in reason, reason
        assert "Traceback" not in r.stderr.decode()
        with open(os.path.join(project, "hooks.toml"), "w") as f:
            f.write('[defaults]\non_store_error = "allow"\n')
        r = hook("claude-code", event, env=env, cwd=project)
        assert r.returncode == 0 and "deny" not in r.stdout.decode(), r  # allowed only because the config says so
    os.unlink(os.path.join(project, "hooks.toml"))
    r = hook("claude-code", event, env=env, cwd=project)
    assert r.returncode == 0 and "deny" not in r.stdout.decode(), r  # thawed: an unclaimed path is allowed


def test_timeouts_come_from_hooks_toml_and_the_url_wins(pg_url, project):
    from pi_mesh_plugin.errors import ConfigError
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.postgres.connection import split_url

    base = pg_url
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write(f'[store]\nurl = "{base}"\nstatement_timeout = "7s"\nlock_timeout = "3"\n')
    m = Mesh(project, "carol")
    assert m.store.db.timeouts == {"connect_timeout": 3.0, "statement_timeout": 7.0, "lock_timeout": 3.0}
    m.join()
    row = m.store.db.fetchone("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')",
                              (), "reading")
    assert row == ("7s", "3s")
    m.close()
    url = _with(base, "statement_timeout=2s&connect_timeout=4")
    from pi_mesh_plugin.store.postgres import PostgresStore

    s = PostgresStore(url, project, timeouts={"statement_timeout": "9s", "lock_timeout": "1s"})
    assert s.db.timeouts == {"connect_timeout": 4.0, "statement_timeout": 2.0, "lock_timeout": 1.0}
    assert "statement_timeout" not in split_url(url)[0] and "connect_timeout" not in split_url(url)[0]
    with pytest.raises(ConfigError, match="statement_timeout in the store URL"):
        PostgresStore(_with(base, "statement_timeout=soon"), project)
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[store]\nlock_timeout = "a while"\n')
    r = subprocess.run([*PI_MESH, "claims"], cwd=project, capture_output=True, text=True, timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": REPO})
    assert r.returncode == 2 and "lock_timeout" in r.stderr and "Traceback" not in r.stderr, r  # a config error


def test_a_claim_held_in_another_transaction_makes_reserve_fail_naming_lock_timeout(pg_url, project, monkeypatch):
    from pi_mesh_plugin.errors import StoreError
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.postgres.connection import LOCK_CLAIMS

    url = _with(pg_url, "lock_timeout=1")
    monkeypatch.setenv("PI_MESH_STORE", url)
    m = Mesh(project, "alice")
    m.join()
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as other:
        with other.transaction():  # another agent's claim, stuck half-way (its process frozen, say)
            other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLAIMS, m.store.project))
            with pytest.raises(StoreError) as e:
                m.reserve(["src/auth/"], "refactoring")
            text = str(e.value)
            assert "timed out after 1s (lock_timeout)" in text and "\n" not in text, text
    assert [r.path for r in m.reserve(["src/auth/"], "refactoring")] == ["src/auth"]  # released: it goes through
    m.close()


def test_a_client_clock_ahead_does_not_make_other_hosts_agents_look_dead(pg_url, project, monkeypatch):
    """alice runs on host a with a correct clock; bob's machine (host b) is 90 s ahead, beyond the 60 s heartbeat
    TTL.  bob's guard must still see alice live - and alice, judging bob's heartbeats, must see bob live."""
    from pi_mesh_plugin.mesh import Mesh

    monkeypatch.setenv("PI_MESH_STORE", pg_url)
    monkeypatch.setenv("PI_MESH_HOSTNAME", "host-a")
    alice = Mesh(project, "alice")
    alice.join()
    alice.reserve(["src/auth/"], "refactoring login")
    env = {**os.environ, "PYTHONPATH": REPO, "PI_MESH_HOSTNAME": "host-b"}
    for offset in ("90", "-90"):
        r = subprocess.run([*PI_MESH, "check", "src/auth/login.py", "--agent", "bob"], cwd=project, text=True,
                           capture_output=True, timeout=60, check=False,
                           env={**env, "PI_MESH_CLOCK_OFFSET": offset})
        assert r.returncode == 3 and "alice" in r.stdout + r.stderr, (offset, r)
    # bob, his clock now 90 s behind, joins; alice (correct clock) judges him live
    r = subprocess.run([*PI_MESH, "join", "--name", "bob", "--harness", "script"], cwd=project, text=True,
                       capture_output=True, timeout=60, check=False, env={**env, "PI_MESH_CLOCK_OFFSET": "-90"})
    assert r.returncode == 0, r
    bob = alice.store.get_agent("bob")
    assert alice.store.is_live(bob), bob
    from pi_mesh_plugin.clock import parse_iso

    assert abs(parse_iso(bob["last_seen"]) - alice.now()) < 30  # stamped on the server's clock, not 90 s behind
    alice.close()


def test_the_store_reads_the_servers_clock(pg_url, project, monkeypatch):
    from pi_mesh_plugin import clock
    from pi_mesh_plugin.store.postgres import PostgresStore

    monkeypatch.setattr(clock, "OFFSET", 3600.0)
    s = PostgresStore(pg_url, project)
    server = s.db.fetchone("SELECT extract(epoch FROM clock_timestamp())::float8", (), "reading")[0]
    assert abs(s.now() - server) < 30 and abs(clock.now() - server) > 3000
    s.close()
