"""The sandbox: guarded shell commands run in a real bubblewrap namespace where other agents' claims are
read-only - whatever program writes (``python3 -c``), the kernel refuses, and the note names the holder.

Every command here is what the parser lets through (it cannot see into ``python3 -c``); without the
sandbox each of these writes would land.  bwrap is required (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from pi_mesh_plugin import sandbox
from pi_mesh_plugin.host import decide
from pi_mesh_plugin.records import Allow, Block, ToolCall
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                reason="bubblewrap (bwrap) is not installed")

LOGIN = "def login():\n    pass\n"


def py_write(path: str, text: str = "hacked") -> str:
    return f"python3 -c \"open('{path}', 'w').write('{text}')\""


def run(mesh, command: str, cwd: str) -> subprocess.CompletedProcess:
    """What a harness does with the core's answer: run the (rewritten) command with a shell in ``cwd``."""
    answer = decide(mesh, ToolCall(tool="bash", input={"command": command}, agent=mesh.agent, cwd=cwd))
    assert not isinstance(answer, Block), answer.message
    line = answer.input["command"] if isinstance(answer, Allow) else command
    return subprocess.run(["/bin/sh", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=60)


def read(project: str, rel: str) -> str:
    with open(os.path.join(project, rel)) as f:
        return f.read()


@pytest.fixture
def alice(mesh_factory, project):
    a = mesh_factory("alice")
    a.reserve(["src/auth/"], "refactoring auth", cwd=project)
    return a


def test_a_write_into_a_claimed_directory_fails_whatever_program_makes_it(alice, mesh_factory, project):
    bob = mesh_factory("bob")
    r = run(bob, py_write("src/auth/login.py") + "; echo notes > notes.txt", project)
    assert "Read-only file system" in r.stderr
    assert read(project, "src/auth/login.py") == LOGIN
    assert read(project, "notes.txt") == "notes\n"  # a write elsewhere in the same command lands
    assert "src/auth/ - reserved by agent alice: \"refactoring auth\"" in r.stderr
    assert "send_message(to=\"alice\"" in r.stderr
    # a new file, a rename and a delete inside the claim are refused too; the claim itself cannot be moved
    r = run(bob, "python3 -c \"import os, shutil; open('src/auth/new.py', 'w')\" ; "
                 "python3 -c \"import shutil; shutil.rmtree('src/auth')\" ; "
                 "python3 -c \"import os; os.rename('src/auth', 'gone')\" ; exit 7", project)
    assert r.returncode == 7  # the command's own exit code
    assert sorted(os.listdir(os.path.join(project, "src", "auth"))) == ["login.py"]
    assert not os.path.exists(os.path.join(project, "gone"))


def test_own_claims_and_unclaimed_paths_stay_writable(alice, mesh_factory, project):
    os.makedirs(os.path.join(project, "src", "api"))
    bob = mesh_factory("bob")
    bob.reserve(["src/api/"], "routes", cwd=project)
    r = run(bob, py_write("src/api/routes.py", "ROUTES") + " && " + py_write("src/free.py", "FREE"), project)
    assert r.returncode == 0, r.stderr
    assert read(project, "src/api/routes.py") == "ROUTES" and read(project, "src/free.py") == "FREE"
    assert "pi-mesh" not in r.stderr  # nothing was refused: no note
    # alice's own command may write her claim (and, with bob's claim, not his)
    r = run(alice, py_write("src/auth/login.py", "MINE") + "; " + py_write("src/api/routes.py"), project)
    assert read(project, "src/auth/login.py") == "MINE" and read(project, "src/api/routes.py") == "ROUTES"
    assert "reserved by agent bob: \"routes\"" in r.stderr and "alice:" not in r.stderr


def test_a_claimed_file_is_read_only_its_neighbours_are_not(mesh_factory, project):
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/login.py"], "one file", cwd=project)
    bob = mesh_factory("bob")
    r = run(bob, py_write("src/auth/login.py") + "; " + py_write("src/auth/other.py", "OK"), project)
    assert read(project, "src/auth/login.py") == LOGIN and read(project, "src/auth/other.py") == "OK"
    assert "src/auth/login.py - reserved by agent alice: \"one file\"" in r.stderr


def test_a_claim_reached_through_a_symlink_is_read_only(alice, mesh_factory, project):
    os.symlink("src/auth", os.path.join(project, "shortcut"))
    bob = mesh_factory("bob")
    run(bob, py_write("shortcut/login.py"), project)
    # and a link made in the same command, to a path the parser never sees
    r = run(bob, "ln -s src a && python3 -c \"open('a/' + 'auth/login.py', 'w')\"", project)
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert read(project, "src/auth/login.py") == LOGIN
    # from a directory outside the project, through its absolute path
    r = run(bob, py_write(os.path.join(project, "src/auth/login.py")), "/tmp")
    assert read(project, "src/auth/login.py") == LOGIN and "reserved by agent alice" in r.stderr


def test_nested_claims_and_a_claimed_path_that_does_not_exist_yet(mesh_factory, project):
    os.makedirs(os.path.join(project, "src", "api"))
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/", "src/auth/login.py"], "auth and its login", cwd=project)  # nested, one holder
    carol = mesh_factory("carol")
    carol.reserve(["src/new/deep/plan.py"], "a new module", cwd=project)  # src/new/ does not exist yet
    bob = mesh_factory("bob")
    r = run(bob, "mkdir -p src/new/deep; " + py_write("src/new/deep/plan.py") + "; " + py_write("src/auth/login.py")
            + "; " + py_write("src/api/x.py", "API") + "; " + py_write("README.md", "readme"), project)
    assert not os.path.exists(os.path.join(project, "src", "new"))
    assert read(project, "src/auth/login.py") == LOGIN
    # the existing entries around the missing claim stay writable (src/api/, and the project root's files)
    assert read(project, "src/api/x.py") == "API" and read(project, "README.md") == "readme"
    assert "src/new/deep/plan.py - reserved by agent carol: \"a new module\"" in r.stderr
    assert "no new file can be made in src/" in r.stderr


def test_the_mesh_still_works_inside_even_with_the_whole_project_claimed(mesh_factory, project):
    alice = mesh_factory("alice")
    alice.reserve(["."], "everything", cwd=project)
    bob = mesh_factory("bob")
    r = run(bob, py_write("README.md") + f"; {sys.executable} -m pi_mesh_plugin --agent bob send alice 'may I?'",
            project)
    assert not os.path.exists(os.path.join(project, "README.md"))
    assert r.returncode == 0, r.stderr
    assert [m.text for m in alice.read_inbox()] == ["may I?"]


def test_no_claims_of_others_no_wrap_and_unguarded_bash_no_wrap(mesh_factory, project):
    bob = mesh_factory("bob")
    bob.reserve(["src/auth/"], "mine", cwd=project)
    assert decide(bob, ToolCall(tool="bash", input={"command": "ls"}, cwd=project)) is None
    alice = mesh_factory("alice")
    assert isinstance(decide(alice, ToolCall(tool="bash", input={"command": "ls"}, cwd=project)), Allow)
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nsandbox = "off"\n')
    from pi_mesh_plugin.mesh import Mesh

    off = Mesh(project, "alice")
    try:
        assert decide(off, ToolCall(tool="bash", input={"command": "ls"}, cwd=project)) is None
        assert "turned off" in sandbox.fallback_notice(off)
    finally:
        off.close()


def test_where_bwrap_cannot_run_the_parser_alone_decides_and_says_so_once(alice, project, tmp_path, monkeypatch):
    nobwrap = tmp_path / "bin"  # git, but no bwrap
    nobwrap.mkdir()
    (nobwrap / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(nobwrap))
    from pi_mesh_plugin.mesh import Mesh

    bob = Mesh(project, "bob")
    try:
        assert "bwrap (bubblewrap) is not installed" in sandbox.unavailable(bob)
        assert sandbox.wrap_command(bob, "ls", project) is None
        assert decide(bob, ToolCall(tool="bash", input={"command": py_write("src/auth/x.py")}, cwd=project)) is None
        assert decide(bob, ToolCall(tool="bash", input={"command": "rm src/auth/login.py"}, cwd=project)).holder == "alice"
        bob.join()
        assert any("no shell sandbox: bwrap (bubblewrap) is not installed" in n for n in bob.notices)
    finally:
        bob.close()
    got = run_cli("--json", "doctor", cwd=project, env={"PATH": str(nobwrap)})
    assert any(f["kind"] == "no-sandbox" for f in json.loads(got.stdout)), got.stdout


def test_pi_mesh_run(alice, project):
    env = {"PI_MESH_AGENT": "bob"}
    r = run_cli("run", "--", "sed", "-i", "s/pass/return 1/", "src/auth/login.py", cwd=project, env=env)
    assert r.returncode == 3 and "reserved by agent alice" in r.stderr  # the parser, before anything ran
    r = run_cli("run", "--", py_write("src/auth/login.py") + " && echo never", cwd=project, env=env)
    assert r.returncode == 1 and "never" not in r.stdout
    assert "Read-only file system" in r.stderr and "reserved by agent alice" in r.stderr
    assert read(project, "src/auth/login.py") == LOGIN
    r = run_cli("run", "--", "python3", "-c", "import sys; open('out.txt', 'w').write(sys.argv[1])", "a b",
                cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    assert read(project, "out.txt") == "a b"


def test_the_sidecar_says_once_at_hello_and_in_mesh_status_when_there_is_no_sandbox(alice, project, tmp_path,
                                                                                    monkeypatch):
    import io

    from pi_mesh_plugin.adapters.servers.sidecar import Sidecar

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    sc = Sidecar(io.BytesIO(), root=project, watch=False)
    try:
        hello = sc.handle({"id": 1, "op": "hello", "name": "pi-1", "pid": os.getpid(), "cwd": project})
        assert hello["ok"], hello
        assert [n for n in hello["result"]["notices"] if n.startswith("no shell sandbox: bwrap")], hello
        status = sc.handle({"id": 2, "op": "status"})["result"]["text"]
        assert "no shell sandbox: bwrap (bubblewrap) is not installed" in status
        answer = sc.handle({"id": 3, "op": "pre_tool_call", "tool": "bash", "input": {"command": "ls"}, "cwd": project})
        assert answer["result"] == {"allow": True, "block": None}  # the parser alone: nothing rewritten
    finally:
        sc.handle({"id": 4, "op": "leave"})
        sc.shutdown()
    monkeypatch.undo()
    sc = Sidecar(io.BytesIO(), root=project, watch=False)
    try:
        sc.handle({"id": 1, "op": "hello", "name": "pi-2", "pid": os.getpid(), "cwd": project})
        answer = sc.handle({"id": 2, "op": "pre_tool_call", "tool": "bash", "input": {"command": "ls"}, "cwd": project})
        assert answer["result"]["allow"] is True and answer["result"]["input"]["command"].startswith("bwrap ")
        assert "no shell sandbox" not in sc.handle({"id": 3, "op": "status"})["result"]["text"]
    finally:
        sc.handle({"id": 4, "op": "leave"})
        sc.shutdown()
