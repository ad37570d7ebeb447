"""``pi-mesh install claude-code|codex|gemini``: merge, never clobber, idempotent, refuse broken files untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import run_cli

REASON = "refactoring the session tokens"


REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write(path: str, data: object) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data, indent=4))


EXISTING_SETTINGS = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test)"], "deny": ["Read(.env)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./check-bash.sh"}]}],
        "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]}],
    },
}
EXISTING_MCP = {"mcpServers": {"github": {"command": "gh-mcp", "args": ["--stdio"]}}}


def test_claude_install_merges_and_is_idempotent(project):
    settings_path = os.path.join(project, ".claude", "settings.json")
    mcp_path = os.path.join(project, ".mcp.json")
    _write(settings_path, EXISTING_SETTINGS)
    _write(mcp_path, EXISTING_MCP)

    r = run_cli("install", "claude-code", cwd=os.path.join(project, "src"))  # from a subdirectory: git top level
    assert r.returncode == 0, r.stderr
    settings = json.loads(_read(settings_path))
    # everything that was there is still there, in order
    assert settings["model"] == "opus"
    assert settings["permissions"]["deny"] == ["Read(.env)"]
    assert settings["permissions"]["allow"] == ["Bash(npm test)", "mcp__pi-mesh"]
    # the post-call (activity) entry is added next to the user's own PostToolUse group, same command
    user_post, our_post = settings["hooks"]["PostToolUse"]
    assert user_post == EXISTING_SETTINGS["hooks"]["PostToolUse"][0]
    assert our_post["matcher"] == "Edit|Write|MultiEdit|NotebookEdit|Bash"
    assert [h["command"] for h in our_post["hooks"]] == [settings["hooks"]["PreToolUse"][1]["hooks"][0]["command"]]
    pre = settings["hooks"]["PreToolUse"]
    assert pre[0] == EXISTING_SETTINGS["hooks"]["PreToolUse"][0]
    assert pre[1]["matcher"] == "Edit|Write|MultiEdit|NotebookEdit|Bash"
    (ours,) = pre[1]["hooks"]
    assert ours["type"] == "command"
    assert ours["command"].split()[:3] == [sys.executable, "-I", "-S"]  # an absolute interpreter path, no site
    assert ours["command"].endswith("sys.exit(main())' hook claude-code")
    assert os.path.isabs(ours["command"].split()[0])
    assert settings["enabledMcpjsonServers"] == ["pi-mesh"]
    mcp = json.loads(_read(mcp_path))
    assert mcp["mcpServers"]["github"] == EXISTING_MCP["mcpServers"]["github"]
    assert mcp["mcpServers"]["pi-mesh"] == {"command": sys.executable,
                                            "args": ["-m", "pi_mesh_plugin", "mcp", "--harness", "claude-code"]}

    before = (_read(settings_path), _read(mcp_path))
    again = run_cli("install", "claude-code", cwd=project)
    assert again.returncode == 0, again.stderr
    assert (_read(settings_path), _read(mcp_path)) == before


def test_claude_install_with_agent_replaces_its_own_entry(project):
    assert run_cli("install", "claude-code", cwd=project).returncode == 0
    r = run_cli("install", "claude-code", "--agent", "bob", cwd=project)
    assert r.returncode == 0, r.stderr
    settings = json.loads(_read(os.path.join(project, ".claude", "settings.json")))
    (group,) = settings["hooks"]["PreToolUse"]
    (ours,) = group["hooks"]
    assert ours["command"].endswith("hook claude-code --agent bob")
    mcp = json.loads(_read(os.path.join(project, ".mcp.json")))
    assert mcp["mcpServers"]["pi-mesh"]["env"] == {"PI_MESH_AGENT": "bob"}
    bad = run_cli("install", "claude-code", "--agent", "no good", cwd=project)
    assert bad.returncode == 2 and "invalid agent name" in bad.stderr and "Traceback" not in bad.stderr


def test_claude_install_respects_a_disabled_server_and_no_mcp(project):
    settings_path = os.path.join(project, ".claude", "settings.json")
    _write(settings_path, {"disabledMcpjsonServers": ["pi-mesh"]})
    assert run_cli("install", "claude-code", cwd=project).returncode == 0
    assert "enabledMcpjsonServers" not in json.loads(_read(settings_path))

    other = os.path.join(project, "other")
    os.makedirs(other)
    subprocess.run(["git", "init", "-q", other], check=True)
    assert run_cli("install", "claude-code", "--no-mcp", cwd=other).returncode == 0
    assert not os.path.exists(os.path.join(other, ".mcp.json"))
    assert "permissions" not in json.loads(_read(os.path.join(other, ".claude", "settings.json")))


@pytest.mark.parametrize("name,content", [
    (".claude/settings.json", '{"hooks": {"PreToolUse": [}'),
    (".claude/settings.json", '["not", "an", "object"]'),
    (".claude/settings.json", '{"hooks": {"PreToolUse": {"matcher": "Bash"}}}'),
    (".claude/settings.json", '{"hooks": []}'),
    (".mcp.json", "{'single': 'quotes'}"),
    (".mcp.json", '{"mcpServers": ["x"]}'),
])
def test_claude_install_refuses_invalid_files_and_touches_nothing(project, name, content):
    target = os.path.join(project, name)
    _write(target, content)
    sibling = os.path.join(project, ".mcp.json" if name != ".mcp.json" else ".claude/settings.json")
    r = run_cli("install", "claude-code", cwd=project)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert name.split("/")[-1] in r.stderr and "untouched" in r.stderr
    assert _read(target) == content.encode()
    assert not os.path.exists(sibling)  # nothing half-installed


def test_installed_claude_hook_command_runs_and_denies(project, mesh_factory):
    """The command install wrote, run through a shell as Claude Code runs it."""
    assert run_cli("install", "claude-code", cwd=project).returncode == 0
    settings = json.loads(_read(os.path.join(project, ".claude", "settings.json")))
    command = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    mesh_factory("alice").reserve(["src/auth/"], REASON, cwd=project)
    event = {"session_id": "s", "cwd": project, "hook_event_name": "PreToolUse", "tool_name": "Write",
             "tool_input": {"file_path": f"{project}/src/auth/login.py", "content": "x"}, "tool_use_id": "t"}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = "/usr/bin:/bin"  # the interpreter path is absolute: no PATH lookup needed
    r = subprocess.run(["sh", "-c", command], input=json.dumps(event), capture_output=True, text=True, env=env, check=False,
                       cwd=project, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "reserved by agent alice" in json.loads(r.stdout)["hookSpecificOutput"]["permissionDecisionReason"]


# -- Codex and Gemini CLI ---------------------------------------------------------------------

def test_codex_install_merges_hooks_json_and_appends_mcp_table(project):
    hooks_path = os.path.join(project, ".codex", "hooks.json")
    config_path = os.path.join(project, ".codex", "config.toml")
    _write(hooks_path, {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify"}]}]}})
    _write(config_path, 'model = "gpt-5-codex"\n\n[mcp_servers.docs]\ncommand = "docs-mcp"\n')
    r = run_cli("install", "codex", cwd=project)
    assert r.returncode == 0, r.stderr
    data = json.loads(_read(hooks_path))
    assert data["hooks"]["Stop"] == [{"hooks": [{"type": "command", "command": "notify"}]}]
    (group,) = data["hooks"]["PreToolUse"]
    assert group["matcher"] == "apply_patch|Bash"
    assert group["hooks"][0]["command"].endswith("sys.exit(main())' hook codex")
    (post,) = data["hooks"]["PostToolUse"]
    assert post == {"matcher": "apply_patch|Bash", "hooks": group["hooks"]}
    config = tomllib.loads(_read(config_path).decode())
    assert config["model"] == "gpt-5-codex" and config["mcp_servers"]["docs"] == {"command": "docs-mcp"}
    assert config["mcp_servers"]["pi-mesh"] == {"command": sys.executable,
                                                "args": ["-m", "pi_mesh_plugin", "mcp", "--harness", "codex"]}
    before = (_read(hooks_path), _read(config_path))
    assert run_cli("install", "codex", cwd=project).returncode == 0
    assert (_read(hooks_path), _read(config_path)) == before

    _write(config_path, "[mcp_servers\nbroken")
    broken = _read(config_path)
    r = run_cli("install", "codex", cwd=project)
    assert r.returncode != 0 and "not valid TOML" in r.stderr and "Traceback" not in r.stderr
    assert _read(config_path) == broken


def test_gemini_install_merges_settings(project):
    path = os.path.join(project, ".gemini", "settings.json")
    _write(path, {"theme": "GitHub", "hooks": {"BeforeTool": [{"matcher": "run_shell_command", "hooks": [
        {"name": "audit", "type": "command", "command": "./audit.sh"}]}]},
        "mcpServers": {"fs": {"command": "fs-mcp"}}})
    r = run_cli("install", "gemini", "--agent", "gem", cwd=project)
    assert r.returncode == 0, r.stderr
    s = json.loads(_read(path))
    assert s["theme"] == "GitHub" and s["mcpServers"]["fs"] == {"command": "fs-mcp"}
    first, ours = s["hooks"]["BeforeTool"]
    assert first["hooks"][0]["name"] == "audit"
    assert ours["matcher"] == "write_file|replace|run_shell_command"
    assert ours["hooks"][0]["command"].endswith("sys.exit(main())' hook gemini --agent gem")
    assert ours["hooks"][0]["type"] == "command" and ours["hooks"][0]["name"] == "pi-mesh"
    assert s["mcpServers"]["pi-mesh"]["env"] == {"PI_MESH_AGENT": "gem"}
    (after,) = s["hooks"]["AfterTool"]
    assert after["matcher"] == "write_file|replace|run_shell_command"
    assert after["hooks"][0]["command"] == ours["hooks"][0]["command"] and after["hooks"][0]["name"] == "pi-mesh"
    before = _read(path)
    assert run_cli("install", "gemini", "--agent", "gem", cwd=project).returncode == 0
    assert _read(path) == before


def test_matchers_always_include_the_shell_tool_and_config_applies_without_reinstall(project):
    for harness in ("claude-code", "codex", "gemini"):
        r = run_cli("install", harness, "--no-mcp", cwd=project)
        assert r.returncode == 0, r.stderr
    claude = json.loads(_read(os.path.join(project, ".claude", "settings.json")))
    assert claude["hooks"]["PreToolUse"][0]["matcher"] == "Edit|Write|MultiEdit|NotebookEdit|Bash"
    codex = json.loads(_read(os.path.join(project, ".codex", "hooks.json")))
    assert codex["hooks"]["PreToolUse"][0]["matcher"] == "apply_patch|Bash"
    gemini = json.loads(_read(os.path.join(project, ".gemini", "settings.json")))
    assert gemini["hooks"]["BeforeTool"][0]["matcher"] == "write_file|replace|run_shell_command"
    # the reviewer may not use bash: a change of hooks.toml, no re-install, and the installed hook refuses it
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[agents.reviewer]\ndeny = ["bash"]\n')
    command = claude["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    event = {"session_id": "s", "cwd": project, "hook_event_name": "PreToolUse", "tool_name": "Bash",
             "tool_input": {"command": "ls"}}
    r = subprocess.run(command, shell=True, input=json.dumps(event), capture_output=True, text=True, cwd=project,
                       env={**os.environ, "PI_MESH_AGENT": "reviewer"}, timeout=60)
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny" and "bash is denied to agent reviewer" in out["permissionDecisionReason"]
    r = subprocess.run(command, shell=True, input=json.dumps(event), capture_output=True, text=True, cwd=project,
                       env={**os.environ, "PI_MESH_AGENT": "builder"}, timeout=60)
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


def test_doctor_reports_an_installed_matcher_that_misses_a_tool(project):
    assert run_cli("doctor", cwd=project).stdout.strip() == "all good"
    assert run_cli("install", "claude-code", "--no-mcp", cwd=project).returncode == 0
    path = os.path.join(project, ".claude", "settings.json")
    s = json.loads(_read(path))
    s["hooks"]["PreToolUse"][0]["matcher"] = "Edit|Write|MultiEdit|NotebookEdit"  # as an older version installed
    _write(path, s)
    r = run_cli("doctor", cwd=project)
    assert "stale-install" in r.stdout and "misses Bash" in r.stdout and "pi-mesh install claude-code" in r.stdout
    assert run_cli("install", "claude-code", "--no-mcp", cwd=project).returncode == 0
    assert run_cli("doctor", cwd=project).stdout.strip() == "all good"


def test_the_installed_hook_starts_without_site_and_doctor_reports_one_that_no_longer_can(project, tmp_path):
    assert run_cli("install", "claude-code", "--no-mcp", cwd=project).returncode == 0
    path = os.path.join(project, ".claude", "settings.json")
    s = json.loads(_read(path))
    hook = s["hooks"]["PreToolUse"][0]["hooks"][0]
    assert " -I -S -c " in hook["command"] and " hook claude-code" in hook["command"]
    for stale, why in ((sys.executable + " -m pi_mesh_plugin hook claude-code", "the slower way"),
                       (hook["command"].replace(sys.executable, str(tmp_path / "gone" / "python")), "which is gone"),
                       (hook["command"].replace(f'"{REPO_DIR}"', f'"{tmp_path / "moved"}"'), "on its path, which is gone")):
        hook["command"] = stale
        _write(path, s)
        r = run_cli("doctor", cwd=project)
        assert "stale-install" in r.stdout and why in r.stdout and "pi-mesh install claude-code" in r.stdout, r.stdout
        assert run_cli("install", "claude-code", "--no-mcp", cwd=project).returncode == 0  # replaced in place
        assert run_cli("doctor", cwd=project).stdout.strip() == "all good"
        s = json.loads(_read(path))
        assert len(s["hooks"]["PreToolUse"]) == 1
        hook = s["hooks"]["PreToolUse"][0]["hooks"][0]


def test_post_call_entry_is_merged_in_place_and_never_duplicated(project):
    """Older copies of our PostToolUse entry (another --agent) are replaced in place, once; the user's group
    stays as it was; re-installing changes nothing; --no-mcp still installs it."""
    path = os.path.join(project, ".claude", "settings.json")
    old = {"type": "command", "command": f"{sys.executable} -m pi_mesh_plugin hook claude-code --agent old"}
    _write(path, {"hooks": {"PostToolUse": [
        {"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]},
        {"matcher": "Edit", "hooks": [old]},
        {"matcher": "Bash", "hooks": [dict(old)]}]}})
    r = run_cli("install", "claude-code", "--no-mcp", "--agent", "bob", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "PostToolUse" in r.stdout
    post = json.loads(_read(path))["hooks"]["PostToolUse"]
    assert post[0] == {"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]}
    assert post[1]["matcher"] == "Edit|Write|MultiEdit|NotebookEdit|Bash"
    (ours,) = post[1]["hooks"]
    assert ours["command"].endswith("hook claude-code --agent bob")
    assert len(post) == 2  # the duplicate group, now empty, is gone
    before = _read(path)
    assert run_cli("install", "claude-code", "--no-mcp", "--agent", "bob", cwd=project).returncode == 0
    assert _read(path) == before
