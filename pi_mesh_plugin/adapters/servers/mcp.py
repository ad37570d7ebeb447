"""``pi-mesh mcp``: the mesh's tools over the Model Context Protocol (stdio), on the official ``mcp`` SDK.

Every tool the plugin host exposes to this agent (the built-in ``send_message``,
``read_inbox``, ``reserve``, ``release``, ``list_agents`` and any plugin's) is
listed with its own JSON Schema - the SDK's low-level :class:`Server` takes the
schemas as they are - and called through
:meth:`~pi_mesh_plugin.host.PluginHost.call_tool`, which validates the arguments
and asks the pre-call hook.  A :class:`~pi_mesh_plugin.errors.MeshError` (a
conflict naming the holder, an unknown recipient, bad arguments) comes back as
a tool error (``isError``) in one line, for the model to read and act on.

Identity: ``--agent`` / ``$PI_MESH_AGENT`` / ``[mesh] agent`` in hooks.toml, else a
generated name.  The server joins on start with its parent process - the
harness that spawned it - as the owner (so the agent lives exactly as long as
the harness session), heartbeats while it runs, and leaves on exit.
"""

from __future__ import annotations

import contextlib
import os
import sys

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from anyio import CapacityLimiter
    from mcp.server.lowlevel import Server

    from ...host import PluginHost

SERVER_NAME = "pi-mesh"


def build_server(host: PluginHost, limiter: CapacityLimiter | None = None) -> Server:
    import anyio.to_thread
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from ... import __version__
    from ...errors import MeshError

    mesh = host.mesh
    one_at_a_time = limiter if limiter is not None else anyio.CapacityLimiter(1)  # one Mesh, used serially

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        specs = await anyio.to_thread.run_sync(host.tools, limiter=one_at_a_time)
        return types.ListToolsResult(tools=[types.Tool(name=t.name, description=t.description,
                                                       input_schema=t.parameters) for t in specs])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        def run() -> tuple[str, bool]:
            try:
                return host.render(host.call_tool(params.name, dict(params.arguments or {}), cwd=mesh.cwd)), False
            except MeshError as e:
                return f"error: {e}", True
            except Exception as e:  # noqa: BLE001 - a failing tool is a tool error, never a dead server
                return f"internal error: {type(e).__name__}: {' '.join(str(e).split())}", True

        text, failed = await anyio.to_thread.run_sync(run, limiter=one_at_a_time)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=failed)

    instructions = (f"You are agent {mesh.agent!r} in a mesh of coding agents sharing this repository. Reserve "
                    "paths before editing them, read your inbox, and message holders of paths you need.")
    return Server(SERVER_NAME, version=__version__, instructions=instructions, on_list_tools=list_tools,
                  on_call_tool=call_tool)


def default_name(harness: str | None) -> str:
    prefix = {"claude-code": "claude"}.get(harness or "", harness or "mcp")
    prefix = "".join(c for c in prefix if c.isalnum() or c in "-_")[:40] or "mcp"
    return f"{prefix}-{os.urandom(3).hex()}"


def run(root: str | None = None, agent: str | None = None, config_path: str | None = None,
        harness: str | None = None) -> int:
    """Serve until stdin closes; join before, leave after.  Returns the exit code."""
    import anyio
    from mcp.server.stdio import stdio_server

    from ...host import PluginHost
    from ...mesh import Mesh

    mesh = Mesh(root, agent, config_path=config_path)
    owner = os.getppid()
    mesh.join(mesh.agent or default_name(harness), harness=harness, pid=owner if owner > 1 else os.getpid())
    for note in mesh.notices:
        print(f"pi-mesh mcp: {note}", file=sys.stderr)
    host = PluginHost(mesh)
    limiter = anyio.CapacityLimiter(1)
    server = build_server(host, limiter)

    async def heartbeat() -> None:
        period = max(1.0, float(mesh.config.heartbeat_ttl or 60) / 3)
        while True:
            await anyio.sleep(period)
            # A missed heartbeat is not fatal (the owner process keeps a local agent live); the next one retries.
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(mesh.heartbeat, limiter=limiter)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream), anyio.create_task_group() as tg:
            tg.start_soon(heartbeat)
            await server.run(read_stream, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()

    from ...signals import end_on_term, ignore_term

    end_on_term(SystemExit)
    try:
        anyio.run(main)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        ignore_term()
        try:
            mesh.leave()
        except Exception as e:  # noqa: BLE001 - report, do not mask the exit
            print(f"pi-mesh mcp: could not leave the mesh: {e}", file=sys.stderr)
        mesh.close()
    return 0
