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
import subprocess
from pathlib import Path

import npm_rig
from npm_rig import RigUnavailable, npm_install, run_timed

GEMINI_CLI_VERSION = "0.61.0"
MODEL = "gemini-2.5-pro"
NPM_DIR = npm_rig.NPM_ROOT / "gemini"
BINARY = NPM_DIR / "node_modules" / ".bin" / "gemini"


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
    binary = BINARY
    if not npm_install("@google/gemini-cli", GEMINI_CLI_VERSION, NPM_DIR,
                       lambda: binary if _version(binary) == GEMINI_CLI_VERSION else None):
        raise RigUnavailable(f"@google/gemini-cli@{GEMINI_CLI_VERSION} installed but {binary} does not answer")
    return binary


def offline_env(base_url: str, sandbox: Path) -> dict[str, str]:
    home = sandbox / "home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False}, "general": {"disableAutoUpdate": True}}))
    return npm_rig.offline_env(("GEMINI_", "GOOGLE_", "CLOUDSDK_"), HOME=str(home), GEMINI_API_KEY="scripted-dummy",
                               GOOGLE_GEMINI_BASE_URL=base_url, GEMINI_CLI_TRUST_WORKSPACE="true", NO_COLOR="1")


class GeminiRun:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float) -> None:
        self.returncode, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds
        try:
            self.result = json.loads(proc.stdout)
        except ValueError:
            self.result = None


def run_gemini(binary: Path, prompt: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> GeminiRun:
    args = [str(binary), "-m", MODEL, "-p", prompt, "--output-format", "json", "--yolo"]
    return GeminiRun(*run_timed(args, cwd, env, timeout))
