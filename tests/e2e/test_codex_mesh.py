"""The real Codex CLI with the mesh installed by ``pi-mesh install codex``.

Alice holds ``src/auth/``.  A scripted model makes Codex ``apply_patch`` an
update of ``src/auth/login.py`` (denied by the pi-mesh PreToolUse hook: the
file is unchanged and the tool output the model receives names alice and her
reason), then a patch adding a file elsewhere (applied).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parent))

from codex_rig import CODEX_VERSION, RigUnavailable, ensure_codex, offline_env, run_codex
from scripted_responses import ScriptedResponses, custom_tool_call, message

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REASON = "refactoring the session tokens"


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    try:
        return ensure_codex()
    except RigUnavailable as exc:
        print(f"SKIP codex mesh e2e: {exc}")
        pytest.skip(str(exc))


def _outputs(body: dict) -> dict[str, str]:
    return {i["call_id"]: i["output"] for i in body["input"] if i.get("type") == "custom_tool_call_output"}


def test_codex_apply_patch_into_a_claim_is_denied(project: str, mesh_factory, codex_bin: Path,
                                                  tmp_path: Path) -> None:
    root = Path(project)
    installed = run_cli("install", "codex", "--no-mcp", cwd=project)
    assert installed.returncode == 0, installed.stderr
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], REASON, cwd=project)
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

    events = [e for e in alice.feed() if e.get("event") == "blocked"]
    assert events and events[-1]["holder"] == "alice" and events[-1]["path"] == "src/auth/login.py"
    # Offline: the model endpoint (and at most a model listing) is all Codex asked for.
    assert {(r["method"], r["path"]) for r in server.requests} <= {("POST", "/v1/responses"), ("GET", "/v1/models")}
