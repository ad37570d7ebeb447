"""Fixtures shared by the real-harness tests: each pinned CLI, installed from npm on first use
(the tests skip, saying why, only when npm is absent)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the rigs and scripted servers import each other

from claude_rig import ensure_claude
from codex_rig import ensure_codex
from gemini_rig import ensure_gemini
from npm_rig import RigUnavailable
from pi_rig import ensure_pi


def _cli_fixture(name: str, ensure: Callable[[], Path], what: str, scope: str = "module"):
    """A fixture ``name``: what ``ensure()`` installed, or a skip (saying why) when it cannot be installed."""
    @pytest.fixture(scope=scope, name=name)
    def installed() -> Path:
        try:
            return ensure()
        except RigUnavailable as exc:
            print(f"SKIP {what} e2e: {exc}")
            pytest.skip(str(exc))
    return installed


claude_bin = _cli_fixture("claude_bin", ensure_claude, "claude")
codex_bin = _cli_fixture("codex_bin", ensure_codex, "codex")
gemini_bin = _cli_fixture("gemini_bin", ensure_gemini, "gemini")
pi_install = _cli_fixture("pi_install", ensure_pi, "real-Pi", scope="session")  # the real Pi's cli.js
