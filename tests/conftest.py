"""Shared fixtures.  Backend-specific fixtures live in their own modules, loaded here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest_plugins = [p for p in ("tests.pg_fixtures",) if os.path.exists(
    os.path.join(os.path.dirname(__file__), p.split(".")[-1] + ".py"))]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PI_MESH = [sys.executable, "-m", "pi_mesh_plugin"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test inherits the developer's mesh identity or configuration."""
    for var in ("PI_MESH_AGENT", "PI_MESH_ROOT", "PI_MESH_CONFIG", "PI_MESH_STORE", "PI_MESH_CRASH_AT",
                "PI_MESH_HOSTNAME", "PI_MESH_LOAD_PLUGINS", "PI_MESH_PROJECT_ID", "PI_MESH_CLOCK_OFFSET",
                "PI_MESH_SHARE"):
        monkeypatch.delenv(var, raising=False)
    # The governors (pi_mesh_plugin/limits.py) would refuse the floods the delivery and race tests make on purpose;
    # tests of the governors themselves take the `governed` fixture.
    monkeypatch.setenv("PI_MESH_LIMITS", "off")


@pytest.fixture
def governed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The governors as a user gets them (hooks.toml and the defaults decide)."""
    monkeypatch.delenv("PI_MESH_LIMITS", raising=False)


@pytest.fixture
def project(tmp_path):  # -> str
    """A fresh project directory (a real git repository) with a src/auth/ tree."""
    root = tmp_path / "project"
    (root / "src" / "auth").mkdir(parents=True)
    (root / "src" / "auth" / "login.py").write_text("def login():\n    pass\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return str(root)


@pytest.fixture
def mesh_factory(project):
    """``make(name, join=True, **kw)`` -> a joined :class:`Mesh` for agent ``name`` in ``project``."""
    from pi_mesh_plugin.mesh import Mesh

    made = []

    def make(name: str | None, join: bool = True, **kw):
        m = Mesh(project, name, **kw)
        if join and name:
            m.join()
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def run_cli(*args: str, cwd: str | None = None, env: dict | None = None, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``pi-mesh`` in a real process."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([*PI_MESH, *args], cwd=cwd, env=full_env, input=input, capture_output=True, text=True,
                          timeout=timeout)
