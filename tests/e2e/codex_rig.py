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
import platform
import subprocess
from pathlib import Path

import npm_rig
from npm_rig import RigUnavailable, json_lines, npm_install, run_timed, version_output

CODEX_VERSION = "0.169.0"
MODEL = "gpt-5.5"
NPM_DIR = npm_rig.NPM_ROOT / "codex"
BINARY = NPM_DIR / "node_modules" / ".bin" / "codex"


def _version(binary: Path) -> str | None:
    out = version_output(binary)
    return out.split()[-1] if out else None


def ensure_codex() -> Path:
    """Path of a working pinned Codex CLI, installing it with npm into build/npm/codex if needed."""
    binary = BINARY

    def ready() -> Path | None:
        return binary if binary.exists() and _version(binary) == CODEX_VERSION else None

    if platform.system() != "Linux" and not ready():
        raise RigUnavailable(f"the Codex rig is only set up for Linux, not {platform.system()}")
    if not npm_install("@openai/codex", CODEX_VERSION, NPM_DIR, ready):
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
    return npm_rig.offline_env(("OPENAI_", "CODEX_", "AZURE_"), CODEX_HOME=str(home), HOME=str(sandbox),
                               SCRIPTED_API_KEY="scripted-dummy", RUST_LOG="error")


class CodexRun:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float) -> None:
        self.returncode, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds
        self.events = json_lines(proc.stdout)


def run_codex(binary: Path, prompt: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> CodexRun:
    args = [str(binary), "exec", "--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
            "--dangerously-bypass-hook-trust", "-m", MODEL, prompt]
    return CodexRun(*run_timed(args, cwd, env, timeout))
