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

import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLAUDE_CODE_VERSION = "2.1.331"
REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_DIR = REPO_ROOT / "build" / "npm" / "claude-code"
DEFAULT_MODEL = "claude-sonnet-4-5"


class RigUnavailable(Exception):
    """The CLI cannot be installed or run here; the message says exactly why."""


def _platform_package() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"@anthropic-ai/claude-code-linux-{arch}"


def _version_of(binary: Path) -> str | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, env={**os.environ, "DISABLE_AUTOUPDATER": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


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
            version = _version_of(candidate)
            if version and version.split()[0] == CLAUDE_CODE_VERSION:
                return candidate
    return None


def ensure_claude() -> Path:
    """Path of a working pinned Claude Code binary, installing it with npm if needed.

    Raises RigUnavailable when npm is absent; raises RuntimeError when npm fails.
    """
    binary = _working_binary()
    if binary:
        return binary
    npm = shutil.which("npm")
    if not npm:
        raise RigUnavailable("npm is not installed, so @anthropic-ai/claude-code cannot be installed")
    from filelock import FileLock

    NPM_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(NPM_DIR / ".install.lock")):
        binary = _working_binary()
        if binary:
            return binary
        manifest = NPM_DIR / "package.json"
        if not manifest.exists():
            manifest.write_text(json.dumps({"name": "pi-mesh-claude-code-rig", "private": True}) + "\n")
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--save-exact", f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"],
            cwd=NPM_DIR, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"npm install @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION} failed: {tail}")
    binary = _working_binary()
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
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE", "AWS_", "GOOGLE_", "VERTEX_"))
        and k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    }
    env.update(
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
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


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
    import time

    args = [str(binary), "-p", prompt, "--output-format", "stream-json", "--verbose",
            "--model", model, "--permission-mode", permission_mode, *extra_args]
    started = time.monotonic()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    events = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    return ClaudeRun(proc.returncode, proc.stdout, proc.stderr, seconds, events)
