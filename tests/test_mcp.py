"""``pi-mesh mcp`` driven by the official MCP SDK's own stdio client, as a real subprocess."""

from __future__ import annotations

import os
import sys
import time

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.conftest import REPO

REASON = "refactoring the session tokens"


def _params(project: str, agent: str | None = "carol") -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    if agent:
        env["PI_MESH_AGENT"] = agent
    return StdioServerParameters(command=sys.executable, args=["-m", "pi_mesh_plugin", "mcp", "--harness", "test"],
                                 env=env, cwd=project)


def _text(result) -> str:  # CallToolResult
    return "".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def _session(project: str, agent: str | None, body, errlog=None):
    async def main():
        async with stdio_client(_params(project, agent), errlog=errlog or sys.stderr) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await body(session)

    return anyio.run(main)


def test_tools_reserve_send_read_and_errors_as_tool_errors(project, mesh_factory):
    from pi_mesh_plugin.host import PluginHost

    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], REASON, cwd=project)
    expected = {t.name: t for t in PluginHost(alice).tools()}
    seen: dict = {}

    async def body(session):
        seen["tools"] = (await session.list_tools()).tools
        ok = await session.call_tool("reserve", {"paths": ["src/api/"], "reason": "adding routes"})
        # visible to every other process the moment the call returned
        seen["claims"] = {(r.holder, r.path) for r in alice.reservations()}
        seen["block"] = alice.check("src/api/routes.py", cwd=project)
        conflict = await session.call_tool("reserve", {"paths": ["src/auth/login.py"], "reason": "fix login"})
        sent = await session.call_tool("send_message", {"to": "alice", "text": "please release src/auth/"})
        seen["alice_inbox"] = [(m.sender, m.text) for m in alice.read_inbox()]
        alice.send("carol", "done in 10 minutes", urgent=True)
        inbox = await session.call_tool("read_inbox", {})
        again = await session.call_tool("read_inbox", {})
        unknown = await session.call_tool("send_message", {"to": "nobody", "text": "hi"})
        invalid = await session.call_tool("reserve", {"paths": "src/x.py"})
        released = await session.call_tool("release", {})
        return ok, conflict, sent, inbox, again, unknown, invalid, released

    ok, conflict, sent, inbox, again, unknown, invalid, released = _session(project, "carol", body)
    # every tool the plugin host exposes, with its own JSON Schema
    tools = seen["tools"]
    assert {t.name for t in tools} == set(expected) >= {"send_message", "read_inbox", "reserve", "release",
                                                         "list_agents"}
    for t in tools:
        assert t.input_schema == expected[t.name].parameters
        assert t.description == expected[t.name].description

    assert not ok.is_error and _text(ok).startswith("reserved src/api/ until ")
    assert ("carol", "src/api") in seen["claims"]
    assert seen["block"] is not None and seen["block"].holder == "carol"

    assert conflict.is_error
    assert "alice" in _text(conflict) and REASON in _text(conflict)
    assert ("carol", "src/auth/login.py") not in {(r.holder, r.path) for r in alice.reservations()}

    assert not sent.is_error and "sent to alice" in _text(sent)
    assert seen["alice_inbox"] == [("carol", "please release src/auth/")]

    assert not inbox.is_error
    assert "from alice" in _text(inbox) and "done in 10 minutes" in _text(inbox) and "urgent" in _text(inbox)
    assert _text(again) == "no unread messages"

    assert unknown.is_error and "nobody" in _text(unknown)
    assert invalid.is_error and "invalid arguments" in _text(invalid)
    assert not released.is_error and "src/api/" in _text(released)
    for result in (conflict, unknown, invalid):
        assert "Traceback" not in _text(result) and len(_text(result).splitlines()) == 1


def test_joins_with_the_parent_as_owner_and_leaves_on_exit(project, mesh_factory, tmp_path):
    observer = mesh_factory(None, join=False)
    seen: dict = {}

    async def body(session):
        seen["agents"] = {a.name: a for a in observer.agents()}
        await session.call_tool("reserve", {"paths": ["docs/"], "reason": "docs"})
        listing = await session.call_tool("list_agents", {})
        return listing

    with open(tmp_path / "err.log", "w") as err:
        listing = _session(project, None, body, errlog=err)
    (name,) = seen["agents"]
    agent = seen["agents"][name]
    assert name.startswith("test-") and agent.harness == "test" and agent.live
    assert agent.pid == os.getpid()  # the process that spawned the server owns the agent
    line = _text(listing).strip()
    assert line.startswith(f"{name} (live, test, you)") and line.endswith("holds docs/")
    deadline = time.monotonic() + 10
    while observer.agents() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert observer.agents() == [] and observer.reservations() == []


def test_a_name_held_by_another_live_agent_is_refused(project, mesh_factory):
    import subprocess

    owner = subprocess.Popen(["sleep", "60"])  # alice lives in another process than the server's parent
    try:
        mesh_factory("alice", join=False).join(pid=owner.pid)
        p = _params(project, "alice")
        r = subprocess.run([p.command, *p.args], env=p.env, cwd=project, input="", capture_output=True, text=True, check=False,
                           timeout=60)
        assert r.returncode == 3
        assert "held by a live agent" in r.stderr and "Traceback" not in r.stderr
        assert [a.name for a in mesh_factory(None, join=False).agents()] == ["alice"]
    finally:
        owner.kill()
        owner.wait()
