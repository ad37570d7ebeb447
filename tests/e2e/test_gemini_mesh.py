"""The real Gemini CLI with the mesh installed by ``pi-mesh install gemini``.

Alice holds ``src/auth/``.  A scripted model makes Gemini CLI ``write_file``
``src/auth/login.py`` (denied by the pi-mesh BeforeTool hook: the file is
unchanged and the functionResponse the model receives names alice and her
reason), then a file elsewhere (written).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gemini_rig import GEMINI_CLI_VERSION, offline_env, run_gemini
from mesh_scenario import REASON, assert_block_recorded, install_with_alice
from scripted_gemini import ScriptedGemini, function_call, text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _responses(body: dict) -> list[dict]:
    return [p["functionResponse"] for p in body["contents"][-1]["parts"] if "functionResponse" in p]


def test_gemini_write_file_into_a_claim_is_denied(project: str, mesh_factory, gemini_bin: Path,
                                                  tmp_path: Path) -> None:
    root, alice = install_with_alice(project, mesh_factory, "gemini", "--no-mcp")
    login = root / "src" / "auth" / "login.py"
    before = login.read_text()

    turns = [[function_call("write_file", {"file_path": "src/auth/login.py", "content": "def login(): return 1\n"})],
             [function_call("write_file", {"file_path": "docs/notes.md", "content": "auth is alice's\n"})],
             [text("Done.")]]
    with ScriptedGemini(turns) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        run = run_gemini(gemini_bin, "fix the login", root, env)
    print(f"gemini-cli {GEMINI_CLI_VERSION}: rc={run.returncode} in {run.seconds:.2f}s, "
          f"{len(server.requests)} requests: {sorted({(r['method'], r['path']) for r in server.requests})}")
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 3 and not server.exhausted_requests
    assert "project-level hooks have been detected" in run.stderr and "pi-mesh" in run.stderr

    assert login.read_text() == before
    assert (root / "docs" / "notes.md").read_text() == "auth is alice's\n"

    (denied,) = _responses(server.loop_requests[1]["body"])
    said = denied["response"]["error"]
    assert said.startswith("Tool execution blocked:")
    assert "reserved by agent alice" in said and REASON in said and "src/auth/" in said
    (ok,) = _responses(server.loop_requests[2]["body"])
    assert "error" not in ok["response"] and "Successfully" in ok["response"]["output"]

    assert_block_recorded(alice)
    # Offline: only the scripted Gemini API was asked.
    assert all(r["path"].startswith("/v1beta/models/") for r in server.requests)


def test_gemini_uses_the_mesh_mcp_server_and_its_own_claims(project: str, mesh_factory, gemini_bin: Path,
                                                            tmp_path: Path) -> None:
    """With the MCP server installed too: Gemini CLI reserves through ``mcp_pi-mesh_reserve``, is refused
    alice's path, writes inside its own claim (the hook knows it is that agent) and messages alice."""
    root, alice = install_with_alice(project, mesh_factory, "gemini")

    turns = [[function_call("mcp_pi-mesh_reserve", {"paths": ["src/api/"], "reason": "adding routes"})],
             [function_call("mcp_pi-mesh_reserve", {"paths": ["src/auth/login.py"], "reason": "fix login"})],
             [function_call("write_file", {"file_path": "src/api/routes.py", "content": "ROUTES = []\n"})],
             [function_call("mcp_pi-mesh_send_message", {"to": "alice", "text": "please release src/auth/"})],
             [text("Done.")]]
    with ScriptedGemini(turns) as server:
        env = offline_env(server.url, tmp_path / "sandbox")
        run = run_gemini(gemini_bin, "add routes", root, env)
    assert run.returncode == 0, run.stderr[-800:]
    assert server.turns_used == 5 and not server.exhausted_requests
    got = [_responses(server.loop_requests[i]["body"])[0]["response"] for i in range(1, 5)]
    assert "error" not in got[0] and "reserved src/api/" in str(got[0])
    assert "alice" in str(got[1]) and REASON in str(got[1])
    assert "error" not in got[2], got[2]
    assert (root / "src" / "api" / "routes.py").read_text() == "ROUTES = []\n"
    assert "error" not in got[3] and "sent to alice" in str(got[3])
    (msg,) = alice.read_inbox()
    assert msg.text == "please release src/auth/" and msg.sender.startswith("gemini-")
