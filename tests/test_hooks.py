"""``pi-mesh hook claude-code|codex|gemini``: recorded-format inputs of each harness, run as real processes.

Another agent (alice, owned by this test process) holds ``src/auth/``.  Every
case runs ``python -m pi_mesh_plugin hook …`` with the harness's JSON on stdin
and checks the exact wire answer: nothing (allow), the harness's deny object
(block), or exit 2 with one line on stderr (malformed input / internal error).
Never a traceback, never a silent allow.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PI_MESH, REPO

REASON = "refactoring the session tokens"
FORBIDDEN_ON_FAST_PATH = ("click", "pluggy", "jsonschema", "filelock", "dataclasses", "typing", "tomllib")


def hook(harness: str, payload: object, *, args: tuple[str, ...] = (), env: dict | None = None,
         cwd: str | None = None, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the hook in a real process; ``payload`` is JSON-encoded unless it is bytes already."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = REPO + os.pathsep + full.get("PYTHONPATH", "")
    cmd = [PI_MESH[0], *flags, *PI_MESH[1:], "hook", harness, *args]
    return subprocess.run(cmd, input=data, capture_output=True, env=full, cwd=cwd, timeout=60, check=False)


def claude_event(project: str, tool: str, tool_input: dict, cwd: str | None = None) -> dict:
    return {"session_id": "5d1f0c0e-1111-4a4a-9b9b-123456789abc",
            "transcript_path": "/root/.claude/projects/x/5d1f0c0e.jsonl", "cwd": cwd or project,
            "permission_mode": "acceptEdits", "hook_event_name": "PreToolUse", "tool_name": tool,
            "tool_input": tool_input, "tool_use_id": "toolu_01ABCDEF"}


def codex_event(project: str, patch: str, cwd: str | None = None) -> dict:
    return {"session_id": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "transcript_path": None, "cwd": cwd or project,
            "hook_event_name": "PreToolUse", "model": "gpt-5-codex", "permission_mode": "default",
            "turn_id": "turn-1", "tool_name": "apply_patch", "tool_input": {"command": patch},
            "tool_use_id": "call_abc123"}


def gemini_event(project: str, tool: str, tool_input: dict) -> dict:
    return {"session_id": "gem-1", "transcript_path": "/root/.gemini/tmp/x/chats/session.json", "cwd": project,
            "hook_event_name": "BeforeTool", "timestamp": "2026-11-25T01:00:00.000Z", "tool_name": tool,
            "tool_input": tool_input}


@pytest.fixture
def held(project, mesh_factory):
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], REASON, cwd=project)
    return alice


def assert_claude_deny(r: subprocess.CompletedProcess, *, holder: str = "alice") -> str:
    assert r.returncode == 0, r.stderr
    assert b"Traceback" not in r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"hookSpecificOutput"}
    spec = out["hookSpecificOutput"]
    assert spec["hookEventName"] == "PreToolUse" and spec["permissionDecision"] == "deny"
    reason = spec["permissionDecisionReason"]
    assert f"reserved by agent {holder}" in reason and REASON in reason
    return reason


def assert_allow(r: subprocess.CompletedProcess) -> None:
    assert (r.returncode, r.stdout) == (0, b""), (r.returncode, r.stdout, r.stderr)
    assert r.stderr == b""


def assert_error_block(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == b""
    err = r.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(("BLOCKED by pi-mesh", "pi-mesh hook:")), err
    for w in words:
        assert w in err, err
    return err


# -- Claude Code ----------------------------------------------------------------------------

@pytest.mark.parametrize("tool,key", [("Write", "file_path"), ("Edit", "file_path"), ("MultiEdit", "file_path"),
                                      ("NotebookEdit", "notebook_path")])
def test_claude_file_tools_in_a_claim_are_denied(project, held, tool, key):
    path = os.path.join(project, "src", "auth", "login.py" if key == "file_path" else "nb.ipynb")
    reason = assert_claude_deny(hook("claude-code", claude_event(project, tool, {key: path, "content": "x"})))
    assert "src/auth/" in reason
    assert held.feed()[-1]["event"] == "blocked"


def test_claude_write_elsewhere_is_allowed_silently(project, held):
    assert_allow(hook("claude-code", claude_event(project, "Write", {"file_path": f"{project}/README.md",
                                                                     "content": "hi"})))
    assert_allow(hook("claude-code", claude_event(project, "Write", {"file_path": "/etc/outside-project"})))


def test_claude_the_holder_itself_may_write(project, held):
    event = claude_event(project, "Edit", {"file_path": f"{project}/src/auth/login.py", "old_string": "a",
                                           "new_string": "b"})
    assert_allow(hook("claude-code", event, env={"PI_MESH_AGENT": "alice"}))
    assert_allow(hook("claude-code", event, args=("--agent", "alice")))
    assert_claude_deny(hook("claude-code", event, env={"PI_MESH_AGENT": "bob"}))


def test_claude_relative_spellings_and_subdirectory_cwd(project, held):
    sub = os.path.join(project, "src")
    for p in ("auth/login.py", "./auth/../auth/new.py", f"{project}//src/auth/x.py"):
        assert_claude_deny(hook("claude-code", claude_event(project, "Write", {"file_path": p}, cwd=sub)))


def test_claude_bash_is_guarded_by_default_and_sandboxed(project, held):
    event = claude_event(project, "Bash", {"command": "echo hacked > src/auth/login.py", "description": "x"})
    assert_claude_deny(hook("claude-code", event))
    # what the parser lets through runs in the sandbox: the same input, the command wrapped (no permission
    # decision: Claude Code's own permission check still runs)
    r = hook("claude-code", claude_event(project, "Bash", {"command": "ls src/auth", "description": "list"}))
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert set(out) == {"hookEventName", "updatedInput"} and out["hookEventName"] == "PreToolUse"
    assert out["updatedInput"]["description"] == "list"
    assert out["updatedInput"]["command"].startswith("bwrap ") and "'ls src/auth'" in out["updatedInput"]["command"]
    os.makedirs(os.path.join(project, ".pi"), exist_ok=True)
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write"]\n')
    assert_allow(hook("claude-code", event))  # bash unguarded on purpose: neither parsed nor sandboxed


def test_a_tool_denied_by_config_is_refused(project, held):
    os.makedirs(os.path.join(project, ".pi"), exist_ok=True)
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write('[agents.reviewer]\ndeny = ["edit", "write"]\n')
    r = hook("claude-code", claude_event(project, "Write", {"file_path": f"{project}/README.md"}),
             env={"PI_MESH_AGENT": "reviewer"})
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny" and "denied to agent reviewer" in out["permissionDecisionReason"]


def test_plugins_other_than_mesh_go_through_the_plugin_host(project, held):
    os.makedirs(os.path.join(project, ".pi"), exist_ok=True)
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write('[defaults]\nplugins = ["mesh", "no-such-plugin"]\n')
    r = hook("claude-code", claude_event(project, "Write", {"file_path": f"{project}/README.md"}))
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr
    out = json.loads(r.stdout)["hookSpecificOutput"]  # a configuration error blocks, whatever on_store_error says
    assert out["permissionDecision"] == "deny" and "misconfigured" in out["permissionDecisionReason"]
    assert "no installed plugin named no-such-plugin" in out["permissionDecisionReason"]


# -- Codex ----------------------------------------------------------------------------------

@pytest.mark.parametrize("patch", [
    "*** Begin Patch\n*** Update File: src/auth/login.py\n@@ def login():\n-    pass\n+    return 1\n*** End Patch\n",
    "*** Begin Patch\n*** Add File: src/auth/tokens.py\n+TOKENS = {}\n*** End Patch\n",
    "*** Begin Patch\n*** Delete File: src/auth/login.py\n*** End Patch\n",
    "*** Begin Patch\n*** Update File: README.md\n*** Move to: src/auth/readme.md\n@@\n-a\n+b\n*** End Patch\n",
    "*** Begin Patch\n*** Add File: docs/a.md\n+a\n*** Update File: src/auth/login.py\n@@\n-x\n+y\n*** End Patch",
    "*** Begin Patch\r\n*** Update File: src/auth/login.py\r\n@@\r\n-x\r\n+y\r\n*** End Patch\r\n",
])
def test_codex_apply_patch_touching_a_claim_is_denied(project, held, patch):
    assert_claude_deny(hook("codex", codex_event(project, patch)))


def test_codex_paths_are_relative_to_cwd(project, held):
    patch = "*** Begin Patch\n*** Update File: auth/login.py\n@@\n-x\n+y\n*** End Patch\n"
    assert_claude_deny(hook("codex", codex_event(project, patch, cwd=os.path.join(project, "src"))))
    assert_allow(hook("codex", codex_event(project, patch)))  # <project>/auth/login.py is free


def test_codex_patch_elsewhere_is_allowed(project, held):
    patch = "*** Begin Patch\n*** Add File: docs/notes.md\n+hello\n*** Update File: README.md\n@@\n-a\n+b\n*** End Patch\n"
    assert_allow(hook("codex", codex_event(project, patch)))


def test_codex_bash(project, held):
    event = {**codex_event(project, ""), "tool_name": "Bash", "tool_input": {"command": "rm -rf src/auth"}}
    assert_claude_deny(hook("codex", event))  # bash is guarded by default
    # Codex cannot rewrite a call's input: what the parser lets through runs as it is (no sandbox)
    assert_allow(hook("codex", {**event, "tool_input": {"command": "ls src/auth"}}))
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write"]\n')
    assert_allow(hook("codex", event))


# -- Gemini CLI -----------------------------------------------------------------------------

@pytest.mark.parametrize("tool,tool_input", [
    ("write_file", {"file_path": "src/auth/login.py", "content": "x"}),
    ("replace", {"file_path": "/PROJECT/src/auth/login.py", "old_string": "pass", "new_string": "return 1"}),
])
def test_gemini_write_in_a_claim_prints_only_the_deny_decision(project, held, tool, tool_input):
    tool_input = {k: v.replace("/PROJECT", project) for k, v in tool_input.items()}
    r = hook("gemini", gemini_event(project, tool, tool_input))
    assert r.returncode == 0 and r.stderr == b""
    out = json.loads(r.stdout)
    assert set(out) == {"decision", "reason"} and out["decision"] == "deny"
    assert "reserved by agent alice" in out["reason"] and REASON in out["reason"]
    assert r.stdout.strip().count(b"\n") == 0  # the JSON object and nothing else


def test_gemini_allowed_and_shell(project, held):
    assert_allow(hook("gemini", gemini_event(project, "write_file", {"file_path": "docs/x.md", "content": "x"})))
    assert_allow(hook("gemini", gemini_event(project, "read_file", {"file_path": "src/auth/login.py"})))
    r = hook("gemini", gemini_event(project, "run_shell_command", {"command": "sed -i s/a/b/ src/auth/login.py"}))
    assert json.loads(r.stdout)["decision"] == "deny"  # bash is guarded by default
    r = hook("gemini", gemini_event(project, "run_shell_command", {"command": "ls src/auth", "dir_path": "."}))
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "BeforeTool" and out["tool_input"]["dir_path"] == "."
    assert out["tool_input"]["command"].startswith("bwrap ") and "'ls src/auth'" in out["tool_input"]["command"]


# -- malformed input and errors: block, one line, never a traceback -------------------------

@pytest.mark.parametrize("harness,payload,words", [
    ("claude-code", b"", ["no hook input"]),
    ("claude-code", b"{not json", ["not JSON"]),
    ("claude-code", b"[1, 2]", ["JSON list"]),
    ("claude-code", {"tool_name": "Write", "tool_input": "src/auth/login.py"}, ["tool_input must be an object"]),
    ("claude-code", {"tool_name": "Write", "tool_input": {}}, ["file_path"]),
    ("claude-code", {"tool_name": "Write", "tool_input": {"file_path": 7}}, ["file_path"]),
    ("claude-code", {"tool_name": "Write", "tool_input": {"file_path": "a\u0000b"}}, ["file_path"]),
    ("claude-code", {"hook_event_name": "Notification", "tool_name": "Write",
                     "tool_input": {"file_path": "x"}}, ["Notification"]),
    ("claude-code", {"tool_input": {"file_path": "x"}}, ["tool_name"]),
    ("claude-code", {"cwd": "relative/dir", "tool_name": "Write", "tool_input": {"file_path": "x"}}, ["cwd"]),
    ("codex", {"tool_name": "apply_patch", "tool_input": {"command": "just text"}}, ["names no file"]),
    ("codex", {"tool_name": "apply_patch", "tool_input": {}}, ["apply_patch"]),
    ("gemini", {"hook_event_name": "BeforeTool", "tool_name": "write_file", "tool_input": {"content": "x"}},
     ["file_path"]),
    ("gemini", {"hook_event_name": "AfterModel", "tool_name": "write_file",
                "tool_input": {"file_path": "x"}}, ["AfterModel"]),
    ("gemini", b"\xff\xfe garbage", ["not JSON"]),
])
def test_malformed_input_blocks_with_one_line(project, held, harness, payload, words):
    assert_error_block(hook(harness, payload, cwd=project), "malformed hook input", *words)


def test_bad_arguments_and_identity_block(project, held):
    event = claude_event(project, "Write", {"file_path": f"{project}/README.md"})
    assert_error_block(hook("vscode", event), "unknown harness")
    assert_error_block(hook("claude-code", event, args=("--frobnicate",)), "unexpected argument")
    assert_error_block(hook("claude-code", event, env={"PI_MESH_AGENT": "not a name"}), "invalid agent name")
    r = subprocess.run([*PI_MESH, "hook"], capture_output=True, input=b"", timeout=60, check=False,
                       env={**os.environ, "PYTHONPATH": REPO})
    assert_error_block(r, "usage")


def test_invalid_config_blocks_and_fail_open_allows_with_a_warning(project, held):
    event = claude_event(project, "Write", {"file_path": f"{project}/README.md"})
    cfg = os.path.join(project, "hooks.toml")
    with open(cfg, "w") as f:
        f.write("[defaults\nplugins = 3\n")
    assert_error_block(hook("claude-code", event), "hooks.toml")
    with open(cfg, "w") as f:
        f.write('[defaults]\non_store_error = "allow"\n')
    r = hook("claude-code", b"{broken", cwd=project)
    assert (r.returncode, r.stdout) == (0, b"")
    err = r.stderr.decode()
    assert "warning" in err and "ALLOWED" in err and "Traceback" not in err  # allowed, but never silently
    assert_claude_deny(hook("claude-code", claude_event(project, "Write",
                                                        {"file_path": f"{project}/src/auth/login.py"})))


def test_unreachable_store_blocks(project, held):
    """The mesh cannot be read (a PostgreSQL store nobody listens for): the write is blocked, not allowed."""
    event = claude_event(project, "Write", {"file_path": f"{project}/README.md"})
    r = hook("claude-code", event, env={"PI_MESH_STORE": "postgresql://postgres@127.0.0.1:9/test?connect_timeout=3"})
    assert b"Traceback" not in r.stderr
    if r.returncode == 0:
        reason = json.loads(r.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
        assert "BLOCKED" in reason
    else:
        assert_error_block(r)


# -- fuzzing: whatever arrives, the answer is a deny, an allow or an error - never a traceback ----

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=12)
_FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _claimed_file_event(project: str, harness: str, name: str, extra: dict) -> dict:
    path = f"{project}/src/auth/f{abs(hash(name)) % 1000}.py"
    if harness == "gemini":
        return {**extra, **gemini_event(project, "write_file", {"file_path": path})}
    if harness == "codex":
        return {**extra, **codex_event(project, f"*** Begin Patch\n*** Add File: {path}\n+x\n*** End Patch\n")}
    return {**extra, **claude_event(project, "Write", {"file_path": path, "content": name})}


@_FUZZ
@given(harness=st.sampled_from(["claude-code", "codex", "gemini"]), value=_json)
def test_fuzzed_json_never_traceback(project, held, harness, value):
    r = hook(harness, value, cwd=project)
    assert b"Traceback" not in r.stderr
    assert r.returncode in (0, 2)
    if r.returncode == 0 and r.stdout:
        json.loads(r.stdout)
    if r.returncode == 2:
        assert r.stdout == b"" and len(r.stderr.strip().splitlines()) == 1


@_FUZZ
@given(harness=st.sampled_from(["claude-code", "codex", "gemini"]), name=st.text(max_size=10),
       extra=st.dictionaries(st.sampled_from(["session_id", "transcript_path", "model", "x", "permission_mode"]),
                             _json, max_size=3),
       drop=st.sampled_from([None, "tool_name", "tool_input", "cwd", "hook_event_name"]),
       garble=st.sampled_from([None, "tool_name", "tool_input", "cwd"]), junk=_json)
def test_fuzzed_write_into_a_claim_is_never_silently_allowed(project, held, harness, name, extra, drop, garble,
                                                             junk):
    event = _claimed_file_event(project, harness, name, extra)
    if drop:
        event.pop(drop)
    if garble:
        event[garble] = junk
    r = hook(harness, event, cwd=project)
    assert b"Traceback" not in r.stderr
    intact = drop in (None, "cwd", "hook_event_name") and garble is None
    if intact:  # still a write into src/auth/: must be denied
        assert r.returncode == 0 and r.stdout, r.stderr
        out = json.loads(r.stdout)
        decision = out.get("decision") or out["hookSpecificOutput"]["permissionDecision"]
        assert decision == "deny"
    elif r.returncode == 0 and not r.stdout:
        # allowed: only when the garbling made it a call that writes nothing guarded (another tool name)
        assert garble == "tool_name" and isinstance(junk, str) and junk, (event, r.stderr)
    else:
        assert r.returncode in (0, 2)


@_FUZZ
@given(data=st.binary(max_size=200))
def test_fuzzed_bytes_block_or_error(project, held, data):
    r = hook("claude-code", data, cwd=project)
    assert b"Traceback" not in r.stderr
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        assert r.returncode == 2 and r.stdout == b""


# -- what the hook path imports: tests/test_import_discipline.py ------------------------------------

def _imported(stderr: bytes) -> set[str]:
    mods = set()
    for line in stderr.decode().splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip())
    return mods


# -- the post-call side: PostToolUse / AfterTool feed the agent's activity ------------------------

def post_event(harness: str, project: str, tool: str, tool_input: dict, response: object = None) -> dict:
    """A recorded post-call event: the pre-call shape of the harness plus ``tool_response``."""
    if harness == "gemini":
        ev = gemini_event(project, tool, tool_input)
        ev["hook_event_name"] = "AfterTool"
        ev["tool_response"] = response if response is not None else {"llmContent": "ok", "returnDisplay": "ok"}
        return ev
    if harness == "codex":
        ev = codex_event(project, "")
        ev.update(tool_name=tool, tool_input=tool_input)
    else:
        ev = claude_event(project, tool, tool_input)
    ev["hook_event_name"] = "PostToolUse"
    ev["tool_response"] = response if response is not None else {"stdout": "", "stderr": "", "interrupted": False}
    return ev


def assert_silent(r: subprocess.CompletedProcess) -> None:
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), (r.returncode, r.stdout, r.stderr)


def assert_warned(r: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 0, nothing on stdout, one line on stderr: the harness's call is never failed."""
    assert (r.returncode, r.stdout) == (0, b""), (r.returncode, r.stdout, r.stderr)
    err = r.stderr.decode()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("pi-mesh: warning: activity not recorded"), err
    for w in words:
        assert w in err, err


def own_events(m, kind: str, agent: str) -> list[dict]:
    return [e for e in m.feed() if e["event"] == kind and e.get("agent") == agent]


def test_claude_post_tool_use_records_edits_commits_and_test_runs(project, mesh_factory):
    bob = mesh_factory("bob")
    env = {"PI_MESH_AGENT": "bob"}
    util = f"{project}/src/util.py"
    assert_silent(hook("claude-code", post_event("claude-code", project, "Edit", {
        "file_path": util, "old_string": "a", "new_string": "b"}, {"filePath": util, "success": True}), env=env))
    a = bob.me().activity
    assert (a["edits"], a["commits"], a["test_runs"]) == (1, 0, 0)
    assert a["files_touched"] == ["src/util.py"] and a["last"] == "edit src/util.py"
    assert own_events(bob, "edit", "bob")[-1]["paths"] == ["src/util.py"]

    assert_silent(hook("claude-code", post_event("claude-code", project, "Bash", {
        "command": "pytest -q tests", "description": "run the tests"}), env=env))
    assert_silent(hook("claude-code", post_event("claude-code", project, "Bash", {
        "command": "git commit -m x"}), env=env, cwd=project))
    a = bob.me().activity
    assert (a["edits"], a["commits"], a["test_runs"]) == (1, 1, 1)
    assert a["last"] == "commit: git commit -m x"
    assert own_events(bob, "test", "bob")[-1]["command"] == "pytest -q tests"
    assert own_events(bob, "commit", "bob")[-1]["command"] == "git commit -m x"

    # A write the tool itself reports as failed is not an edit.
    assert_silent(hook("claude-code", post_event("claude-code", project, "Write", {
        "file_path": f"{project}/other.py", "content": "x"}, {"filePath": "other.py", "success": False}), env=env))
    a = bob.me().activity
    assert a["edits"] == 1 and "other.py" not in a["files_touched"] and a["last"].endswith("(failed)")


def test_codex_and_gemini_post_call_events_record_edits(project, mesh_factory):
    bob = mesh_factory("bob")
    patch = "*** Begin Patch\n*** Add File: docs/a.md\n+a\n*** Update File: src/util.py\n@@\n-x\n+y\n*** End Patch\n"
    assert_silent(hook("codex", post_event("codex", project, "apply_patch", {"command": patch}, "Success."),
                       args=("--agent", "bob")))
    assert_silent(hook("codex", post_event("codex", project, "Bash", {"command": ["npm", "test"]}),
                       args=("--agent", "bob")))
    a = bob.me().activity
    assert (a["edits"], a["test_runs"]) == (1, 1) and a["files_touched"] == ["docs/a.md", "src/util.py"]

    assert_silent(hook("gemini", post_event("gemini", project, "write_file", {"file_path": "notes.md", "content": "x"}),
                       args=("--agent", "bob")))
    failed = {"llmContent": "", "returnDisplay": "", "error": {"message": "permission denied"}}
    assert_silent(hook("gemini", post_event("gemini", project, "replace", {"file_path": "src/x.py"}, failed),
                       args=("--agent", "bob")))
    assert_silent(hook("gemini", post_event("gemini", project, "run_shell_command",
                                            {"command": "git -C . commit -qm wip"}), args=("--agent", "bob")))
    a = bob.me().activity
    assert (a["edits"], a["commits"]) == (2, 1)
    assert a["files_touched"] == ["docs/a.md", "src/util.py", "notes.md"]


def test_post_call_identity_unnamed_records_nothing_own_mcp_agent_records(project, mesh_factory):
    watcher = mesh_factory(None, join=False)
    event = post_event("claude-code", project, "Write", {"file_path": f"{project}/src/new.py", "content": "x"})
    assert_silent(hook("claude-code", event))
    assert own_events(watcher, "edit", "bob") == [] and not [e for e in watcher.feed() if e["event"] == "edit"]

    # An agent joined by this harness (as its `pi-mesh mcp` does) whose process is an ancestor of the hook:
    # the hook is that agent.  The same agent joined as another harness is not.
    other = mesh_factory("gem", join=False)
    other.join(harness="gemini", pid=os.getpid())
    assert_silent(hook("claude-code", event))
    assert other.me().activity in (None, {}) or other.me().activity.get("edits", 0) == 0
    mine = mesh_factory("claude-1234", join=False)
    mine.join(harness="claude-code", pid=os.getpid())
    assert_silent(hook("claude-code", event))
    assert mine.me().activity["files_touched"] == ["src/new.py"]
    assert [e["paths"] for e in own_events(mine, "edit", "claude-1234")] == [["src/new.py"]]


@pytest.mark.parametrize("harness,payload,words", [
    ("claude-code", {"hook_event_name": "PostToolUse", "tool_name": "Write", "tool_input": {}}, ["file_path"]),
    ("claude-code", {"hook_event_name": "PostToolUse", "tool_input": {"file_path": "x"}}, ["tool_name"]),
    ("claude-code", {"hook_event_name": "PostToolUse", "cwd": "rel", "tool_name": "Bash",
                     "tool_input": {"command": "ls"}}, ["cwd"]),
    ("codex", {"hook_event_name": "PostToolUse", "tool_name": "apply_patch", "tool_input": {"command": "x"}},
     ["names no file"]),
    ("gemini", {"hook_event_name": "AfterTool", "tool_name": "write_file", "tool_input": []}, ["tool_input"]),
])
def test_malformed_post_call_input_never_fails_the_harness(project, mesh_factory, harness, payload, words):
    bob = mesh_factory("bob")
    assert_warned(hook(harness, payload, env={"PI_MESH_AGENT": "bob"}, cwd=project), "malformed hook input", *words)
    assert bob.me().activity in (None, {})


def test_post_call_errors_never_fail_the_harness(project, mesh_factory):
    mesh_factory("bob")
    event = post_event("claude-code", project, "Bash", {"command": "pytest"})
    assert_warned(hook("claude-code", event, env={"PI_MESH_AGENT": "not a name"}), "invalid agent name")
    os.makedirs(os.path.join(project, ".pi"), exist_ok=True)
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write("[defaults\nbroken")
    assert_warned(hook("claude-code", event, env={"PI_MESH_AGENT": "bob"}))


def test_post_call_with_other_plugins_goes_through_the_plugin_host(project, mesh_factory):
    bob = mesh_factory("bob")
    os.makedirs(os.path.join(project, ".pi"), exist_ok=True)
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write('[defaults]\nplugins = ["mesh", "no-such-plugin"]\n')
    r = hook("claude-code", post_event("claude-code", project, "Bash", {"command": "make test"}),
             env={"PI_MESH_AGENT": "bob"})
    assert_warned(r, "no-such-plugin")  # the host refuses an unknown plugin: one line, exit 0
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write('[defaults]\nplugins = ["mesh"]\n')
    assert_silent(hook("claude-code", post_event("claude-code", project, "Bash", {"command": "make test"}),
                       env={"PI_MESH_AGENT": "bob"}))
    assert bob.me().activity["test_runs"] == 1


# -- the installed command: -I -S with explicit paths ----------------------------------------------

def _installed(harness: str, *, flags: tuple[str, ...] = ()) -> list[str]:
    from pi_mesh_plugin.adapters.installers import launch

    argv = launch.argv(["hook", harness])
    return [argv[0], *flags, *argv[1:]]


def test_the_installed_command_decides_like_the_module(project, mesh_factory):
    mesh_factory("alice").reserve(["src/auth/"], "auth rewrite")
    for i in range(3):
        mesh_factory(f"holder{i}").reserve([f"area{i}/{j}.py" for j in range(30)], "busy", cwd=project)
    time.sleep(0.1)
    free = json.dumps(claude_event(project, "Write", {"file_path": f"{project}/src/free.py"})).encode()
    held = json.dumps(claude_event(project, "Write", {"file_path": f"{project}/src/auth/login.py"})).encode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # ignored under -I: the byte-code cache is still used
    run = lambda cmd, data: subprocess.run(cmd, input=data, capture_output=True, env=env, cwd="/", timeout=60)
    assert (run(_installed("claude-code"), free).returncode, run(_installed("claude-code"), free).stdout) == (0, b"")
    blocked = run(_installed("claude-code"), held)
    assert blocked.returncode == 0 and b'"deny"' in blocked.stdout and b"alice" in blocked.stdout
    # what it imports: tests/test_import_discipline.py


def test_the_installed_command_honours_pythonpath_first(project, tmp_path):
    shadow = tmp_path / "shadow" / "pi_mesh_plugin"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    (shadow / "__main__.py").write_text("def main():\n    print('shadowed')\n    return 7\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    r = subprocess.run(_installed("claude-code"), input=b"{}", capture_output=True, env=env, cwd=project, timeout=60)
    assert (r.returncode, r.stdout.strip()) == (7, b"shadowed")  # $PYTHONPATH first, as python itself does


def test_a_json_py_in_the_project_cannot_shadow_the_standard_library(project):
    with open(os.path.join(project, "json.py"), "w") as f:
        f.write("raise SystemExit('shadowed json')\n")
    with open(os.path.join(project, "os.py"), "w") as f:
        f.write("raise SystemExit('shadowed os')\n")
    data = json.dumps(claude_event(project, "Write", {"file_path": f"{project}/src/free.py"})).encode()
    r = subprocess.run(_installed("claude-code"), input=data, capture_output=True, cwd=project, timeout=60)
    assert (r.returncode, r.stdout) == (0, b""), r.stderr
