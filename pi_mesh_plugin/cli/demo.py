"""``pi-mesh demo``: a scripted two-agent story in a temporary project.

alice claims ``src/auth/``; bob's edit of ``src/auth/login.py`` is blocked
with alice's name and reason; bob messages alice; alice replies and releases;
bob's edit goes through.  Every step uses the same API the adapters use, and
the state is shown the way a person would look at it: ``ls`` and ``cat``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import click


def _say(text: str) -> None:
    click.echo(click.style(text, bold=True))


def _ls(root: str) -> None:
    mesh = os.path.join(root, ".pi", "mesh")
    lines = []
    for dirpath, dirnames, filenames in os.walk(mesh):
        dirnames[:] = [d for d in dirnames if d not in ("locks", "index")]
        rel = os.path.relpath(dirpath, root)
        lines += [f"    {rel}/{f}" for f in filenames if not f.startswith(".")]
    for line in sorted(lines):
        click.echo(line)


@click.command()
@click.option("--keep", is_flag=True, help="Keep the temporary project and print its path.")
def demo(keep: bool) -> None:
    """Two agents, one claim, one blocked edit, one conversation."""
    from ..host import PluginHost
    from ..mesh import Mesh
    from ..records import Block, ToolCall

    tmp = tempfile.mkdtemp(prefix="pi-mesh-demo-")
    root = os.path.join(tmp, "project")
    os.makedirs(os.path.join(root, "src", "auth"))
    subprocess.run(["git", "init", "-q", root], check=False, capture_output=True)
    login = os.path.join(root, "src", "auth", "login.py")
    with open(login, "w") as f:
        f.write("def login(user):\n    return True\n")

    # Each agent is a sidecar-like session: its own Mesh and plugin host.  The
    # owner process is this one (both agents live while the demo runs).
    alice = Mesh(root, "alice", cwd=root)
    bob = Mesh(root, "bob", cwd=os.path.join(root, "src"))  # bob works from a subdirectory
    alice.join(harness="pi", model="scripted")
    bob.join(harness="claude-code", model="scripted")
    a_tools, b_tools = PluginHost(alice), PluginHost(bob)
    click.echo(f"project: {root}\n")

    _say("1. alice claims src/auth/ before refactoring it")
    click.echo("   " + a_tools.call_tool("reserve", {"paths": ["src/auth/"], "reason": "refactoring login flow",
                                                     "ttl": "30m"}))

    _say("\n2. bob (working in src/) tries to edit auth/login.py - blocked before it runs")
    call = ToolCall(tool="edit", paths=["auth/login.py"], agent="bob", cwd=bob.cwd, harness="claude-code")
    block = b_tools.pre_tool_call(call)
    assert isinstance(block, Block), "the demo expects the edit to be blocked"
    click.echo("   " + block.message.replace("\n", "\n   "))

    _say("\n3. bob coordinates instead of clobbering")
    click.echo("   " + b_tools.call_tool("send_message", {
        "to": "alice", "text": "I need to add rate limiting to login(); how long will you hold src/auth/?"}))

    _say("\n4. alice reads her inbox, replies in the thread and releases")
    msgs = alice.read_inbox()
    click.echo("   " + a_tools.call_tool("read_inbox", {"all": True}).replace("\n", "\n   "))
    click.echo("   " + a_tools.call_tool("send_message", {"to": "bob", "reply_to": msgs[0].id,
                                                         "text": "Done with login.py - it's yours."}))
    click.echo("   " + a_tools.call_tool("release", {}))

    _say("\n5. bob's edit goes through")
    assert b_tools.pre_tool_call(call) is None
    with open(login, "a") as f:
        f.write("# rate limited by bob\n")
    click.echo("   edit allowed; src/auth/login.py written")
    click.echo("   bob's inbox: " + b_tools.call_tool("read_inbox", {}).replace("\n", "\n   "))

    _say("\n6. everything is plain files - `ls .pi/mesh`:")
    _ls(root)
    _say("\n   and the feed (`pi-mesh feed`):")
    from .feed import format_event

    for ev in alice.feed():
        click.echo("    " + format_event(ev))
    alice.leave()
    bob.leave()
    if keep:
        click.echo(f"\nkept {root}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.flush()
