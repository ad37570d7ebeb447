"""``pi-mesh install claude-code`` keeps ``permissions.deny`` in step with what hooks.toml denies.

Real ``pi-mesh`` processes on a real git project: the rules are written for the configured agent,
recorded as pi-mesh's, updated by a re-install, never taken from the user, and ``doctor`` reports
an install that no longer matches hooks.toml."""

from __future__ import annotations

import json
import os

from tests.conftest import run_cli


def _settings(project: str) -> dict:
    with open(os.path.join(project, ".claude", "settings.json")) as f:
        return json.load(f)


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _install(project: str, *args: str) -> str:
    r = run_cli("install", "claude-code", "--no-mcp", *args, cwd=project)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_install_denies_the_tools_hooks_toml_denies_to_the_agent(project):
    _write(os.path.join(project, "hooks.toml"), '[agents.reviewer]\ndeny = ["bash", "edit"]\n'
                                                '[agents.builder]\nguard = ["edit", "write", "bash"]\n')
    out = _install(project, "--agent", "reviewer")
    s = _settings(project)
    assert s["permissions"]["deny"] == ["Edit", "MultiEdit", "NotebookEdit", "Bash"]
    assert s["pi-mesh"] == {"deny": ["Edit", "MultiEdit", "NotebookEdit", "Bash"]}
    assert "permissions.deny" in out and "Bash" in out
    # another agent, denied nothing: our rules go, the record with them
    _install(project, "--agent", "builder")
    s = _settings(project)
    assert "permissions" not in s and "pi-mesh" not in s


def test_defaults_apply_without_an_agent_and_patterns_map_to_claude_tools(project):
    _write(os.path.join(project, "hooks.toml"), '[defaults]\ndeny = ["web*", "read"]\n'
                                                '[agents.reviewer]\ndeny = ["bash"]\n')
    _install(project)
    assert _settings(project)["permissions"]["deny"] == ["Read", "WebFetch", "WebSearch"]
    # [mesh] agent names the default agent: its own section applies
    _write(os.path.join(project, "hooks.toml"), '[mesh]\nagent = "reviewer"\n[agents.reviewer]\ndeny = ["bash"]\n')
    _install(project)
    assert _settings(project)["permissions"]["deny"] == ["Bash"]


def test_reinstall_keeps_the_users_own_rules_and_removes_only_ours(project):
    path = os.path.join(project, ".claude", "settings.json")
    _write(path, json.dumps({"permissions": {"deny": ["Read(.env)", "Write"], "allow": ["Bash(npm test)"]}}))
    hooks_toml = os.path.join(project, "hooks.toml")
    _write(hooks_toml, '[defaults]\ndeny = ["bash", "write"]\n')
    _install(project)
    s = _settings(project)
    # the user's Write was there first: it stays theirs (not recorded); Bash is ours
    assert s["permissions"]["deny"] == ["Read(.env)", "Write", "Bash"]
    assert s["pi-mesh"] == {"deny": ["Bash"]}
    before = _read(path)
    _install(project)
    assert _read(path) == before  # idempotent
    _write(hooks_toml, "[defaults]\ndeny = []\n")
    out = _install(project)
    s = _settings(project)
    assert s["permissions"] == {"deny": ["Read(.env)", "Write"], "allow": ["Bash(npm test)"]}
    assert "pi-mesh" not in s and "no longer denies Bash" in out


def test_a_broken_permissions_section_is_refused_and_left_untouched(project):
    path = os.path.join(project, ".claude", "settings.json")
    _write(os.path.join(project, "hooks.toml"), '[defaults]\ndeny = ["bash"]\n')
    for bad in ({"permissions": {"deny": "Bash"}}, {"permissions": ["Bash"]}):
        _write(path, json.dumps(bad))
        r = run_cli("install", "claude-code", "--no-mcp", cwd=project)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "left untouched" in r.stderr and "Traceback" not in r.stderr
        assert json.loads(_read(path)) == bad


def test_doctor_reports_rules_that_no_longer_match_hooks_toml(project):
    hooks_toml = os.path.join(project, "hooks.toml")
    _write(hooks_toml, '[agents.reviewer]\ndeny = ["bash"]\n')
    _install(project, "--agent", "reviewer")
    assert run_cli("doctor", cwd=project).stdout.strip() == "all good"
    # hooks.toml now denies edit too: Claude Code still offers Edit
    _write(hooks_toml, '[agents.reviewer]\ndeny = ["bash", "write"]\n')
    r = run_cli("doctor", cwd=project)
    assert "stale-install" in r.stdout and "denies Write to agent reviewer" in r.stdout, r.stdout
    assert "pi-mesh install claude-code" in r.stdout
    _install(project, "--agent", "reviewer")
    assert run_cli("doctor", cwd=project).stdout.strip() == "all good"
    # hooks.toml lets the reviewer use everything again: our rules now hide tools it may use
    _write(hooks_toml, "[agents.reviewer]\ndeny = []\n")
    r = run_cli("doctor", cwd=project)
    assert "stale-install" in r.stdout and "Write, Bash from an earlier pi-mesh install" in r.stdout, r.stdout
    _install(project, "--agent", "reviewer")
    assert run_cli("doctor", cwd=project).stdout.strip() == "all good"


def test_a_broken_hooks_toml_stops_the_install_in_one_line(project):
    _write(os.path.join(project, "hooks.toml"), '[defaults]\ndeny = "bash"\n')
    r = run_cli("install", "claude-code", "--no-mcp", cwd=project)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "deny" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(project, ".claude", "settings.json"))
