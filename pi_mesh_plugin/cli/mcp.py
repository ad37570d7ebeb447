"""``pi-mesh mcp``: serve the mesh's tools to an MCP client over stdio (see :mod:`pi_mesh_plugin.adapters.servers.mcp`)."""

from __future__ import annotations

import sys

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from . import Context


@click.command()
@click.option("--harness", metavar="NAME", help="What spawned this server (claude-code, codex, gemini, ...); "
              "recorded in the agent's entry and used for a generated name.")
@click.pass_obj
def mcp(ctx: Context, harness: str | None) -> None:
    """Serve the mesh's tools (send_message, read_inbox, reserve, release, list_agents, plugins' tools)
    to an MCP client on stdin/stdout.  Joins as --agent / $PI_MESH_AGENT (else a generated name) with the
    parent process as owner, and leaves on exit."""
    try:
        import mcp as _sdk  # noqa: F401
    except ModuleNotFoundError:
        raise click.ClickException("the MCP SDK is not installed: pip install 'pi-mesh-plugin[mcp]'") from None
    from ..adapters.servers.mcp import run

    sys.exit(run(ctx.root, ctx.agent_name, ctx.config_path, harness))
