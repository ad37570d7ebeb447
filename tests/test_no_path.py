"""A call of a guarded tool that names no path is blocked as malformed - through every entry point.

Each case is a real process: the hook commands of each harness, the Pi sidecar, the MCP server and
``pi-mesh check``.  Nothing is claimed in these projects, so an allow would be the answer of a guard
that did not notice the missing path.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import PI_MESH, REPO
from tests.test_hooks import claude_event, gemini_event, hook
from tests.test_sidecar import Sidecar


@pytest.mark.parametrize("harness,tool,tool_input,missing", [
    ("claude-code", "Edit", {"old_string": "a", "new_string": "b"}, "file_path"),
    ("claude-code", "MultiEdit", {"edits": []}, "file_path"),
    ("claude-code", "Write", {"file_path": "   ", "content": "x"}, "file_path"),
    ("claude-code", "NotebookEdit", {"file_path": "a.ipynb", "new_source": "x"}, "notebook_path"),
    ("claude-code", "Bash", {"description": "no command"}, "command"),
    ("gemini", "replace", {"old_string": "a", "new_string": "b"}, "file_path"),
    ("gemini", "write_file", {"file_path": None, "content": "x"}, "file_path"),
    ("gemini", "run_shell_command", {}, "command"),
    ("codex", "apply_patch", {"command": "*** Begin Patch\n*** End Patch\n"}, "names no file"),
    ("codex", "Bash", {}, "command"),
])
def test_hook_commands_block_a_guarded_call_with_no_path(project, harness, tool, tool_input, missing):
    if harness == "gemini":
        event = gemini_event(project, tool, tool_input)
    else:
        event = claude_event(project, tool, tool_input)
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write", "bash"]\n')
    r = hook(harness, event, env={"PI_MESH_AGENT": "bob"}, cwd=project)
    err = r.stderr.decode()
    assert r.returncode == 2, (r, err)  # the exit code every harness reads as "blocked"
    assert "malformed hook input" in err and missing in err and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_the_sidecar_blocks_a_guarded_call_with_no_path(project):
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write", "bash", "notebook"]\n')
    s = Sidecar(project, env={"PI_MESH_AGENT": "bob"})
    try:
        s.ok("hello", name="bob", harness="pi", pid=os.getpid(), model="scripted")
        for tool, tool_input in (("edit", {"edits": []}), ("write", {"content": "x"}), ("edit", {"path": ""}),
                                 ("write", {"path": 7}), ("bash", {"timeout": 5})):
            resp = s.request("pre_tool_call", tool=tool, input=tool_input, cwd=project)
            assert resp["ok"] is False and resp["code"] == "bad_request", resp  # the extension blocks on an error
            assert "\n" not in resp["error"]
        # a guarded tool the sidecar has no rule for, with nothing to say what it writes: the core refuses it
        res = s.ok("pre_tool_call", tool="notebook", input={"cell": 1}, cwd=project)
        assert res["allow"] is False and "malformed notebook call: it names no path" in res["reason"], res
        assert s.ok("pre_tool_call", tool="write", input={"path": "docs/a.md"}, cwd=project)["allow"] is True
        rc, err = s.close()
        assert rc == 0 and "Traceback" not in err
    finally:
        s.release()


def test_mcp_refuses_a_guarded_tool_call_with_no_path(project):
    pytest.importorskip("mcp")
    from tests.test_mcp import _session, _text

    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write", "send_message"]\n')

    async def body(session):
        edit = await session.call_tool("edit", {"content": "x"})
        sent = await session.call_tool("send_message", {"to": "alice", "text": "hi"})
        return edit, sent

    edit, sent = _session(project, "carol", body)
    assert edit.is_error and "no tool named" in _text(edit)  # an edit tool the server does not have never runs
    assert sent.is_error and "malformed send_message call: it names no path" in _text(sent), _text(sent)


def test_pi_mesh_check_with_no_path_is_a_usage_error(project):
    r = subprocess.run([*PI_MESH, "check", "--agent", "bob"], cwd=project, capture_output=True, text=True,
                       timeout=60, check=False, env={**os.environ, "PYTHONPATH": REPO})
    assert r.returncode == 2 and r.stderr.count("\n") <= 2 and "Traceback" not in r.stderr, r
    r = subprocess.run([*PI_MESH, "check", "", "--agent", "bob", "--json"], cwd=project, capture_output=True,
                       text=True, timeout=60, check=False, env={**os.environ, "PYTHONPATH": REPO})
    assert r.returncode != 0 and "Traceback" not in r.stderr, r
    assert "free" not in r.stdout, r
