"""Shared pieces of the authorship tests: agents as real processes, writes through the real post-call hook."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import PI_MESH, REPO, run_cli

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def clean_env(agent: str | None = None, **extra: str) -> dict:
    # no inherited identity or configuration - but the store a backend-parameterised test selected
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_") or k == "PI_MESH_STORE"}
    env.update(GIT_ENV)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    if agent:
        env["PI_MESH_AGENT"] = agent
    env.update(extra)
    return env


def git(cwd: str, *args: str, agent: str | None = None, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    p = subprocess.run(["git", *args], cwd=cwd, env=clean_env(agent, **extra), capture_output=True, text=True,
                       timeout=60, check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {p.stderr}")
    return p


def cli(cwd: str, *args: str, agent: str | None = None, **extra: str) -> subprocess.CompletedProcess:
    env = clean_env(agent, **extra)
    return subprocess.run([*PI_MESH, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def write(root: str, rel: str, text: str) -> str:
    full = os.path.join(root, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)
    return full


def hook(harness: str, event: dict, agent: str | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PI_MESH, "hook", harness], input=json.dumps(event).encode(), capture_output=True,
                          env=clean_env(agent), cwd=cwd, timeout=60, check=False)


def claude_event(root: str, event: str, tool: str, tool_input: dict, cwd: str | None = None) -> dict:
    ev = {"session_id": "5d1f0c0e-1111-4a4a-9b9b-123456789abc", "transcript_path": "/tmp/x.jsonl",
          "cwd": cwd or root, "permission_mode": "acceptEdits", "hook_event_name": event, "tool_name": tool,
          "tool_input": tool_input, "tool_use_id": "toolu_01"}
    if event == "PostToolUse":
        ev["tool_response"] = {"filePath": tool_input.get("file_path"), "success": True}
    return ev


def agent_writes(root: str, agent: str, rel: str, text: str) -> None:
    """``agent`` writes ``rel`` the way a Claude Code session does: the Write tool, then its PostToolUse hook."""
    full = write(root, rel, text)
    r = hook("claude-code", claude_event(root, "PostToolUse", "Write", {"file_path": full, "content": text}),
             agent=agent)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), r.stderr


def agent_runs(root: str, agent: str, command: str) -> None:
    """``agent`` ran ``command`` through its Bash tool: the PostToolUse hook records what it wrote."""
    subprocess.run(["bash", "-c", command], cwd=root, check=True, env=clean_env())
    ev = claude_event(root, "PostToolUse", "Bash", {"command": command})
    ev["tool_response"] = {"stdout": "", "stderr": "", "interrupted": False}
    r = hook("claude-code", ev, agent=agent)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), r.stderr


def bash_guard(root: str, agent: str | None, command: str) -> dict | None:
    """Ask the Claude Code PreToolUse hook about a Bash call; the deny reason, or ``None`` when allowed."""
    r = hook("claude-code", claude_event(root, "PreToolUse", "Bash", {"command": command}), agent=agent)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    if not r.stdout:
        return None
    return json.loads(r.stdout)["hookSpecificOutput"]


def join(root: str, name: str, owner: int) -> None:
    r = run_cli("join", "--name", name, "--pid", str(owner), "--harness", "claude-code", cwd=root,
                env={"PI_MESH_AGENT": ""})
    assert r.returncode == 0, r.stderr
