"""The real Claude Code CLI, as agent bob, next to alice's uncommitted work (authorship).

alice (a live agent owned by a process of her own) has written ``lib/util.py``
through the real post-call hook.  A scripted model makes Claude Code run, through
its Bash tool: ``git stash -u`` (denied by the PreToolUse hook: alice's file is
untouched and the model is told whose work it is), ``git add -A && git commit``
(the pre-commit guard refuses: the tool result names alice and her file), a
Write of its own file, and ``pi-mesh commit`` (which commits exactly that file).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from claude_rig import offline_env, run_claude
from scripted_anthropic import ScriptedAnthropic, result_text, text, tool_results, tool_use

from tests.authorship_helpers import GIT_ENV, agent_writes, git, join, write
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_claude_code_cannot_stash_or_commit_a_peers_work_but_commits_its_own(project: str, claude_bin: Path,
                                                                             tmp_path: Path) -> None:
    root = Path(project)
    write(project, "lib/util.py", "def util():\n    return 0\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    (root / "hooks.toml").write_text('[defaults]\nguard = ["edit", "write", "bash"]\n')
    for what in (("claude-code", "--no-mcp"), ("git-hook",)):
        r = run_cli("install", *what, cwd=project)
        assert r.returncode == 0, r.stderr
    settings = json.loads((root / ".claude" / "settings.json").read_text())
    assert "Bash" in settings["hooks"]["PreToolUse"][0]["matcher"]
    owners = [subprocess.Popen(["sleep", "300"]) for _ in range(2)]
    try:
        join(project, "alice", owners[0].pid)
        join(project, "bob", owners[1].pid)
        alices = "def util():\n    return 'alice, an hour of work'\n"
        agent_writes(project, "alice", "lib/util.py", alices)
        head = git(project, "rev-parse", "HEAD").stdout

        stash = tool_use("Bash", {"command": "git stash -u", "description": "clean up"})
        sweep = tool_use("Bash", {"command": "git add -A && git commit -m 'everything'", "description": "commit"})
        mine = tool_use("Write", {"file_path": str(root / "docs" / "bob.md"), "content": "bob's notes\n"})
        own = tool_use("Bash", {"command": f"{sys.executable} -m pi_mesh_plugin commit -m 'bob: notes'",
                                "description": "commit my files"})
        turns = [[text("Stashing."), stash], [sweep], [mine], [own], [text("Done.")]]
        with ScriptedAnthropic(turns) as server:
            env = offline_env(server.url, tmp_path / "sandbox")
            env.update(GIT_ENV, PI_MESH_AGENT="bob", PYTHONPATH=REPO)
            run = run_claude(claude_bin, "tidy up and commit", root, env, permission_mode="bypassPermissions")
        assert run.returncode == 0, run.stderr[-800:]
        assert server.turns_used == 5 and not server.exhausted_requests
        got = [tool_results(server.loop_requests[i]["body"])[0] for i in range(1, 5)]

        said = result_text(got[0])
        assert got[0].get("is_error") is True and "alice: lib/util.py" in said and "pi-mesh whose" in said
        assert (root / "lib" / "util.py").read_text() == alices
        assert git(project, "stash", "list").stdout == ""

        said = result_text(got[1])
        assert "alice last wrote lib/util.py" in said, said
        assert git(project, "rev-parse", "HEAD~1").stdout == head  # the one commit made is bob's own (below)

        assert not got[2].get("is_error"), result_text(got[2])
        said = result_text(got[3])
        assert not got[3].get("is_error") and "committed" in said and "docs/bob.md" in said, said
        assert git(project, "show", "--name-only", "--format=", "HEAD").stdout.split() == ["docs/bob.md"]
        assert (root / "lib" / "util.py").read_text() == alices  # still alice's, uncommitted
    finally:
        for p in owners:
            p.kill()
            p.wait()
