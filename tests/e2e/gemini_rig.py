"""Run the real Gemini CLI (npm ``@google/gemini-cli``) offline against :mod:`scripted_gemini`.

Facts this rig relies on (checked with version ``GEMINI_CLI_VERSION``):

* ``GOOGLE_GEMINI_BASE_URL`` (plain http allowed for 127.0.0.1) with
  ``GEMINI_API_KEY`` and ``security.auth.selectedType = "gemini-api-key"`` in the
  user settings sends every model request to the scripted server;
* ``-m gemini-2.5-pro`` skips the model router's classifier requests;
* headless runs need a trusted folder: ``GEMINI_CLI_TRUST_WORKSPACE=true``;
* project ``.gemini/settings.json`` hooks run in headless mode after a warning
  on stderr ("project-level hooks have been detected");
* a BeforeTool ``{"decision": "deny", "reason": …}`` reaches the model as the
  ``functionResponse`` error ``"Tool execution blocked: <reason>"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

GEMINI_CLI_VERSION = "0.61.0"
MODEL = "gemini-2.5-pro"
REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_DIR = REPO_ROOT / "build" / "npm" / "gemini"


class RigUnavailable(Exception):
    """The CLI cannot be installed or run here; the message says why."""


def _binary() -> Path:
    return NPM_DIR / "node_modules" / ".bin" / "gemini"


def _version(binary: Path) -> str | None:
    """The installed package's version (its package.json: starting node for --version costs seconds)."""
    if not binary.exists():
        return None
    try:
        manifest = NPM_DIR / "node_modules" / "@google" / "gemini-cli" / "package.json"
        return json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None


def ensure_gemini() -> Path:
    """Path of the pinned Gemini CLI, installing it with npm into build/npm/gemini if needed."""
    binary = _binary()
    if binary.exists() and _version(binary) == GEMINI_CLI_VERSION:
        return binary
    npm = shutil.which("npm")
    if not npm:
        raise RigUnavailable("npm is not installed, so @google/gemini-cli cannot be installed")
    from filelock import FileLock

    NPM_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(NPM_DIR / ".install.lock")):
        if binary.exists() and _version(binary) == GEMINI_CLI_VERSION:
            return binary
        manifest = NPM_DIR / "package.json"
        if not manifest.exists():
            manifest.write_text(json.dumps({"name": "pi-mesh-gemini-rig", "private": True}) + "\n")
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--save-exact",
                               f"@google/gemini-cli@{GEMINI_CLI_VERSION}"], cwd=NPM_DIR, capture_output=True,
                              text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"npm install @google/gemini-cli@{GEMINI_CLI_VERSION} failed: {tail}")
    if _version(binary) != GEMINI_CLI_VERSION:
        raise RigUnavailable(f"@google/gemini-cli@{GEMINI_CLI_VERSION} installed but {binary} does not answer")
    return binary


def offline_env(base_url: str, sandbox: Path) -> dict[str, str]:
    home = sandbox / "home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False}, "general": {"disableAutoUpdate": True}}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GEMINI_", "GOOGLE_", "CLOUDSDK_")) and k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY")}
    env.update(HOME=str(home), GEMINI_API_KEY="scripted-dummy", GOOGLE_GEMINI_BASE_URL=base_url,
               GEMINI_CLI_TRUST_WORKSPACE="true", NO_PROXY="127.0.0.1,localhost", NO_COLOR="1")
    return env


class GeminiRun:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float) -> None:
        self.returncode, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds
        try:
            self.result = json.loads(proc.stdout)
        except ValueError:
            self.result = None


def run_gemini(binary: Path, prompt: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> GeminiRun:
    args = [str(binary), "-m", MODEL, "-p", prompt, "--output-format", "json", "--yolo"]
    started = time.monotonic()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    return GeminiRun(proc, time.monotonic() - started)
