"""The real Codex CLI with the mesh installed by ``pi-mesh install codex``.

Alice holds ``src/auth/``.  A scripted model makes Codex ``apply_patch`` an
update of ``src/auth/login.py`` (denied by the pi-mesh PreToolUse hook: the
file is unchanged and the tool output the model receives names alice and her
reason), then a patch adding a file elsewhere (applied).  With the MCP server
installed too, Codex reserves through it and may patch inside its own claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from codex_rig import CODEX_VERSION, offline_env, run_codex
from mesh_scenario import REASON, assert_block_recorded, install_with_alice
from scripted_responses import ScriptedResponses, custom_tool_call, function_call, message, tool_search_call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _outputs(body: dict) -> dict[str, str]:
    return {i["call_id"]: i["output"] for i in body["input"] if i.get("type") == "custom_tool_call_output"}


def test_codex_apply_patch_into_a_claim_is_denied(project: str, mesh_factory, codex_bin: Path,
                                                  tmp_path: Path) -> None:
    root, alice = install_with_alice(project, mesh_factory, "codex", "--no-mcp")
    login = root / "src" / "auth" / "login.py"
    before = login.read_text()

    denied = custom_tool_call("apply_patch", "*** Begin Patch\n*** Update File: src/auth/login.py\n@@\n"
                                             " def login():\n-    pass\n+    return True\n*** End Patch\n")
    allowed = custom_tool_call("apply_patch", "*** Begin Patch\n*** Add File: docs/notes.md\n+auth is alice's\n"
                                              "*** End Patch\n")
    with ScriptedResponses([[denied], [allowed], [message("Done.")]]) as server:
        env = offline_env(server.url, tmp_path / "sandbox", root)
        run = run_codex(codex_bin, "fix the login", root, env)
    print(f"codex {CODEX_VERSION}: rc={run.returncode} in {run.seconds:.2f}s, "
          f"{len(server.requests)} requests: {sorted({(r['method'], r['path']) for r in server.requests})}")
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 3 and not server.exhausted_requests

    assert login.read_text() == before
    assert (root / "docs" / "notes.md").read_text() == "auth is alice's\n"

    bodies = server.responses_requests()
    said = _outputs(bodies[1])[denied["call_id"]]
    assert said.startswith("Command blocked by PreToolUse hook:")
    assert "reserved by agent alice" in said and REASON in said and "src/auth/" in said
    ok = _outputs(bodies[2])[allowed["call_id"]]
    assert "Success" in ok and "alice" not in ok

    assert_block_recorded(alice)
    # Offline: the model endpoint (and at most a model listing) is all Codex asked for.
    assert {(r["method"], r["path"]) for r in server.requests} <= {("POST", "/v1/responses"), ("GET", "/v1/models")}


def _function_outputs(body: dict) -> dict[str, str]:
    out = {}
    for item in body["input"]:
        if item.get("type") == "function_call_output":
            value = item["output"]
            out[item["call_id"]] = value if isinstance(value, str) else "".join(p.get("text", "") for p in value)
    return out


def test_codex_uses_the_mesh_mcp_server_and_its_own_claims(project: str, mesh_factory, codex_bin: Path,
                                                           tmp_path: Path) -> None:
    """With the MCP server installed too: Codex finds the mesh's tools (a deferred namespace) with
    tool_search, reserves, is refused alice's path, patches inside its own claim and messages alice."""
    root, alice = install_with_alice(project, mesh_factory, "codex")

    # Codex connects MCP servers in the background: wait until ours has joined the mesh (and a moment more).
    wait = function_call("exec_command", {"cmd": "for i in $(seq 200); do ls .pi/mesh/agents | grep -q '^codex-' "
                                                 "&& break; sleep 0.05; done; sleep 1"})
    search = tool_search_call("reserve paths")
    reserve = function_call("reserve", {"paths": ["src/api/"], "reason": "adding routes"}, namespace="mcp__pi_mesh")
    conflict = function_call("reserve", {"paths": ["src/auth/login.py"], "reason": "fix login"},
                             namespace="mcp__pi_mesh")
    patch = custom_tool_call("apply_patch", "*** Begin Patch\n*** Add File: src/api/routes.py\n+ROUTES = []\n"
                                            "*** End Patch\n")
    send = function_call("send_message", {"to": "alice", "text": "please release src/auth/"},
                         namespace="mcp__pi_mesh")
    turns = [[wait], [search], [reserve], [conflict], [patch], [send], [message("Done.")]]
    with ScriptedResponses(turns) as server:
        env = offline_env(server.url, tmp_path / "sandbox", root)
        run = run_codex(codex_bin, "add routes", root, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 7 and not server.exhausted_requests
    bodies = server.responses_requests()

    assert "reserved src/api/" in _function_outputs(bodies[3])[reserve["call_id"]]
    refused = _function_outputs(bodies[4])[conflict["call_id"]]
    assert "alice" in refused and REASON in refused
    applied = _outputs(bodies[5])[patch["call_id"]]
    assert "Success" in applied, applied
    assert (root / "src" / "api" / "routes.py").read_text() == "ROUTES = []\n"
    assert "sent to alice" in _function_outputs(bodies[6])[send["call_id"]]
    (msg,) = alice.read_inbox()
    assert msg.text == "please release src/auth/" and msg.sender.startswith("codex-")


def test_codex_started_in_a_subdirectory_finds_the_project_install_and_is_denied(project: str, mesh_factory,
                                                                                codex_bin: Path, tmp_path: Path) -> None:
    """``pi-mesh install codex`` says Codex finds the project's ``.codex/`` from a subdirectory: Codex started
    in ``src/`` patching ``auth/login.py`` (alice's claim) is denied, naming her and her reason."""
    root, _ = install_with_alice(project, mesh_factory, "codex", "--no-mcp")
    sub = root / "src"
    login = sub / "auth" / "login.py"
    before = login.read_text()
    denied = custom_tool_call("apply_patch", "*** Begin Patch\n*** Update File: auth/login.py\n@@\n"
                                             " def login():\n-    pass\n+    return True\n*** End Patch\n")
    with ScriptedResponses([[denied], [message("Blocked.")]]) as server:
        env = offline_env(server.url, tmp_path / "sandbox", root)
        run = run_codex(codex_bin, "fix the login", sub, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 2 and not server.exhausted_requests
    assert login.read_text() == before
    said = _outputs(server.responses_requests()[1])[denied["call_id"]]
    assert said.startswith("Command blocked by PreToolUse hook:")
    assert "reserved by agent alice" in said and REASON in said and "src/auth/" in said, said
