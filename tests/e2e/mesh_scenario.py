"""The scenario the real-harness mesh tests share: ``pi-mesh install <harness>`` in the conftest
project, and another agent, alice (a Mesh owned by the test process, live throughout), holding
``src/auth/`` for :data:`REASON`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_cli

REASON = "refactoring the session tokens"


def install_with_alice(project: str, mesh_factory: Any, harness: str, *flags: str) -> tuple[Path, Any]:
    """Install the mesh for ``harness`` (``flags`` as for ``pi-mesh install``); ``(project root, alice)``."""
    installed = run_cli("install", harness, *flags, cwd=project)
    assert installed.returncode == 0, installed.stderr
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], REASON, cwd=project)
    return Path(project), alice


def assert_block_recorded(alice: Any, path: str = "src/auth/login.py") -> None:
    """The mesh's feed names alice as the holder of the last blocked call, on ``path``
    (the core decided, the hook translated)."""
    events = [e for e in alice.feed() if e.get("event") == "blocked"]
    assert events and events[-1]["holder"] == "alice" and events[-1]["path"] == path
