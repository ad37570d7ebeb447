"""A third-party plugin installed as a real distribution, seen through every entry point of the one decision.

The plugin ``nolock`` (a module and a ``.dist-info`` with an entry point in the
group ``pi_mesh``, on ``PYTHONPATH`` of real subprocesses) vetoes writes to
``*.lock`` knowing nothing of bash or git - it looks at ``call.paths`` only -
and registers one tool.  Its veto must hold in ``pi-mesh check``, the Claude
Code / Codex / Gemini hook commands (file tools *and* shell commands), the
Pi sidecar, and a real ``git commit``; its tool must be listed by the
sidecar, the MCP server and ``pi-mesh tool``.  A misspelled ``@hookimpl`` is
a one-line error naming the plugin, and the call is blocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import REPO, run_cli
from tests.test_git_hook import commit, git, head, write
from tests.test_hooks import claude_event, codex_event, gemini_event, hook
from tests.test_sidecar import Sidecar

NOLOCK = '''
from pi_mesh_plugin import hookimpl
from pi_mesh_plugin.records import Block


@hookimpl
def pi_mesh_pre_tool_call(call):
    for path in call.paths:
        if path.endswith(".lock"):
            return Block(tool=call.tool, message=f"BLOCKED by nolock: lock files are written by the package "
                                                  f"manager only ({path})")
    return None


@hookimpl
def pi_mesh_register_tools(register):
    register("lock_policy", "Say which files nolock protects.", {"type": "object", "properties": {}},
             lambda mesh: "*.lock files are the package manager's")
'''

MISSPELLED = NOLOCK.replace("def pi_mesh_pre_tool_call(", "def pi_mesh_pre_tool_cal(")


def make_distribution(site, source: str) -> str:
    site.mkdir(exist_ok=True)
    (site / "pi_mesh_nolock.py").write_text(source)
    info = site / "pi_mesh_nolock-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pi-mesh-nolock\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pi_mesh]\nnolock = pi_mesh_nolock\n")
    (info / "RECORD").write_text("")
    return str(site)


@pytest.fixture
def site(tmp_path):
    return make_distribution(tmp_path / "site", NOLOCK)


@pytest.fixture
def configured(project, site, mesh_factory):
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nplugins = ["mesh", "nolock"]\nguard = ["edit", "write", "bash"]\n')
    mesh_factory("alice", cwd=project).reserve(["src/auth/"], "auth work")
    return project


def env_with(site: str, **extra: str) -> dict:
    return {"PYTHONPATH": site + os.pathsep + REPO, **extra}


def plugin_hook(harness: str, event: dict, site: str, **extra: str) -> subprocess.CompletedProcess:
    return hook(harness, event, env={**env_with(site), **extra}, cwd="/")


def denied(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    out = json.loads(r.stdout)
    spec = out.get("hookSpecificOutput") or {}
    reason = spec.get("permissionDecisionReason") or out.get("reason")
    assert reason and (spec.get("permissionDecision") == "deny" or out.get("decision") == "deny"), out
    return str(reason)


def test_check_and_the_claude_hook_enforce_the_veto_for_files_and_shell_writes(configured, site):
    r = run_cli("check", "poetry.lock", "--agent", "bob", cwd=configured, env=env_with(site))
    assert r.returncode == 3 and "lock files are written by the package manager" in r.stdout, (r.stdout, r.stderr)
    assert run_cli("check", "README.md", "--agent", "bob", cwd=configured, env=env_with(site)).returncode == 0
    write_event = claude_event(configured, "Write", {"file_path": f"{configured}/poetry.lock", "content": "x"})
    assert "nolock" in denied(plugin_hook("claude-code", write_event, site))
    for command in ("echo x > poetry.lock", "cp README.md sub/poetry.lock", "sed -i s/a/b/ poetry.lock"):
        reason = denied(plugin_hook("claude-code", claude_event(configured, "Bash", {"command": command}), site))
        assert "nolock" in reason, command
    # the built-in claims still hold beside the plugin, and harmless commands pass
    assert "reserved by agent alice" in denied(plugin_hook(
        "claude-code", claude_event(configured, "Bash", {"command": "echo x > src/auth/login.py"}), site))
    r = plugin_hook("claude-code", claude_event(configured, "Bash", {"command": "cat poetry.lock; ls"}), site)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["hookSpecificOutput"]  # allowed, to run in the sandbox (alice holds a claim)
    assert "permissionDecision" not in out and out["updatedInput"]["command"].startswith("bwrap ")


def test_codex_and_gemini_hooks_enforce_the_veto(configured, site):
    patch = "*** Begin Patch\n*** Add File: yarn.lock\n+x\n*** End Patch\n"
    assert "nolock" in denied(plugin_hook("codex", codex_event(configured, patch), site))
    r = plugin_hook("gemini", gemini_event(configured, "write_file", {"file_path": "Cargo.lock", "content": "x"}),
                    site)
    assert "nolock" in denied(r)
    r = plugin_hook("gemini", gemini_event(configured, "run_shell_command", {"command": "touch a/b/c.lock"}), site)
    assert "nolock" in denied(r)


def test_the_pi_sidecar_lists_the_tool_and_enforces_the_veto(configured, site):
    s = Sidecar(configured, env=env_with(site))
    try:
        joined = s.ok("hello", name="pi-1", harness="pi", pid=os.getpid())
        assert "lock_policy" in [t["name"] for t in joined["tools"]]
        answer = s.ok("pre_tool_call", tool="bash", input={"command": "npm install > package.lock"}, cwd=configured)
        assert answer["allow"] is False and "nolock" in answer["reason"]
        answer = s.ok("pre_tool_call", tool="write", input={"path": "notes.md", "content": "x"}, cwd=configured)
        assert answer["allow"] is True
        assert "package manager" in s.ok("call_tool", name="lock_policy", arguments={})["text"]
    finally:
        s.close()


def test_the_mcp_server_and_pi_mesh_tool_list_the_tool(configured, site):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    env.update(env_with(site, PI_MESH_AGENT="carol"))
    params = StdioServerParameters(command=sys.executable, args=["-m", "pi_mesh_plugin", "mcp", "--harness", "test"],
                                   env=env, cwd=configured)

    async def main() -> list[str]:
        async with stdio_client(params) as (read, write_), ClientSession(read, write_) as session:
            await session.initialize()
            return [t.name for t in (await session.list_tools()).tools]

    assert "lock_policy" in anyio.run(main)
    r = run_cli("tool", "lock_policy", "--agent", "dave", cwd=configured, env=env_with(site))
    assert r.returncode == 0 and "package manager" in r.stdout, r.stderr


def test_a_git_commit_of_a_vetoed_path_is_refused(configured, site):
    write(configured, "README.md")
    git(configured, "add", "-A")
    git(configured, "commit", "-q", "-m", "initial")
    assert run_cli("install", "git-hook", cwd=configured).returncode == 0
    before = head(configured)
    write(configured, "deps/poetry.lock")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = site  # git() below puts the repository in front of it
    try:
        p = commit(configured, agent="bob")
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)
    assert p.returncode == 1 and "nolock" in p.stderr and "deps/poetry.lock" in p.stderr, p.stderr
    assert head(configured) == before


def test_a_misspelled_hookimpl_is_a_one_line_error_and_blocks(project, tmp_path):
    site = make_distribution(tmp_path / "bad", MISSPELLED)
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nplugins = ["mesh", "nolock"]\non_store_error = "allow"\n')
    reason = denied(plugin_hook("claude-code", claude_event(project, "Write", {"file_path": f"{project}/a.py"}), site))
    assert "plugin nolock" in reason and "pi_mesh_pre_tool_cal" in reason and "\n" not in reason
    r = run_cli("check", "a.py", cwd=project, env=env_with(site))
    assert r.returncode == 3 and "plugin nolock" in r.stdout and "Traceback" not in r.stderr


def test_trace_names_each_plugin_and_its_answer(configured, site):
    r = plugin_hook("claude-code", claude_event(configured, "Write", {"file_path": f"{configured}/a.lock"}), site,
                    PI_MESH_TRACE_PLUGINS="1")
    lines = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("pi-mesh trace:")]
    assert any("[nolock]" in ln and "BLOCK" in ln for ln in lines), r.stderr
    r = plugin_hook("claude-code", claude_event(configured, "Write", {"file_path": f"{configured}/a.py"}), site,
                    PI_MESH_TRACE_PLUGINS="1")
    lines = [ln for ln in r.stderr.decode().splitlines() if ln.startswith("pi-mesh trace:")]
    assert {ln.split("[")[1].split("]")[0] for ln in lines} == {"nolock", "mesh"}, r.stderr


def test_with_a_plugin_the_hook_imports_neither_pluggy_nor_importlib_metadata(configured, site):
    event = claude_event(configured, "Write", {"file_path": f"{configured}/a.py"})
    plugin_hook("claude-code", event, site)  # fills the entry-point cache
    r = hook("claude-code", event, env=env_with(site, PI_MESH_TRACE_PLUGINS="1"), cwd="/",
             flags=("-X", "importtime"))
    assert r.returncode == 0 and r.stdout == b""
    assert b"[nolock] write" in r.stderr  # the plugin was asked (importlib.import_module is not in -X importtime)
    mods = {ln.split("|")[-1].strip() for ln in r.stderr.decode().splitlines() if ln.startswith("import time:")}
    assert not {m for m in mods if m.split(".")[0] in ("pluggy", "click")}  # (hooks.toml is too new to be cached)
    assert "importlib.metadata" not in mods
