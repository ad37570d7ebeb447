"""The per-call import discipline, in one place.

Every hook command a harness runs before and after each tool call is a fresh interpreter, so what it imports is
what it costs.  This test runs the guard path for real - each harness's pre-call hook allowed and blocked, a shell
command parsed and sandboxed, the post-call activity hook, the lease upkeep of an auto-claiming agent and the
installed ``-I -S`` command - with ``-X importtime``, and fails when any of them imports a heavy module.

The modules it sees loaded are *the guard path*.  Only they may use the ``TYPE_CHECKING = False`` idiom (which keeps
``typing`` out of a process that never needs it); every other module uses ordinary typing, so the idiom's reach is
itself checked here rather than spread by habit.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time

from tests.conftest import REPO
from tests.test_hooks import _imported, claude_event, codex_event, gemini_event, hook, post_event

PACKAGE = pathlib.Path(REPO) / "pi_mesh_plugin"

# Never on any guard path: the host and the CLI's libraries, validation, and the standard modules the hook does
# without (typing's import alone is ~3 ms; dataclasses pulls in inspect and re).
HEAVY = ("click", "pluggy", "jsonschema", "filelock", "dataclasses", "typing", "tomllib", "textual", "psycopg",
         "mcp", "watchdog")
# A call that writes the mesh (the activity after a call, a lease renewed) takes the store's file lock.
HEAVY_WRITING = tuple(m for m in HEAVY if m not in ("filelock", "dataclasses", "typing"))
# The installed command (-I -S, explicit paths, no runpy) does without these as well.
HEAVY_INSTALLED = HEAVY + ("json", "re", "enum", "hashlib", "importlib", "site", "runpy", "collections")


def _installed_argv(flags: tuple[str, ...]) -> list[str]:
    from pi_mesh_plugin.adapters.installers import launch

    argv = launch.argv(["hook", "claude-code"])
    return [argv[0], *flags, *argv[1:]]


def _scenarios(project: str, mesh_factory) -> list[tuple[str, subprocess.CompletedProcess, tuple[str, ...], str]]:
    """(name, the finished run, the modules it must not import, a module it must have imported: the probe works)."""
    mesh_factory("alice").reserve(["src/auth/"], "auth rewrite", cwd=project)
    for i in range(3):
        mesh_factory(f"holder{i}").reserve([f"area{i}/{j}.py" for j in range(30)], "busy", cwd=project)
    mesh_factory("bob")
    time.sleep(0.1)  # past the racy window of the claims index, as any later call is
    free_write = claude_event(project, "Write", {"file_path": f"{project}/src/free.py"})
    held_write = claude_event(project, "Write", {"file_path": f"{project}/src/auth/login.py"})
    events = {
        "claude allowed": ("claude-code", free_write, {}),
        "codex allowed": ("codex", codex_event(project, "*** Begin Patch\n*** Add File: src/free.py\n+x\n"
                                                         "*** End Patch\n"), {}),
        "gemini allowed": ("gemini", gemini_event(project, "write_file", {"file_path": "src/free.py",
                                                                           "content": "x"}), {}),
        "claude blocked, named agent": ("claude-code", held_write, {"PI_MESH_AGENT": "bob"}),
        "shell write parsed": ("claude-code", claude_event(project, "Bash", {
            "command": "sed -i 's/a/b/' notes.txt && git status"}), {"PI_MESH_AGENT": "bob"}),
        "shell write blocked": ("claude-code", claude_event(project, "Bash", {
            "command": "cd src/auth && echo x > login.py"}), {"PI_MESH_AGENT": "bob"}),
        "post-call activity": ("claude-code", post_event("claude-code", project, "Edit", {
            "file_path": f"{project}/src/util.py"}), {"PI_MESH_AGENT": "bob"}),
    }
    probes = {"shell write parsed": "pi_mesh_plugin.shell", "shell write blocked": "pi_mesh_plugin.shell",
              "post-call activity": "pi_mesh_plugin.plugins.activity"}
    runs = []
    for name, (harness, event, env) in events.items():
        hook(harness, event, env=env)  # settles the index file, as the first call of a session does
        r = hook(harness, event, env=env, flags=("-X", "importtime"))
        assert r.returncode == 0, (name, r.stderr[-500:])
        runs.append((name, r, HEAVY_WRITING if name == "post-call activity" else HEAVY,
                     probes.get(name, "pi_mesh_plugin.mesh")))
        if "blocked" in name:
            assert b'"deny"' in r.stdout and b"alice" in r.stdout, (name, r.stdout)
    # the lease upkeep of an agent that claims what it writes
    with open(os.path.join(project, ".pi", "hooks.toml"), "w") as f:
        f.write('[agents.auto]\nauto_claim = true\nauto_claim_ttl = "2m"\n')
    past = time.time() - 60  # an edited hooks.toml is trusted once it is seconds old (see config.py)
    os.utime(os.path.join(project, ".pi", "hooks.toml"), (past, past))
    mesh_factory("auto")
    hook("claude-code", free_write, env={"PI_MESH_AGENT": "auto"})
    r = hook("claude-code", free_write, env={"PI_MESH_AGENT": "auto"}, flags=("-X", "importtime"))
    runs.append(("lease upkeep", r, HEAVY, "pi_mesh_plugin.leases"))
    # the command `pi-mesh install` writes into the harness's settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    installed = lambda *flags: subprocess.run(_installed_argv(flags), input=json.dumps(free_write).encode(),
                                              capture_output=True, env=env, cwd="/", timeout=60, check=False)
    installed()
    r = installed("-X", "importtime")
    runs.append(("installed command", r, HEAVY_INSTALLED, "pi_mesh_plugin.mesh"))
    # a waiter in line: each guarded call settles the queue (grants what has become free), under the store's lock
    mesh_factory("carol").reserve(["src/auth/"], "next in line", cwd=project, queue=True)
    hook("claude-code", held_write, env={"PI_MESH_AGENT": "bob"})
    r = hook("claude-code", held_write, env={"PI_MESH_AGENT": "bob"}, flags=("-X", "importtime"))
    assert b'"deny"' in r.stdout and b"alice" in r.stdout, r.stdout
    runs.append(("blocked, a waiter in line", r, HEAVY_WRITING, "pi_mesh_plugin.mesh"))
    return runs


def _uses_the_idiom(path: pathlib.Path) -> bool:
    return any(line.strip() == "TYPE_CHECKING = False" for line in path.read_text().splitlines())


def test_the_guard_path_imports_nothing_heavy_and_only_it_avoids_typing(project, mesh_factory):
    guard_path: set[str] = set()
    for name, r, heavy, probe in _scenarios(project, mesh_factory):
        assert r.returncode == 0, (name, r.stderr[-500:])
        mods = _imported(r.stderr)
        assert probe in mods, (name, "the probe did not see the run")
        assert sorted(m for m in mods if m.split(".")[0] in heavy) == [], (name, sorted(m for m in mods if m.split(".")[0] in heavy))
        guard_path |= {m for m in mods if m.startswith("pi_mesh_plugin")}
    assert {"pi_mesh_plugin.guard", "pi_mesh_plugin.adapters.hooks.hookcmd", "pi_mesh_plugin.shell.parse"} <= guard_path
    off_path = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        if _uses_the_idiom(path) and module not in guard_path:
            off_path.append(module)
    assert off_path == [], ("these modules are not on the guard path: use `from typing import TYPE_CHECKING`",
                            off_path)
