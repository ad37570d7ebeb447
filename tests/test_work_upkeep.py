"""An allowed guarded write is work: through the one decision, every entry point renews and auto-claims.

The hook commands run as real processes (the same ``host.decide`` serves the Pi
sidecar, ``pi-mesh check`` and MCP).  ``pi-mesh check`` is a dry run: it must
neither renew nor claim.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.conftest import run_cli
from tests.test_hooks import (
    assert_allow,
    claude_event,
    codex_event,
    gemini_event,
    hook,
)


def configure(project: str, text: str) -> None:
    cfg = os.path.join(project, ".pi", "hooks.toml")
    os.makedirs(os.path.dirname(cfg), exist_ok=True)
    with open(cfg, "w") as f:
        f.write(text)
    old = time.time() - 10  # as an edited-long-ago file is: its parse may be cached
    os.utime(cfg, (old, old))


def claims(project: str) -> dict[str, dict]:
    r = run_cli("--json", "claims", cwd=project)
    assert r.returncode == 0, r.stderr
    return {c["path"]: c for c in json.loads(r.stdout)}


AUTO = '[agents.auto]\nauto_claim = true\nauto_claim_ttl = "2m"\n'


@pytest.mark.parametrize("harness,event", [
    ("claude-code", lambda p: claude_event(p, "Write", {"file_path": f"{p}/src/a.py", "content": "x"})),
    ("claude-code", lambda p: claude_event(p, "Bash", {"command": "echo x > src/a.py"})),
    ("codex", lambda p: codex_event(p, "*** Begin Patch\n*** Add File: src/a.py\n+x\n*** End Patch\n")),
    ("gemini", lambda p: gemini_event(p, "write_file", {"file_path": "src/a.py", "content": "x"})),
])
def test_an_allowed_write_of_an_auto_claim_agent_claims_the_file(project, mesh_factory, harness, event):
    configure(project, AUTO + 'guard = ["edit", "write", "bash"]\n')
    mesh_factory("auto")
    bob = mesh_factory("bob")
    assert_allow(hook(harness, event(project), env={"PI_MESH_AGENT": "auto"}))
    held = claims(project)
    assert held["src/a.py"]["holder"] == "auto"
    assert bob.check("src/a.py", cwd=project).holder == "auto"


def test_an_agent_without_auto_claim_claims_nothing(project, mesh_factory):
    mesh_factory("plain")
    assert_allow(hook("claude-code", claude_event(project, "Write", {"file_path": f"{project}/src/a.py"}),
                      env={"PI_MESH_AGENT": "plain"}))
    assert claims(project) == {}


def test_check_is_a_dry_run_and_claims_nothing(project, mesh_factory):
    configure(project, AUTO)
    mesh_factory("auto")
    r = run_cli("check", "src/a.py", cwd=project, env={"PI_MESH_AGENT": "auto"})
    assert r.returncode == 0, r.stderr
    assert claims(project) == {}


def test_a_blocked_write_claims_nothing(project, mesh_factory):
    configure(project, AUTO)
    mesh_factory("auto")
    mesh_factory("alice").reserve(["src/auth/"], "refactor", cwd=project)
    r = hook("claude-code", claude_event(project, "Write", {"file_path": f"{project}/src/auth/new.py"}),
             env={"PI_MESH_AGENT": "auto"})
    assert b"permissionDecision" in r.stdout
    assert list(claims(project)) == ["src/auth"]


def test_a_claim_renews_when_its_holder_writes(project, mesh_factory):
    """reservation_ttl 4 s: after half of it, an allowed write elsewhere renews the holder's claim."""
    configure(project, '[defaults]\nreservation_ttl = "4s"\n')
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], "refactor", cwd=project)
    before = claims(project)["src/auth"]["expires"]
    time.sleep(2.3)
    assert_allow(hook("claude-code", claude_event(project, "Write", {"file_path": f"{project}/src/other.py"}),
                      env={"PI_MESH_AGENT": "alice"}))
    after = claims(project)["src/auth"]["expires"]
    assert after > before
    time.sleep(2.0)  # past the first expiry: the claim holds because it was renewed
    assert mesh_factory("bob").check("src/auth/login.py", cwd=project).holder == "alice"


def test_an_idle_holders_claim_lapses(project, mesh_factory):
    """The control for the renewal test: without a write the same claim is gone after its TTL."""
    configure(project, '[defaults]\nreservation_ttl = "2s"\n')
    mesh_factory("alice").reserve(["src/auth/"], "refactor", cwd=project)
    time.sleep(2.3)
    assert mesh_factory("bob").check("src/auth/login.py", cwd=project) is None
