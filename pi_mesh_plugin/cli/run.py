"""``pi-mesh run -- CMD...``: run a command as a guarded shell command - the parser first, then the sandbox.

For what no hook reaches: scripts, build steps, harnesses without a shell hook (Codex).  The command
is put to :func:`~pi_mesh_plugin.host.decide` as a ``bash`` call of the calling agent; a block is
printed and the exit code is 3, nothing run; otherwise the command replaces this process, wrapped in
the bubblewrap sandbox (:mod:`pi_mesh_plugin.sandbox`) when other agents hold claims, so its exit
code is the command's.  One argument is a shell command line (``pi-mesh run -- 'make && make test'``);
several are a program and its arguments.  Where bwrap cannot run, a one-line warning says so and the
command runs with the parser's check alone.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import EXIT_BLOCKED, UsageError
from . import Context

pass_ctx = click.pass_obj


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@pass_ctx
def run(ctx: Context, command: tuple[str, ...]) -> None:
    """Run COMMAND with other agents' claims read-only (bubblewrap); exit 3 if the parser blocks it."""
    import shlex

    from ..host import decide
    from ..records import Allow, ToolCall
    from ..sandbox import BASH, fallback_notice

    line = command[0] if len(command) == 1 else shlex.join(command)
    if not line.strip():
        raise UsageError("run: the command is empty")
    mesh = ctx.mesh
    answer = decide(mesh, ToolCall(tool="bash", input={"command": line}, agent=mesh.agent, cwd=mesh.cwd,
                                   harness="run", raw_tool="pi-mesh run"))
    if answer is not None and not isinstance(answer, Allow):
        click.echo(answer.message, err=True)
        sys.exit(EXIT_BLOCKED)
    if isinstance(answer, Allow):
        line = answer.input["command"]
    else:
        unsandboxed = fallback_notice(mesh)
        if unsandboxed and mesh.reservations():
            click.echo(f"pi-mesh: warning: {unsandboxed}", err=True)
    mesh.close()
    sys.stdout.flush()
    shell = BASH if os.access(BASH, os.X_OK) else "/bin/sh"
    os.execv(shell, [shell, "-c", line])
