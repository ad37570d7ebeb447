"""The authorship guarantees on both stores: the same real processes, the ledger in files or in PostgreSQL."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.authorship_helpers import agent_writes, bash_guard, cli, git, join, write


@pytest.fixture
def team(backend, project):
    write(project, "lib/util.py", "def util():\n    return 0\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    assert cli(project, "install", "git-hook").returncode == 0
    procs = [subprocess.Popen(["sleep", "300"]) for _ in range(3)]
    for name, p in zip(("alice", "bob", "carol"), procs):
        join(project, name, p.pid)
    yield project
    for p in procs:
        p.kill()
        p.wait()


def test_commit_stash_and_own_commit_with_three_agents(team, backend):
    agent_writes(team, "alice", "lib/util.py", "def util():\n    return 'alice'\n")
    agent_writes(team, "bob", "src/b.py", "b = 1\n")
    agent_writes(team, "carol", "docs/c.md", "c\n")
    assert os.path.isdir(os.path.join(team, ".pi", "mesh", "ledger")) == (backend == "files")
    git(team, "add", "-A")
    p = git(team, "commit", "-q", "-m", "all of it", agent="bob", check=False)
    assert p.returncode == 1 and "alice last wrote lib/util.py" in p.stderr and "carol last wrote docs/c.md" in p.stderr
    deny = bash_guard(team, "bob", "git stash -u")
    assert deny is not None and "alice: lib/util.py" in deny["permissionDecisionReason"]
    assert "carol: docs/c.md" in deny["permissionDecisionReason"]
    git(team, "reset", "-q")
    r = cli(team, "commit", "-m", "bob's", agent="bob")
    assert r.returncode == 0, r.stderr
    assert git(team, "show", "--name-only", "--format=", "HEAD").stdout.split() == ["src/b.py"]
    r = cli(team, "handover", "docs/c.md", "--to", "bob", agent="carol")
    assert r.returncode == 0, r.stderr
    assert bash_guard(team, "bob", "git clean -fd docs") is None  # carol's file is bob's now
