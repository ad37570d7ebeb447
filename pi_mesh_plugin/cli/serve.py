"""``pi-mesh serve``: the JSON-lines sidecar the Pi extension talks to (see :mod:`pi_mesh_plugin.adapters.servers.sidecar`)."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.option("--no-watch", is_flag=True, help="Poll the inbox instead of watching it (inotify, or LISTEN/NOTIFY on PostgreSQL).")
@click.option("--poll", type=click.FloatRange(min=0.01), metavar="SECONDS",
              help="Inbox poll interval (default 0.25 s when polling, 2 s as a safety net when watching).")
@click.pass_obj
def serve(ctx: Any, no_watch: bool, poll: float | None) -> None:
    """Serve one Pi session: JSON-line requests on stdin, responses and inbox events on stdout.

    Requests look like {"id": 1, "op": "hello", "name": "pi-1", "pid": 1234}; ops: hello, ping, tools,
    pre_tool_call, call_tool, post_tool_call, ack, status, leave.  The sidecar leaves the mesh at EOF.
    """
    from ..adapters.servers.sidecar import serve as run

    code = run(ctx.root, ctx.agent_name, ctx.config_path, watch=not no_watch, poll=poll)
    if code:
        raise click.exceptions.Exit(code)
