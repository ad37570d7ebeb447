"""The real Claude Code CLI with the mesh installed by ``pi-mesh install claude-code``.

Another agent (alice) holds ``src/auth/``.  A scripted model makes Claude Code
write ``src/auth/login.py`` (denied by the pi-mesh PreToolUse hook: the file is
unchanged and the tool_result the model receives names alice and her reason),
then a file elsewhere (allowed: it is written).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from claude_rig import offline_env, run_claude
from mesh_scenario import REASON, assert_block_recorded, install_with_alice
from scripted_anthropic import ScriptedAnthropic, result_text, text, tool_results, tool_use

from tests.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_claude_code_write_to_reserved_path_is_denied(project: str, mesh_factory, claude_bin: Path,
                                                      tmp_path: Path) -> None:
    root, alice = install_with_alice(project, mesh_factory, "claude-code", "--no-mcp")
    settings = json.loads((root / ".claude" / "settings.json").read_text())
    assert settings["hooks"]["PreToolUse"][0]["matcher"] == "Edit|Write|MultiEdit|NotebookEdit|Bash"

    login = root / "src" / "auth" / "login.py"
    before = login.read_text()
    notes = root / "docs" / "notes.md"

    read = tool_use("Read", {"file_path": str(login)})  # Claude Code refuses to Write a file it has not read
    blocked = tool_use("Write", {"file_path": str(login), "content": "def login():\n    return True\n"})
    allowed = tool_use("Write", {"file_path": str(notes), "content": "auth is alice's for now\n"})
    turns = [[text("Reading login."), read], [text("Editing login."), blocked], [text("Reserved; writing notes instead."), allowed],
             [text("Done.")]]
    with ScriptedAnthropic(turns) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        run = run_claude(claude_bin, "fix the login", root, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 4 and not server.exhausted_requests

    assert login.read_text() == before
    assert notes.read_text() == "auth is alice's for now\n"

    denied = tool_results(server.loop_requests[2]["body"])
    assert [r["tool_use_id"] for r in denied] == [blocked["id"]]
    assert denied[0].get("is_error") is True
    said = result_text(denied[0])
    assert "reserved by agent alice" in said and REASON in said and "src/auth/" in said
    ok = tool_results(server.loop_requests[3]["body"])
    assert [r["tool_use_id"] for r in ok] == [allowed["id"]] and not ok[0].get("is_error")
    assert "alice" not in result_text(ok[0])

    # The mesh recorded the block (the core decided, the hook translated).
    assert_block_recorded(alice)
    # The PostToolUse hook ran for the allowed write, but this caller has no agent name: nothing is recorded.
    assert settings["hooks"]["PostToolUse"][0]["matcher"] == "Edit|Write|MultiEdit|NotebookEdit|Bash"
    assert [e for e in alice.feed() if e["event"] == "edit"] == []
    assert os.path.exists(root / ".pi" / "mesh")


def test_a_tool_denied_in_hooks_toml_after_install_is_refused_without_reinstall(project: str, mesh_factory,
                                                                               claude_bin: Path, tmp_path: Path) -> None:
    """The reviewer may not use bash: hooks.toml says so after the install, and the installed hook refuses
    the Bash call in a real session (nothing runs: the file the command would make is not made)."""
    root, _ = install_with_alice(project, mesh_factory, "claude-code", "--no-mcp")
    (root / "hooks.toml").write_text('[agents.reviewer]\ndeny = ["bash"]\n')
    made = root / "made-by-bash.txt"
    shell = tool_use("Bash", {"command": f"touch {made}", "description": "make a file"})
    with ScriptedAnthropic([[shell], [text("Done.")]]) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        env["PI_MESH_AGENT"] = "reviewer"
        run = run_claude(claude_bin, "touch a file", root, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 2 and not server.exhausted_requests
    (got,) = tool_results(server.loop_requests[1]["body"])
    assert got.get("is_error") is True
    assert "the tool bash is denied to agent reviewer" in result_text(got)
    assert not made.exists()


def test_claude_code_uses_the_mesh_mcp_server_and_its_own_claims(project: str, mesh_factory, claude_bin: Path,
                                                                 tmp_path: Path) -> None:
    """With the MCP server installed too, and hooks.toml guarding bash: Claude Code reserves through
    ``mcp__pi-mesh__reserve``, writes inside its own claim (the hook knows it is that agent), is refused a
    shell redirection into alice's claim, and messages alice through ``send_message``."""
    (Path(project) / "hooks.toml").write_text('[defaults]\nguard = ["edit", "write", "bash"]\n')
    root, alice = install_with_alice(project, mesh_factory, "claude-code")

    mine = root / "src" / "api" / "routes.py"
    reserve = tool_use("mcp__pi-mesh__reserve", {"paths": ["src/api/"], "reason": "adding routes"})
    conflict = tool_use("mcp__pi-mesh__reserve", {"paths": ["src/auth/login.py"], "reason": "fix login"})
    write = tool_use("Write", {"file_path": str(mine), "content": "ROUTES = []\n"})
    shell = tool_use("Bash", {"command": "echo hacked >> src/auth/login.py", "description": "append"})
    message = tool_use("mcp__pi-mesh__send_message", {"to": "alice", "text": "please release src/auth/ soon"})
    turns = [[reserve], [conflict], [write], [shell], [message], [text("Done.")]]
    with ScriptedAnthropic(turns) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        # As after a user accepted Claude Code's trust dialog for the project: only then does it honour
        # the project's permissions.allow entry that install wrote for the mesh's tools.
        (Path(env["CLAUDE_CONFIG_DIR"]) / ".claude.json").write_text(
            json.dumps({"projects": {str(root): {"hasTrustDialogAccepted": True}}}))
        run = run_claude(claude_bin, "add routes", root, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 6 and not server.exhausted_requests

    got = [tool_results(server.loop_requests[i]["body"])[0] for i in range(1, 6)]
    assert not got[0].get("is_error") and "reserved src/api/" in result_text(got[0])
    assert got[1].get("is_error") is True and "alice" in result_text(got[1]) and REASON in result_text(got[1])
    assert not got[2].get("is_error"), result_text(got[2])
    assert mine.read_text() == "ROUTES = []\n"
    assert got[3].get("is_error") is True and "reserved by agent alice" in result_text(got[3])
    assert "hacked" not in (root / "src" / "auth" / "login.py").read_text()
    assert not got[4].get("is_error") and "sent to alice" in result_text(got[4])

    inbox = alice.read_inbox()
    assert [m.text for m in inbox] == ["please release src/auth/ soon"]
    sender = inbox[0].sender
    assert sender.startswith("claude-")
    # The PostToolUse hook recorded the allowed write as that agent's activity (the refused shell call ran
    # no tool, so it is not there).
    edits = [e for e in alice.feed() if e["event"] == "edit"]
    assert [(e.get("agent"), e["paths"]) for e in edits] == [(sender, ["src/api/routes.py"])]
    # The MCP server left the mesh when Claude Code ended it, releasing its claim.
    deadline = time.monotonic() + 10
    while sender in {a.name for a in alice.agents()} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sender not in {a.name for a in alice.agents()}
    assert all(r.holder == "alice" for r in alice.reservations())


def test_claude_code_in_a_submodule_is_denied_writing_inside_a_superproject_claim(project: str, mesh_factory,
                                                                                 claude_bin: Path, tmp_path: Path) -> None:
    """Claude Code runs with its cwd in the submodule ``vendor/lib`` (installed there, as a user in that
    checkout would); alice holds ``vendor/`` in the superproject.  Its Write of ``x.c`` lands in the
    superproject's claim: denied, naming alice and her reason, the file unchanged."""
    import subprocess

    env_git = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull}
    lib = tmp_path / "lib-upstream"
    lib.mkdir()
    (lib / "x.c").write_text("int x;\n")
    for args, cwd in ((["init", "-q"], lib), (["add", "x.c"], lib), (["commit", "-q", "-m", "lib"], lib),
                      (["submodule", "add", "-q", str(lib), "vendor/lib"], Path(project))):
        subprocess.run(["git", "-c", "protocol.file.allow=always", *args], cwd=cwd, check=True, capture_output=True,
                       env=env_git)
    sub = Path(project) / "vendor" / "lib"
    installed = run_cli("install", "claude-code", "--no-mcp", cwd=str(sub))
    assert installed.returncode == 0, installed.stderr
    assert (sub / ".claude" / "settings.json").is_file()
    alice = mesh_factory("alice")
    alice.reserve(["vendor/"], REASON, cwd=project)

    target = sub / "x.c"
    read = tool_use("Read", {"file_path": str(target)})
    write = tool_use("Write", {"file_path": str(target), "content": "int x = 1;\n"})
    with ScriptedAnthropic([[read], [write], [text("Blocked; leaving it.")]]) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        run = run_claude(claude_bin, "fix x.c", sub, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 3 and not server.exhausted_requests
    assert target.read_text() == "int x;\n"
    (denied,) = tool_results(server.loop_requests[2]["body"])
    assert denied["tool_use_id"] == write["id"] and denied.get("is_error") is True
    said = result_text(denied)
    assert "reserved by agent alice" in said and REASON in said and "vendor/" in said, said


def test_a_tool_denied_in_hooks_toml_is_not_offered_to_the_model(project: str, mesh_factory, claude_bin: Path,
                                                                 tmp_path: Path) -> None:
    """Installed for the reviewer, whom hooks.toml denies bash: install wrote ``permissions.deny: ["Bash"]``,
    so Claude Code leaves Bash out of the tools it sends the model, and a call to it anyway runs nothing."""
    (Path(project) / "hooks.toml").write_text('[agents.reviewer]\ndeny = ["bash"]\n')
    root, _ = install_with_alice(project, mesh_factory, "claude-code", "--no-mcp", "--agent", "reviewer")
    settings = json.loads((root / ".claude" / "settings.json").read_text())
    assert settings["permissions"]["deny"] == ["Bash"]
    made = root / "made-by-bash.txt"
    shell = tool_use("Bash", {"command": f"touch {made}", "description": "make a file"})
    with ScriptedAnthropic([[shell], [text("Done.")]]) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        run = run_claude(claude_bin, "touch a file", root, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 2 and not server.exhausted_requests
    offered = {t.get("name") for t in server.loop_requests[0]["body"].get("tools", [])}
    assert "Bash" not in offered and {"Read", "Edit", "Write"} <= offered, sorted(offered)
    (got,) = tool_results(server.loop_requests[1]["body"])
    assert got.get("is_error") is True and "Bash" in result_text(got)
    assert not made.exists()
