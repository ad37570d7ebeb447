"""The real Pi CLI (pi-mesh extension) as agent pi-1, next to alice's uncommitted work (authorship).

Every Pi tool call reaches the sidecar's guard, so a ``bash`` call running git is checked whether or
not ``bash`` is guarded: ``git stash -u`` and ``git checkout .`` would discard alice's ``lib/util.py``
and are blocked before they run; pi-1 writes its own file (the sidecar's post-call hook records it in
the ledger) and ``pi-mesh commit`` commits exactly that file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pi_rig import run_pi
from scripted_openai import ScriptedOpenAI, text, tool_call

from tests.authorship_helpers import GIT_ENV, agent_writes, git, join, write
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("pi-e2e")]


def test_pi_cannot_stash_or_revert_a_peers_work_and_commits_its_own(project: str, pi_install: Path,
                                                                    tmp_path: Path) -> None:
    root = Path(project)
    write(project, "lib/util.py", "def util():\n    return 0\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    r = run_cli("install", "pi", cwd=project)
    assert r.returncode == 0, r.stderr
    owner = subprocess.Popen(["sleep", "300"])
    try:
        join(project, "alice", owner.pid)
        alices = "def util():\n    return 'alice, an hour of work'\n"
        agent_writes(project, "alice", "lib/util.py", alices)
        head = git(project, "rev-parse", "HEAD").stdout.strip()

        stash = tool_call("bash", {"command": "git stash -u"})
        revert = tool_call("bash", {"command": "git checkout ."})
        mine = tool_call("write", {"path": "docs/pi.md", "content": "pi-1's notes\n"})
        own = tool_call("bash", {"command": f"{sys.executable} -m pi_mesh_plugin commit -m 'pi-1: notes'"})
        turns = [[stash], [revert], [mine], [own], [text("done")]]
        with ScriptedOpenAI(turns) as server:
            run = run_pi(root, "tidy up and commit", server, agent_dir=tmp_path / "agent", timeout=120,
                         env={**GIT_ENV, "PI_MESH_AGENT": "pi-1", "PYTHONPATH": REPO})
            requests = server.chat_requests()
            assert run.returncode == 0, run.describe()
        assert len(requests) == 5, run.describe()
        results = [ScriptedOpenAI.tool_results(requests[i]) for i in range(1, 5)]

        for i, call in enumerate((stash, revert)):
            said = results[i][call["id"]]
            assert "BLOCKED" in said and "alice: lib/util.py" in said and "pi-mesh whose" in said, said
            assert run.tool_ends()[call["id"]]["isError"] is True
        assert (root / "lib" / "util.py").read_text() == alices
        assert git(project, "stash", "list").stdout == ""

        said = results[3][own["id"]]
        assert "committed" in said and "docs/pi.md" in said, said
        assert git(project, "rev-parse", "HEAD~1").stdout.strip() == head
        assert git(project, "show", "--name-only", "--format=", "HEAD").stdout.split() == ["docs/pi.md"]
        assert (root / "lib" / "util.py").read_text() == alices
    finally:
        owner.kill()
        owner.wait()
