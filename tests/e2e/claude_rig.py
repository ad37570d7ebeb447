"""Run the real Claude Code CLI (npm ``@anthropic-ai/claude-code``) offline against
:mod:`scripted_anthropic`.

Facts this rig relies on (checked with version ``CLAUDE_CODE_VERSION``):

* The npm package ships a native ELF binary through the optional dependency
  ``@anthropic-ai/claude-code-linux-x64`` (a registry package, so no download
  beyond npm); its postinstall hard-links it over ``bin/claude.exe``.
* With ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` the CLI's only network
  traffic is ``POST {ANTHROPIC_BASE_URL}/v1/messages?beta=true`` (streaming).
  Without it, it also sends ``HEAD /api/hello`` to the base URL and resolves
  external host names.
* ``--dangerously-skip-permissions`` and ``--permission-mode bypassPermissions``
  are refused for root unless ``IS_SANDBOX=1``.
* Project ``.claude/settings.json`` hooks are loaded in ``-p`` mode without a
  trust prompt.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import npm_rig
from npm_rig import RigUnavailable, json_lines, npm_install, run_timed, version_output

CLAUDE_CODE_VERSION = "2.1.331"
NPM_DIR = npm_rig.NPM_ROOT / "claude-code"
DEFAULT_MODEL = "claude-sonnet-4-5"


def _platform_package() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"@anthropic-ai/claude-code-linux-{arch}"


def _candidates() -> list[Path]:
    found = []
    override = os.environ.get("PI_MESH_CLAUDE_BIN")
    if override:
        found.append(Path(override))
    modules = NPM_DIR / "node_modules"
    found.append(modules / ".bin" / "claude")
    found.append(modules / _platform_package() / "claude")
    return found


def _working_binary() -> Path | None:
    for candidate in _candidates():
        if candidate.is_file():
            version = version_output(candidate, env={**os.environ, "DISABLE_AUTOUPDATER": "1"})
            if version and version.split()[0] == CLAUDE_CODE_VERSION:
                return candidate
    return None


def ensure_claude() -> Path:
    """Path of a working pinned Claude Code binary, installing it with npm if needed.

    Raises RigUnavailable when npm is absent; raises RuntimeError when npm fails.
    """
    binary = npm_install("@anthropic-ai/claude-code", CLAUDE_CODE_VERSION, NPM_DIR, _working_binary)
    if not binary:
        raise RigUnavailable(
            f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION} installed but no binary answers --version "
            f"(looked at {', '.join(str(c) for c in _candidates())})"
        )
    return binary


def offline_env(base_url: str, sandbox: Path) -> dict[str, str]:
    """Environment that keeps Claude Code offline, non-interactive and isolated in ``sandbox``."""
    home = sandbox / "home"
    tmp = sandbox / "tmp"
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    return npm_rig.offline_env(
        ("ANTHROPIC_", "CLAUDE", "AWS_", "GOOGLE_", "VERTEX_"), ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"),
        HOME=str(home),
        CLAUDE_CONFIG_DIR=str(home / ".claude"),
        TMPDIR=str(tmp),  # keeps claude-<uid>/ and cc-socks/ out of the shared /tmp
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY="sk-ant-scripted-dummy",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
        IS_SANDBOX="1",  # lets root use bypassPermissions
    )


@dataclass
class ClaudeRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e.get("type") == "result"), None)


def run_claude(binary: Path, prompt: str, cwd: Path, env: dict[str, str], *,
               permission_mode: str = "acceptEdits", model: str = DEFAULT_MODEL,
               extra_args: list[str] = (), timeout: float = 120) -> ClaudeRun:
    """Run ``claude -p`` with stream-json output and parse its events."""
    args = [str(binary), "-p", prompt, "--output-format", "stream-json", "--verbose",
            "--model", model, "--permission-mode", permission_mode, *extra_args]
    proc, seconds = run_timed(args, cwd, env, timeout)
    return ClaudeRun(proc.returncode, proc.stdout, proc.stderr, seconds, json_lines(proc.stdout))
