"""Liveness across pid namespaces: a real ``unshare --pid --fork --mount-proc`` child joins and reserves.

Its owner pid (1 in its namespace) means another process out here; it must be judged by its heartbeat,
never declared dead from here, and ``doctor --fix`` must keep a record it cannot judge.  Needs root (or
unprivileged user namespaces) and util-linux ``unshare``: CI runs as root, so there it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from pi_mesh_plugin.liveness import INIT_PID_NS, pid_ns, verdict
from pi_mesh_plugin.mesh import Mesh
from tests.conftest import REPO, run_cli

CHILD = textwrap.dedent("""
    import json, os, subprocess, sys
    root = sys.argv[1]
    env = {**os.environ, "PYTHONPATH": sys.argv[2]}
    def cli(*a):
        r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin", "--root", root, *a], env=env,
                           capture_output=True, text=True)
        return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
    print(json.dumps({"pid": os.getpid(), "join": cli("join", "--name", "cont", "--harness", "script"),
                      "reserve": cli("reserve", "vendor/auth/", "--reason", "container work", "--agent", "cont")}),
          flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "exit":
            break
        print(json.dumps(cli(*cmd)), flush=True)
""")


def _unshare_works() -> str | None:
    """Why a pid namespace cannot be made here, or ``None``."""
    if not shutil.which("unshare"):
        return "util-linux unshare is not installed"
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"unshare --pid --fork --mount-proc fails here: {r.stderr.strip()[:200]}"
    return None


@pytest.fixture
def namespace_child(project, backend):
    """The child, started once ``backend`` has chosen the store (``$PI_MESH_STORE`` for PostgreSQL)."""
    why = _unshare_works()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the pid namespace test: {why}")
        print(f"skipping: {why}")
        pytest.skip(why)
    child = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", CHILD, project, REPO],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ask(*cmd: str) -> dict:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(" ".join(cmd) + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    assert child.stdout is not None
    first = json.loads(child.stdout.readline())
    yield child, first, ask
    if child.poll() is None:
        child.kill()
    child.wait()
    for f in (child.stdin, child.stdout, child.stderr):
        f.close()  # type: ignore[union-attr]


def _record(project: str, name: str) -> dict | None:
    """The agent's record as the store (files or PostgreSQL, from ``$PI_MESH_STORE``) holds it."""
    with Mesh(project) as m:
        return m.store.get_agent(name)


def _age_heartbeat(project: str, name: str) -> None:
    """Make an agent's last heartbeat an old one, as if it had stopped beating long ago."""
    with Mesh(project) as m:
        assert m.store.update_agent(name, None, {"last_seen": "2020-01-01T00:00:00.000000Z"}) is not None


def _found(out: str, kind: str, name: str) -> bool:
    return any(f["kind"] == kind and os.path.basename(f["path"]) in (name, name + ".json") for f in json.loads(out))


def test_an_owner_in_another_pid_namespace_is_judged_by_its_heartbeat(project, mesh_factory, namespace_child):
    child, first, ask = namespace_child
    assert first["pid"] == 1 and first["join"]["rc"] == 0 and first["reserve"]["rc"] == 0, first
    cont = _record(project, "cont")
    assert cont["pid"] == 1 and cont["pid_ns"] not in (None, pid_ns())  # pid 1 out here is another process

    # from out here, the container's claim holds: blocked, naming the holder and the reason
    r = run_cli("check", "vendor/auth/login.py", "--agent", "bob", cwd=project)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "cont" in r.stdout and "container work" in r.stdout
    taken = run_cli("join", "--name", "cont", cwd=project)  # its name is not free for the taking
    assert taken.returncode != 0 and "cont" in taken.stderr, taken.stdout + taken.stderr
    assert _record(project, "cont")["pid_ns"] == cont["pid_ns"]
    r = run_cli("doctor", "--fix", cwd=project)
    assert _record(project, "cont") is not None, r.stdout

    # and from in there, an agent out here (whose pid the namespace cannot see) holds its claim too
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], "host work")
    got = ask("check", "src/auth/login.py", "--agent", "cont")
    assert got["rc"] == 3 and "alice" in got["out"], got

    # a stale heartbeat from inside: the owner out here cannot be seen from there, so the record stays
    _age_heartbeat(project, "alice")
    got = ask("doctor", "--fix", "--json")
    assert got["rc"] in (0, 1), got
    assert _found(got["out"], "unjudged-agent", "alice"), got["out"]
    assert _record(project, "alice") is not None

    # a stale heartbeat seen from out here: the namespace is visible from its parent and its owner runs
    _age_heartbeat(project, "cont")
    assert verdict(_record(project, "cont"), 60.0) == "live"
    r = run_cli("--json", "doctor", "--fix", cwd=project)
    assert _found(r.stdout, "unjudged-agent", "cont") and _record(project, "cont") is not None, r.stdout

    # the namespace ends (its pid 1 exits): from the initial namespace, that is a judgement - gone
    assert child.stdin is not None
    child.stdin.write("exit\n")
    child.stdin.flush()
    child.wait(timeout=60)
    if pid_ns() != INIT_PID_NS:
        pytest.skip("this test runs inside a pid namespace: an ended namespace cannot be told from an unseen one")
    assert verdict(_record(project, "cont"), 60.0) == "gone"
    r = run_cli("--json", "doctor", "--fix", cwd=project)
    assert _found(r.stdout, "stale-agent", "cont"), r.stdout
    assert _record(project, "cont") is None
