"""Proves the offline Claude Code rig: the real CLI, driven by a scripted model,
runs a project PreToolUse hook that denies a Write, and the deny reason reaches
the model in the next request's tool_result."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from claude_rig import CLAUDE_CODE_VERSION, offline_env, run_claude
from scripted_anthropic import ScriptedAnthropic, result_text, text, tool_results, tool_use

pytestmark = pytest.mark.timeout(300)

DENY_REASON = "scripted-guard: blocked paths are reserved by alice (refactor)"

HOOK_SCRIPT = f"""\
import json, sys
data = json.load(sys.stdin)
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(data) + "\\n")
path = (data.get("tool_input") or {{}}).get("file_path") or ""
if "blocked" in path:
    print(json.dumps({{"hookSpecificOutput": {{"hookEventName": "PreToolUse",
                                              "permissionDecision": "deny",
                                              "permissionDecisionReason": {DENY_REASON!r}}}}}))
"""


@pytest.mark.parametrize("permission_mode", ["acceptEdits", "bypassPermissions"])
def test_pretooluse_hook_denies_write_and_reason_reaches_model(tmp_path: Path, claude_bin: Path, permission_mode: str) -> None:
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    hook = tmp_path / "guard_hook.py"
    hook.write_text(HOOK_SCRIPT)
    hook_log = tmp_path / "hook_stdin.jsonl"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(hook))} {shlex.quote(str(hook_log))}"
    settings = {"hooks": {"PreToolUse": [{"matcher": "Edit|Write|MultiEdit|NotebookEdit",
                                          "hooks": [{"type": "command", "command": command}]}]}}
    (project / ".claude" / "settings.json").write_text(json.dumps(settings))

    blocked = project / "blocked" / "secret.txt"
    allowed = project / "notes.txt"
    write_blocked = tool_use("Write", {"file_path": str(blocked), "content": "must not land\n"})
    write_allowed = tool_use("Write", {"file_path": str(allowed), "content": "fine\n"})
    turns = [
        [text("Writing the blocked file."), write_blocked],
        [text("Denied; writing notes instead."), write_allowed],
        [text("All done.")],
    ]

    with ScriptedAnthropic(turns) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        run = run_claude(claude_bin, "write the files", project, env, permission_mode=permission_mode)
    print(f"claude {CLAUDE_CODE_VERSION} {permission_mode}: rc={run.returncode} in {run.seconds:.2f}s, "
          f"{len(server.requests)} requests: {sorted({(r['method'], r['path']) for r in server.requests})}")

    assert run.returncode == 0, f"claude exited {run.returncode}: {run.stderr.strip()[-500:]}"
    assert server.turns_used == 3 and not server.exhausted_requests

    # The hook's deny stopped the write; the control write in the same session landed.
    assert not blocked.exists()
    assert not blocked.parent.exists()
    assert allowed.read_text() == "fine\n"

    # Request 2 carries the deny reason back to the model as an error tool_result.
    second = tool_results(server.loop_requests[1]["body"])
    assert [r["tool_use_id"] for r in second] == [write_blocked["id"]]
    assert second[0].get("is_error") is True
    assert DENY_REASON in result_text(second[0])
    # Request 3 reports the allowed write as a success, without the reason.
    third = tool_results(server.loop_requests[2]["body"])
    assert [r["tool_use_id"] for r in third] == [write_allowed["id"]]
    assert not third[0].get("is_error")
    assert DENY_REASON not in result_text(third[0])

    # The hook saw both Write calls on stdin, in the documented PreToolUse shape.
    seen = [json.loads(line) for line in hook_log.read_text().splitlines()]
    assert [s["tool_input"]["file_path"] for s in seen] == [str(blocked), str(allowed)]
    for payload in seen:
        assert payload["hook_event_name"] == "PreToolUse"
        assert payload["tool_name"] == "Write"
        assert payload["cwd"] == str(project)
        assert payload["permission_mode"] == permission_mode
        assert payload["session_id"] and payload["tool_use_id"]
    assert [s["tool_use_id"] for s in seen] == [write_blocked["id"], write_allowed["id"]]

    # stream-json reports the denial too.
    result = run.result
    assert result is not None and result["subtype"] == "success"
    assert [d["tool_use_id"] for d in result["permission_denials"]] == [write_blocked["id"]]

    # Offline: only the scripted Messages endpoint was used.
    assert {(r["method"], r["path"]) for r in server.requests} == {("POST", "/v1/messages")}
