"""Drive the real Pi coding agent (npm ``@mariozechner/pi-coding-agent``) offline.

Pi is installed from the npm registry into ``build/npm/pi-<version>`` (ignored by
git) on first use, and pointed at a :class:`~scripted_openai.ScriptedOpenAI`
server through a ``models.json`` in a throw-away ``PI_CODING_AGENT_DIR``::

    with ScriptedOpenAI([[tool_call("write", {...})], [text("done")]]) as server:
        run = run_pi(project_dir, "do it", server, agent_dir=tmp_path / "agent")
        assert run.returncode == 0
        server.chat_requests()[1]            # what the model saw after the tool call

Facts about Pi 0.73.1 this rig relies on (established by experiment):

* ``<cwd>/.pi/extensions/<name>/index.ts`` (or ``<cwd>/.pi/extensions/<name>.ts``) is
  loaded automatically, also in ``-p`` mode, with no trust prompt or flag.  Only the
  *current directory's* ``.pi/extensions`` is searched (not parent directories).
  An extension whose factory throws makes ``pi -p`` exit 1 before calling the model.
* ``-p --mode json`` prints one JSON object per line: a ``{"type": "session"}`` header
  followed by agent events (``message_end``, ``tool_execution_end``, ``agent_end``...).
* ``-p`` mode returns after the prompt's agent run ends, emits ``session_shutdown``
  (awaited) and then lets Node exit on its own: a live timer or child process in an
  extension keeps ``pi`` running forever, hence the hard timeout here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npm_rig import NPM_ROOT, REPO_ROOT, RigUnavailable, npm_install
from scripted_openai import ScriptedOpenAI

__all__ = [
    "PI_PACKAGE",
    "PI_VERSION",
    "REPO_ROOT",
    "PiRun",
    "PiTimeout",
    "PiUnavailable",
    "ensure_pi",
    "pi_cli",
    "pi_prefix",
    "run_pi",
    "write_models_json",
]

PI_PACKAGE = "@mariozechner/pi-coding-agent"
PI_VERSION = "0.73.1"
PROVIDER = "scripted"


class PiUnavailable(RigUnavailable, RuntimeError):
    """Pi cannot be installed here (npm missing)."""


class PiTimeout(AssertionError):
    """``pi`` did not exit within the timeout (it was killed)."""


def pi_prefix(version: str = PI_VERSION) -> Path:
    return NPM_ROOT / f"pi-{version}"


def pi_cli(version: str = PI_VERSION) -> Path:
    """Path of Pi's ``dist/cli.js`` inside the npm prefix (may not exist yet)."""
    return pi_prefix(version) / "node_modules" / "@mariozechner" / "pi-coding-agent" / "dist" / "cli.js"


def _installed_version(version: str) -> str | None:
    pkg = pi_cli(version).parents[1] / "package.json"
    try:
        return str(json.loads(pkg.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_pi(version: str = PI_VERSION, timeout: float = 600) -> Path:
    """Install Pi into ``build/npm/pi-<version>`` if it is not there; return its ``cli.js``.

    Raises :class:`PiUnavailable` when ``npm`` (or ``node``) is not on PATH, and
    ``RuntimeError`` with npm's last output line when the install fails.
    """
    installed = _installed_version(version) == version
    if shutil.which("node") is None or (not installed and shutil.which("npm") is None):
        raise PiUnavailable("npm/node not found on PATH: cannot install the real Pi CLI")
    prefix = pi_prefix(version)
    if not npm_install(PI_PACKAGE, version, prefix, lambda: _installed_version(version) == version,
                       lock=Path(str(prefix) + ".lock"), npm_args=("--loglevel=error",), manifest=False,
                       timeout=timeout):
        raise RuntimeError(f"npm install {PI_PACKAGE}@{version} left no {PI_PACKAGE} {version} in {prefix}")
    return pi_cli(version)


def write_models_json(agent_dir: Path, base_url: str, model: str = "scripted-model",
                      provider: str = PROVIDER) -> Path:
    """Write ``<agent_dir>/models.json`` declaring an ``openai-completions`` provider at ``base_url``."""
    agent_dir.mkdir(parents=True, exist_ok=True)
    path = agent_dir / "models.json"
    path.write_text(json.dumps({
        "providers": {
            provider: {
                "baseUrl": base_url,
                "api": "openai-completions",
                "apiKey": "scripted-not-a-secret",
                "models": [{
                    "id": model,
                    "name": f"{model} (scripted)",
                    "reasoning": False,
                    "input": ["text"],
                    "contextWindow": 128000,
                    "maxTokens": 4096,
                    "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
                }],
            }
        }
    }, indent=2))
    return path


@dataclass
class PiRun:
    """Outcome of one ``pi -p --mode json`` invocation."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration: float  # seconds from spawn to exit
    startup: float | None  # seconds from spawn to the first chat request (None: no request)
    events: list[dict[str, Any]] = field(default_factory=list)
    non_json: list[str] = field(default_factory=list)  # stdout lines that were not JSON

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def tool_ends(self) -> dict[str, dict[str, Any]]:
        """``{toolCallId: tool_execution_end event}``."""
        return {e["toolCallId"]: e for e in self.of_type("tool_execution_end")}

    def messages(self, role: str | None = None) -> list[dict[str, Any]]:
        """Finalised messages (``message_end`` events), optionally filtered by role."""
        msgs = [e["message"] for e in self.of_type("message_end")]
        return [m for m in msgs if role is None or m.get("role") == role]

    def describe(self) -> str:
        """Short diagnostic for assertion messages."""
        return (f"pi exit={self.returncode} after {self.duration:.1f}s; stderr tail: "
                f"{self.stderr.strip()[-600:]!r}; events: {[e.get('type') for e in self.events][-12:]}")


def run_pi(
    project: Path,
    prompt: str | Iterable[str],
    server: ScriptedOpenAI,
    *,
    agent_dir: Path,
    timeout: float = 60,
    extra_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    version: str = PI_VERSION,
) -> PiRun:
    """Run ``pi --provider scripted --model <m> -p --no-session --mode json <prompt...>`` in ``project``.

    ``agent_dir`` becomes ``PI_CODING_AGENT_DIR`` (``models.json`` is (re)written there).
    ``env`` entries are added to the environment.  On timeout the whole process group
    is killed and :class:`PiTimeout` is raised with the output collected so far.
    """
    cli = ensure_pi(version)
    write_models_json(agent_dir, server.url, server.model)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    node = shutil.which("node") or "node"
    args = [node, str(cli), "--provider", PROVIDER, "--model", server.model,
            "-p", "--no-session", "--mode", "json", *extra_args, *prompts]
    full_env = dict(os.environ)
    full_env.update({
        "PI_CODING_AGENT_DIR": str(agent_dir),
        "PI_OFFLINE": "1",
        "PI_SKIP_VERSION_CHECK": "1",
        "PI_TELEMETRY": "0",
    })
    if env:
        full_env.update(env)
    first_before = len(server.chat_request_times())
    started = time.time()
    proc = subprocess.Popen(args, cwd=str(project), env=full_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = proc.communicate()
        raise PiTimeout(f"pi did not exit within {timeout:.0f}s (killed); stderr tail: {stderr.strip()[-600:]!r}; "
                        f"last stdout line: {(stdout.strip().splitlines() or [''])[-1][:300]!r}") from None
    duration = time.time() - started
    chat_times = server.chat_request_times()
    startup = chat_times[first_before] - started if len(chat_times) > first_before else None
    events: list[dict[str, Any]] = []
    non_json: list[str] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            non_json.append(line)
            continue
        if isinstance(obj, dict):
            events.append(obj)
        else:
            non_json.append(line)
    return PiRun(args=args, returncode=proc.returncode, stdout=stdout, stderr=stderr, duration=duration,
                 startup=startup, events=events, non_json=non_json)
