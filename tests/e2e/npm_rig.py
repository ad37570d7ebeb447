"""The shared part of the real-harness rigs (``claude_rig``, ``codex_rig``, ``gemini_rig``, ``pi_rig``).

* :func:`npm_install`: a pinned ``npm install`` into an npm prefix under ``build/npm/``
  (ignored by git), once across concurrent pytest-xdist workers (a file lock), skipped
  when the caller's readiness check already answers;
* :func:`version_output`: what a binary prints for ``--version``;
* :func:`offline_env`: this environment without a harness's credentials/endpoints and
  proxies, with ``NO_PROXY`` for the scripted server on 127.0.0.1;
* :func:`run_timed` / :func:`json_lines`: run a CLI once and read its JSON-lines output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_ROOT = REPO_ROOT / "build" / "npm"

T = TypeVar("T")


class RigUnavailable(Exception):
    """The CLI cannot be installed or run here; the message says why."""


def npm_install(package: str, version: str, prefix: Path, ready: Callable[[], T | None], *,
                lock: Path | None = None, npm_args: Sequence[str] = ("--save-exact",),
                manifest: bool = True, timeout: float = 600) -> T | None:
    """``ready()``, after installing ``package@version`` into ``prefix`` with npm if it was not ready.

    The install runs under a file lock (``lock``, default ``<prefix>/.install.lock``) and is
    skipped when ``ready()`` answers once the lock is held (another worker installed it).
    With ``manifest`` a private ``package.json`` is written first.  Raises
    :class:`RigUnavailable` when npm is absent and ``RuntimeError`` (npm's last output line)
    when npm fails; returns what ``ready()`` says afterwards, which the caller checks.
    """
    found = ready()
    if found:
        return found
    npm = shutil.which("npm")
    if not npm:
        raise RigUnavailable(f"npm is not installed, so {package} cannot be installed")
    from filelock import FileLock  # concurrent pytest-xdist workers install once

    prefix.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock or prefix / ".install.lock")):
        found = ready()
        if found:
            return found
        package_json = prefix / "package.json"
        if manifest and not package_json.exists():
            package_json.write_text(json.dumps({"name": f"pi-mesh-{prefix.name}-rig", "private": True}) + "\n")
        spec = f"{package}@{version}"
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", *npm_args, spec],
                              cwd=prefix, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise RuntimeError(f"npm install {spec} failed (exit {proc.returncode}): {tail[0]}")
    return ready()


def version_output(binary: Path, env: dict[str, str] | None = None) -> str | None:
    """``binary --version``'s stdout (stripped), or None if it does not run, fails or prints nothing."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def offline_env(drop_prefixes: tuple[str, ...], proxies: tuple[str, ...] = ("HTTP_PROXY", "HTTPS_PROXY"),
                **extra: str) -> dict[str, str]:
    """``os.environ`` without the variables starting with ``drop_prefixes`` or naming a proxy, plus
    ``NO_PROXY`` for the scripted server and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes) and k.upper() not in proxies}
    env.update(NO_PROXY="127.0.0.1,localhost", **extra)
    return env


def run_timed(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess,
                                                                                        float]:
    """Run a CLI to its end (no stdin, output captured); the process and how many seconds it took."""
    started = time.monotonic()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    return proc, time.monotonic() - started


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects among ``stdout``'s lines (other lines are skipped)."""
    events = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    return events
