"""Who is calling (pi_mesh_plugin/identity.py), with real process trees: this test process owns the agents, a
child process asks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pi_mesh_plugin.mesh import Mesh

ASK = """
import json, sys
from pi_mesh_plugin.identity import ancestors, caller_agent, is_callers
from pi_mesh_plugin.store.files import FileStore
store = FileStore(sys.argv[1])
print(json.dumps({"ancestors": ancestors(__import__("os").getpid()),
                  "any": caller_agent(store), "claude": caller_agent(store, "claude-code"),
                  "codex": caller_agent(store, "codex"),
                  "is_alice_claude": is_callers(store, "alice", "claude-code"),
                  "is_alice_codex": is_callers(store, "alice", "codex")}))
"""


def ask(project: str, via_shell: bool = False) -> dict:
    argv = [sys.executable, "-c", ASK, project]
    if via_shell:  # a grandchild: the owner is two levels up
        argv = ["sh", "-c", '"$0" "$@"; exit $?', *argv]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def test_the_nearest_owning_ancestor_names_the_caller(project) -> None:
    alice = Mesh(project, "alice", cwd=project)
    alice.join(pid=os.getpid(), harness="claude-code")
    got = ask(project, via_shell=True)
    assert os.getpid() in got["ancestors"]
    assert got["any"] == "alice" and got["claude"] == "alice" and got["codex"] is None
    assert got["is_alice_claude"] is True and got["is_alice_codex"] is False


def test_a_process_owning_two_agents_is_ambiguous_and_names_nobody(project) -> None:
    for name in ("alice", "bob"):
        Mesh(project, name, cwd=project).join(pid=os.getpid(), harness="claude-code")
    got = ask(project)
    assert got["any"] is None and got["claude"] is None
    assert got["is_alice_claude"] is True  # the holder's own check still holds


def test_an_owner_that_is_not_an_ancestor_or_is_gone_names_nobody(project) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        Mesh(project, "carol", cwd=project).join(pid=sleeper.pid, harness="claude-code")
        assert ask(project)["any"] is None  # a live agent, but not this caller's ancestor
    finally:
        sleeper.kill()
        sleeper.wait()
    assert ask(project)["any"] is None
