"""Activity tracking through the post-call hook: feed events and the registry's ``activity``."""

from __future__ import annotations

import json

import pytest

from pi_mesh_plugin.host import PluginHost
from pi_mesh_plugin.plugins.activity import MAX_FILES, is_commit, is_test_run
from pi_mesh_plugin.records import ToolCall
from tests.conftest import run_cli


@pytest.fixture
def bob(project, mesh_factory):
    m = mesh_factory("bob", cwd=project)
    m.host = PluginHost(m)
    return m


def done(m, tool: str, ok: bool = True, paths: tuple = (), **inp) -> None:
    m.host.post_tool_call(ToolCall(tool=tool, input=inp, paths=paths, agent=m.agent, cwd=m.cwd),
                          {"ok": ok, "output": "whatever"})


def activity(m) -> dict:
    return m.me().activity or {}


def events(m, kind: str) -> list[dict]:
    return [e for e in m.feed() if e["event"] == kind and e.get("agent") == m.agent]


def test_edits_commits_and_test_runs_are_counted_and_fed(bob):
    done(bob, "edit", paths=("src/auth/login.py",), path="src/auth/login.py")
    a = activity(bob)
    assert (a["edits"], a["commits"], a["test_runs"]) == (1, 0, 0)
    assert a["files_touched"] == ["src/auth/login.py"] and a["last"] == "edit src/auth/login.py" and a["last_at"]
    assert events(bob, "edit")[-1]["paths"] == ["src/auth/login.py"]

    done(bob, "bash", command="sed -i 's/pass/return 1/' src/util.py && git add -A && git commit -qm 'fix login'")
    a = activity(bob)
    assert (a["edits"], a["commits"], a["test_runs"]) == (2, 1, 0)
    assert a["files_touched"] == ["src/auth/login.py", "src/util.py"]
    assert a["last"].startswith("commit: sed -i")
    assert "git commit" in events(bob, "commit")[-1]["command"]

    done(bob, "bash", ok=False, command="cd src && python -m pytest -q -x")
    a = activity(bob)
    assert (a["edits"], a["commits"], a["test_runs"]) == (2, 1, 1)
    assert a["last"] == "tests: cd src && python -m pytest -q -x (failed)"
    assert events(bob, "test")[-1]["ok"] is False


def test_failed_edits_and_commits_and_reads_are_not_counted(bob):
    done(bob, "write", ok=False, paths=("a.py",), path="a.py")
    done(bob, "bash", ok=False, command="git commit -m x")
    done(bob, "bash", command="cat src/auth/login.py | grep pass; git diff; ls")
    done(bob, "read", path="src/auth/login.py")
    a = activity(bob)
    assert (a["edits"], a["commits"], a["test_runs"]) == (0, 0, 0) and a["files_touched"] == []
    assert a["last"] == "read src/auth/login.py"
    assert not events(bob, "edit") and not events(bob, "commit")


def test_registered_tools_are_tracked_through_call_tool(bob, mesh_factory, project):
    mesh_factory("alice", cwd=project)
    bob.host.call_tool("send_message", {"to": "alice", "text": "hello"})
    assert activity(bob)["last"] == "send_message alice"


def test_files_touched_is_bounded_and_most_recent_last(bob):
    for i in range(MAX_FILES + 10):
        done(bob, "write", paths=(f"gen/f{i}.py",), path=f"gen/f{i}.py")
    done(bob, "edit", paths=("gen/f20.py",), path="gen/f20.py")
    a = activity(bob)
    assert len(a["files_touched"]) == MAX_FILES and a["edits"] == MAX_FILES + 11
    assert a["files_touched"][-1] == "gen/f20.py" and a["files_touched"].count("gen/f20.py") == 1
    assert "gen/f0.py" not in a["files_touched"]


def test_huge_commands_stay_small_in_feed_and_registry(bob):
    cmd = "pytest " + " ".join(f"tests/test_{i}.py" for i in range(2000))
    done(bob, "bash", command=cmd)
    assert len(activity(bob)["last"]) <= 500
    assert len(events(bob, "test")[-1]["command"]) <= 200


def test_agentless_mesh_tracks_nothing(project, mesh_factory):
    nobody = mesh_factory(None, cwd=project)
    PluginHost(nobody).post_tool_call(ToolCall(tool="edit", paths=("a.py",), cwd=project), {"ok": True})
    assert nobody.feed() == []


def test_agents_command_and_list_agents_tool_show_it(bob, project):
    done(bob, "edit", paths=("src/auth/login.py",), path="src/auth/login.py")
    done(bob, "bash", command="make test")
    r = run_cli("agents", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "last: tests: make test" in r.stdout
    assert "did: 1 edit, 1 test run; touched src/auth/login.py" in r.stdout
    rows = json.loads(run_cli("--json", "agents", cwd=project).stdout)
    assert rows[0]["activity"]["test_runs"] == 1
    assert "last: tests: make test" in bob.host.call_tool("list_agents", {})


@pytest.mark.parametrize("argv, expected", [
    ("pytest -q", True), ("py.test", True), ("python3 -m pytest tests", True), ("python -m unittest", True),
    ("npm test", True), ("npm run test:unit", True), ("npm run build", False), ("yarn test", True),
    ("pnpm run test", True), ("bun test", True), ("npx vitest run", True), ("make test", True),
    ("make check", True), ("make", False), ("cargo test --all", True), ("cargo build", False),
    ("go test ./...", True), ("go build", False), ("uv run pytest", True), ("tox -e py311", True),
    ("python manage.py test", True), ("python script.py", False), ("./gradlew test", True),
    ("bundle exec rspec", True), ("ls", False),
])
def test_is_test_run(argv, expected):
    assert is_test_run(argv.split()) is expected


@pytest.mark.parametrize("argv, expected", [
    ("git commit -m x", True), ("git -C sub commit -a", True), ("git -c user.name=x commit", True),
    ("git commit --dry-run", False), ("git status", False), ("git log --grep commit", False),
])
def test_is_commit(argv, expected):
    assert is_commit(argv.split()) is expected


def test_pi_sidecar_post_tool_call_feeds_activity(project, mesh_factory):
    """The Pi path: the extension's tool_result -> sidecar `post_tool_call` -> the built-in post-call hook."""
    import os

    from tests.test_sidecar import Sidecar

    s = Sidecar(project)
    try:
        s.ok("hello", name="pi-1", harness="pi", pid=os.getpid())
        s.ok("post_tool_call", tool="edit", input={"path": "src/auth/login.py", "edits": []}, ok=True, cwd=project)
        s.ok("post_tool_call", tool="bash", input={"command": "git commit -am wip && cargo test"}, ok=True, cwd=project)
        watcher = mesh_factory(None, join=False, cwd=project)
        a = next(x for x in watcher.agents() if x.name == "pi-1").activity
        assert (a["edits"], a["commits"], a["test_runs"]) == (1, 1, 1)
        assert a["files_touched"] == ["src/auth/login.py"] and a["last"].startswith("commit: git commit -am wip")
        assert [e["event"] for e in watcher.feed() if e.get("agent") == "pi-1"][-3:] == ["edit", "commit", "test"]
    finally:
        s.close()
