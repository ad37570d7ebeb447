"""The git pre-commit guard, with real git repositories and real `git commit` runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_cli

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(project: str, *args: str, agent: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    env.update(GIT_ENV)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    if agent:
        env["PI_MESH_AGENT"] = agent
    p = subprocess.run(["git", *args], cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {p.stderr}")
    return p


def commit(project: str, *paths: str, agent: str | None = None) -> subprocess.CompletedProcess:
    git(project, "add", "-A", *paths)
    return git(project, "commit", "-q", "-m", "change", agent=agent, check=False)


def head(project: str) -> str | None:
    p = git(project, "rev-parse", "-q", "--verify", "HEAD", check=False)
    return p.stdout.strip() or None


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write(project: str, rel: str, text: str = "x\n") -> None:
    full = os.path.join(project, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


@pytest.fixture
def repo(project, mesh_factory):
    """A repository with a first commit, the hook installed, and alice holding src/auth/."""
    write(project, "lib/util.py")
    write(project, "README.md")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    r = run_cli("install", "git-hook", cwd=project)
    assert r.returncode == 0, r.stderr
    alice = mesh_factory("alice", cwd=project)
    alice.reserve(["src/auth/"], "rewriting the login flow", cwd=project)
    mesh_factory("bob", cwd=project)
    return project


def test_install_writes_an_executable_hook(repo):
    hook = os.path.join(repo, ".git", "hooks", "pre-commit")
    assert os.access(hook, os.X_OK)
    with open(hook) as f:
        text = f.read()
    assert "pi-mesh pre-commit hook" in text and sys.executable in text


def test_commit_touching_another_agents_claim_is_refused(repo):
    before = head(repo)
    write(repo, "src/auth/login.py", "def login():\n    return 1\n")
    p = commit(repo, agent="bob")
    assert p.returncode == 1
    assert "src/auth/login.py" in p.stderr and "alice" in p.stderr and "rewriting the login flow" in p.stderr
    assert "agent bob" in p.stderr and "Traceback" not in p.stderr
    assert head(repo) == before
    # `commit -a` and `commit PATH` stage into a temporary index (GIT_INDEX_FILE) that the hook must read
    git(repo, "reset", "-q", "--hard")
    write(repo, "README.md", "tracked change\n")
    assert git(repo, "commit", "-qam", "all", agent="bob", check=False).returncode == 0
    write(repo, "src/auth/login.py", "changed by bob\n")
    p = git(repo, "commit", "-qam", "all", agent="bob", check=False)
    assert p.returncode == 1 and "src/auth/login.py" in p.stderr
    p = git(repo, "commit", "-qm", "only", "src/auth/login.py", agent="bob", check=False)
    assert p.returncode == 1 and "src/auth/login.py" in p.stderr


def test_commit_elsewhere_and_the_holders_own_commit_pass(repo):
    write(repo, "lib/util.py", "y\n")
    assert commit(repo, agent="bob").returncode == 0
    write(repo, "src/auth/login.py", "def login():\n    return 2\n")
    p = commit(repo, agent="alice")
    assert p.returncode == 0, p.stderr
    assert git(repo, "log", "-1", "--name-only", "--format=").stdout.split() == ["src/auth/login.py"]


def test_commit_by_no_agent_is_checked_against_every_claim(repo):
    write(repo, "src/auth/new.py")
    p = commit(repo, agent=None)
    assert p.returncode == 1 and "alice" in p.stderr and "no mesh agent" in p.stderr
    p = commit(repo, agent="nobody-registered")
    assert p.returncode == 1 and "alice" in p.stderr


def test_both_names_of_a_rename_count(repo):
    # out of the claim
    write(repo, "src/auth/old.py", "a\n" * 20)
    assert commit(repo, agent="alice").returncode == 0
    git(repo, "mv", "src/auth/old.py", "lib/old.py")
    status = git(repo, "diff", "--cached", "--name-status", "-M").stdout
    assert status.startswith("R"), status
    p = git(repo, "commit", "-q", "-m", "move", agent="bob", check=False)
    assert p.returncode == 1 and "src/auth/old.py" in p.stderr and "alice" in p.stderr
    git(repo, "reset", "-q", "--hard")
    # into the claim
    git(repo, "mv", "lib/util.py", "src/auth/util.py")
    p = git(repo, "commit", "-q", "-m", "move", agent="bob", check=False)
    assert p.returncode == 1 and "src/auth/util.py" in p.stderr
    git(repo, "reset", "-q", "--hard")
    # a deletion inside the claim
    git(repo, "rm", "-q", "src/auth/old.py")
    p = git(repo, "commit", "-q", "-m", "delete", agent="bob", check=False)
    assert p.returncode == 1 and "src/auth/old.py" in p.stderr


def test_a_dead_agents_claim_does_not_block(project, mesh_factory):
    write(project, "README.md")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    assert run_cli("install", "git-hook", cwd=project).returncode == 0
    owner = subprocess.Popen(["sleep", "60"])
    try:
        carol = mesh_factory(None, cwd=project)
        carol.join("carol", pid=owner.pid)
        carol.reserve(["src/"], "gone soon", cwd=project)
        write(project, "src/x.py")
        assert commit(project, agent="bob").returncode == 1
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert commit(project, agent="bob").returncode == 0


def test_core_hookspath_is_respected(project, mesh_factory):
    git(project, "config", "core.hooksPath", ".githooks")
    r = run_cli("install", "git-hook", cwd=project)
    assert r.returncode == 0 and ".githooks" in r.stdout
    assert os.access(os.path.join(project, ".githooks", "pre-commit"), os.X_OK)
    assert not os.path.exists(os.path.join(project, ".git", "hooks", "pre-commit"))
    alice = mesh_factory("alice", cwd=project)
    alice.reserve(["src/auth/login.py"], "mine", cwd=project)
    p = commit(project, "src", agent="bob")
    assert p.returncode == 1 and "src/auth/login.py" in p.stderr


def test_an_existing_hook_is_chained_idempotently_and_restored(project, mesh_factory):
    hooks = os.path.join(project, ".git", "hooks")
    os.makedirs(hooks, exist_ok=True)
    original = "#!/bin/sh\necho ran >> \"$(git rev-parse --show-toplevel)/.git/chained-ran\"\nexit ${FAIL:-0}\n"
    with open(os.path.join(hooks, "pre-commit"), "w") as f:
        f.write(original)
    os.chmod(os.path.join(hooks, "pre-commit"), 0o755)
    for _ in range(2):
        r = run_cli("install", "git-hook", cwd=project)
        assert r.returncode == 0, r.stderr
    assert sorted(n for n in os.listdir(hooks) if n.startswith("pre-commit") and n != "pre-commit.sample") == [
        "pre-commit", "pre-commit.pi-mesh-chained"]
    with open(os.path.join(hooks, "pre-commit.pi-mesh-chained")) as f:
        assert f.read() == original
    alice = mesh_factory("alice", cwd=project)
    alice.reserve(["src/auth/"], "mine", cwd=project)
    write(project, "docs/a.md")
    assert commit(project, "docs", agent="bob").returncode == 0
    ran = os.path.join(project, ".git", "chained-ran")
    assert read(ran) == "ran\n"
    p = commit(project, "src", agent="bob")  # the chained hook passes, ours refuses
    assert p.returncode == 1 and "alice" in p.stderr and read(ran) == "ran\nran\n"
    write(project, "docs/b.md")
    assert commit(project, "src", "docs", agent="alice").returncode == 0  # the holder commits her own claim
    r = run_cli("install", "git-hook", "--uninstall", cwd=project)
    assert r.returncode == 0 and "previous pre-commit hook is back" in r.stdout
    with open(os.path.join(hooks, "pre-commit")) as f:
        assert f.read() == original


def test_a_failing_chained_hook_fails_the_commit(project):
    hooks = os.path.join(project, ".git", "hooks")
    os.makedirs(hooks, exist_ok=True)
    with open(os.path.join(hooks, "pre-commit"), "w") as f:
        f.write("#!/bin/sh\necho 'lint failed' >&2\nexit 3\n")
    os.chmod(os.path.join(hooks, "pre-commit"), 0o755)
    assert run_cli("install", "git-hook", cwd=project).returncode == 0
    p = commit(project, agent="bob")
    assert p.returncode != 0 and "lint failed" in p.stderr and head(project) is None


def test_unreadable_mesh_refuses_the_commit(project):
    assert run_cli("install", "git-hook", cwd=project).returncode == 0
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write("[defaults]\nguard = 42\n")
    p = commit(project, agent="bob")
    assert p.returncode == 1 and "BLOCKED by pi-mesh: cannot check this commit" in p.stderr
    assert "Traceback" not in p.stderr and head(project) is None


def test_module_entry_point_and_install_outside_a_repository(tmp_path, project):
    r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin.adapters.hooks.git_precommit"], cwd=project, capture_output=True, check=False,
                       text=True, env={**os.environ, "PYTHONPATH": REPO, **GIT_ENV})
    assert r.returncode == 0, r.stderr  # nothing staged, nobody claims anything
    r = run_cli("install", "git-hook", cwd=str(tmp_path))
    assert r.returncode != 0 and "not a git repository" in r.stderr and "Traceback" not in r.stderr
