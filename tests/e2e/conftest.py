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


def _installed(ensure: Callable[[], Path], what: str) -> Path:
    try:
        return ensure()
    except RigUnavailable as exc:
        print(f"SKIP {what} e2e: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    return _installed(ensure_claude, "claude")


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return _installed(ensure_codex, "codex")


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    return _installed(ensure_gemini, "gemini")


@pytest.fixture(scope="session")
def pi_install() -> Path:
    """The real Pi's ``cli.js``."""
    return _installed(ensure_pi, "real-Pi")
