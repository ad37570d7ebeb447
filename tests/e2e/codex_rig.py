"""Run the real Codex CLI (npm ``@openai/codex``) offline against :mod:`scripted_responses`.

Facts this rig relies on (checked with version ``CODEX_VERSION``):

* the npm package ships a native binary through the optional dependency
  ``@openai/codex-linux-<arch>`` (a registry package: no download beyond npm);
* a custom provider in ``$CODEX_HOME/config.toml`` (``base_url``, ``env_key``,
  ``wire_api = "responses"``) sends every model request to ``POST {base_url}/responses``;
* with model ``gpt-5.5`` (from the binary's built-in catalog) ``apply_patch`` is a
  freeform *custom* tool, answered with a ``custom_tool_call`` item;
* project ``.codex/hooks.json`` is read for a project marked trusted in
  ``config.toml``; hooks need persisted trust, which
  ``--dangerously-bypass-hook-trust`` skips for automation that vets its hooks
  (this test installs the hook itself);
* a PreToolUse deny reaches the model as the tool output
  ``"Command blocked by PreToolUse hook: <reason>. Command: <patch>"``;
* MCP servers from the project's ``.codex/config.toml`` connect in the
  background and their tools are a deferred namespace (``mcp__pi_mesh``): the
  model finds them with ``tool_search`` and calls them as ``function_call``
  items carrying ``namespace``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

CODEX_VERSION = "0.169.0"
MODEL = "gpt-5.5"
REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_DIR = REPO_ROOT / "build" / "npm" / "codex"


class RigUnavailable(Exception):
    """The CLI cannot be installed or run here; the message says why."""


def _binary() -> Path:
    return NPM_DIR / "node_modules" / ".bin" / "codex"


def _version(binary: Path) -> str | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().split()[-1] if out.returncode == 0 and out.stdout.strip() else None


def ensure_codex() -> Path:
    """Path of a working pinned Codex CLI, installing it with npm into build/npm/codex if needed."""
    binary = _binary()
    if binary.exists() and _version(binary) == CODEX_VERSION:
        return binary
    npm = shutil.which("npm")
    if not npm:
        raise RigUnavailable("npm is not installed, so @openai/codex cannot be installed")
    if platform.system() != "Linux":
        raise RigUnavailable(f"the Codex rig is only set up for Linux, not {platform.system()}")
    from filelock import FileLock

    NPM_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(NPM_DIR / ".install.lock")):
        if binary.exists() and _version(binary) == CODEX_VERSION:
            return binary
        manifest = NPM_DIR / "package.json"
        if not manifest.exists():
            manifest.write_text(json.dumps({"name": "pi-mesh-codex-rig", "private": True}) + "\n")
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--save-exact",
                               f"@openai/codex@{CODEX_VERSION}"], cwd=NPM_DIR, capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"npm install @openai/codex@{CODEX_VERSION} failed: {tail}")
    if _version(binary) != CODEX_VERSION:
        raise RigUnavailable(f"@openai/codex@{CODEX_VERSION} installed but {binary} does not answer --version")
    return binary


def offline_env(base_url: str, sandbox: Path, project: Path) -> dict[str, str]:
    """Environment and ``$CODEX_HOME/config.toml`` that keep Codex offline and isolated in ``sandbox``."""
    home = sandbox / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\nmodel_provider = "scripted"\n\n'
        f'[model_providers.scripted]\nname = "scripted"\nbase_url = "{base_url}/v1"\n'
        f'env_key = "SCRIPTED_API_KEY"\nwire_api = "responses"\n\n'
        f'[projects.{json.dumps(str(project))}]\ntrust_level = "trusted"\n')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "CODEX_", "AZURE_")) and k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY")}
    env.update(CODEX_HOME=str(home), HOME=str(sandbox), SCRIPTED_API_KEY="scripted-dummy",
               NO_PROXY="127.0.0.1,localhost", RUST_LOG="error")
    return env


class CodexRun:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float) -> None:
        self.returncode, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds
        self.events = []
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass


def run_codex(binary: Path, prompt: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> CodexRun:
    args = [str(binary), "exec", "--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
            "--dangerously-bypass-hook-trust", "-m", MODEL, prompt]
    started = time.monotonic()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    return CodexRun(proc, time.monotonic() - started)
