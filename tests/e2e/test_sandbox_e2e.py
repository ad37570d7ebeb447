"""The sandbox end to end: real Pi, Claude Code and Gemini CLI run a shell command the parser cannot see into.

Another agent (alice, a Mesh owned by the test process) holds ``src/auth/``.  The scripted model runs one
shell command that writes a file elsewhere and then, through ``python3 -c``, into alice's claim.  The
harness runs the command the core rewrote (the Pi extension sets ``event.input``, Claude Code takes the
hook's ``updatedInput``, Gemini CLI its ``tool_input``) inside bwrap: the write into the claim fails with
"Read-only file system", the file is unchanged, the other write landed, and the tool result the model
receives names alice and her reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from claude_rig import offline_env as claude_env
from claude_rig import run_claude
from gemini_rig import offline_env as gemini_env
from gemini_rig import run_gemini
from mesh_scenario import REASON, install_with_alice
from pi_rig import run_pi
from scripted_anthropic import ScriptedAnthropic, result_text, text, tool_results, tool_use
from scripted_gemini import ScriptedGemini, function_call
from scripted_gemini import text as gemini_text
from scripted_openai import ScriptedOpenAI, tool_call
from scripted_openai import text as openai_text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")]

COMMAND = ("echo 'auth is alice'\"'\"'s' > notes.txt && "
           "python3 -c \"open('src/auth/x.py', 'w').write('hacked')\" && echo never-printed")


def assert_refused_and_told(root: Path, said: str) -> None:
    assert not (root / "src" / "auth" / "x.py").exists()
    assert (root / "src" / "auth" / "login.py").read_text() == "def login():\n    pass\n"
    assert (root / "notes.txt").read_text() == "auth is alice's\n"  # the write elsewhere in the command landed
    assert "Read-only file system" in said, said
    assert "src/auth/ - reserved by agent alice" in said and REASON in said, said
    assert "never-printed" not in said


@pytest.mark.xdist_group("pi-e2e")
def test_pi_bash_runs_in_the_sandbox(project: str, mesh_factory, pi_install: Path, tmp_path: Path) -> None:
    root, _ = install_with_alice(project, mesh_factory, "pi")
    shell = tool_call("bash", {"command": COMMAND})
    with ScriptedOpenAI([[shell], [openai_text("the claim is alice's; I will ask her")]]) as server:
        run = run_pi(root, "write the notes", server, agent_dir=tmp_path / "agent", env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
    said = ScriptedOpenAI.tool_results(requests[1])[shell["id"]]
    assert_refused_and_told(root, said)
    assert run.tool_ends()[shell["id"]]["isError"] is True
    # what the model is sent back as its own call is its command, not the wrapped one
    sent = [c for m in requests[1]["messages"] for c in m.get("tool_calls") or [] if c["id"] == shell["id"]]
    assert [json.loads(c["function"]["arguments"]) for c in sent] == [{"command": COMMAND}]

def test_claude_code_bash_runs_in_the_sandbox(project: str, mesh_factory, claude_bin: Path, tmp_path: Path) -> None:
    root, _ = install_with_alice(project, mesh_factory, "claude-code", "--no-mcp")
    shell = tool_use("Bash", {"command": COMMAND, "description": "write notes"})
    with ScriptedAnthropic([[text("Writing."), shell], [text("Done.")]]) as server:
        env = claude_env(server.url, tmp_path / "sandbox")
        run = run_claude(claude_bin, "write the notes", root, env, permission_mode="bypassPermissions")
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 2 and not server.exhausted_requests
    (got,) = tool_results(server.loop_requests[1]["body"])
    assert got["tool_use_id"] == shell["id"] and got.get("is_error") is True
    assert_refused_and_told(root, result_text(got))


def test_gemini_shell_runs_in_the_sandbox(project: str, mesh_factory, gemini_bin: Path, tmp_path: Path) -> None:
    root, _ = install_with_alice(project, mesh_factory, "gemini", "--no-mcp")
    turns = [[function_call("run_shell_command", {"command": COMMAND})], [gemini_text("Done.")]]
    with ScriptedGemini(turns) as server:
        env = gemini_env(server.url, tmp_path / "sandbox")
        run = run_gemini(gemini_bin, "write the notes", root, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 2 and not server.exhausted_requests
    (resp,) = [p["functionResponse"] for p in server.loop_requests[1]["body"]["contents"][-1]["parts"]
               if "functionResponse" in p]
    assert_refused_and_told(root, str(resp["response"]))
