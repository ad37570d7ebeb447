"""Authorship commands: whose, commit, handover, radar (see :mod:`pi_mesh_plugin.authorship`)."""

from __future__ import annotations

import os

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from . import Context

pass_ctx = click.pass_obj


@click.command()
@click.argument("paths", nargs=-1)
@pass_ctx
def whose(ctx: Context, paths: tuple[str, ...]) -> None:
    """For each changed file (git status), the agent that last wrote it - or "changed outside any agent"."""
    from ..authorship.owners import describe
    from ..authorship.owners import whose as rows_of

    rows = rows_of(ctx.mesh, list(paths) or None, cwd=os.getcwd())
    width = max((len(r["path"]) for r in rows), default=0)
    ctx.out(rows, "\n".join(f"{r['status']} {r['path']:<{width}}  {describe(r)}" for r in rows)
            or "no uncommitted changes")


@click.command()
@click.option("-m", "--message", required=True, help="The commit message.")
@pass_ctx
def commit(ctx: Context, message: str) -> None:
    """Stage and commit exactly your own changed files (what you last wrote and nobody changed since)."""
    from ..authorship.commits import commit_own

    done = commit_own(ctx.mesh, message, cwd=os.getcwd())
    text = f"committed {done['commit'][:12]}: {', '.join(done['files'])}"
    if done["changed_since"]:
        text += f"\nnot committed (changed since you wrote them): {', '.join(done['changed_since'])}"
    ctx.out(done, text)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--to", "to", required=True, metavar="NAME", help="The agent that takes the files over.")
@pass_ctx
def handover(ctx: Context, paths: tuple[str, ...], to: str) -> None:
    """Hand your uncommitted changes of PATHS to agent NAME (it may then commit or discard them)."""
    from ..authorship.commits import hand_over

    done = hand_over(ctx.mesh, list(paths), to, cwd=os.getcwd())
    ctx.out({"to": to, "paths": done}, f"handed over to {to}: {', '.join(done)}")


@click.command()
@pass_ctx
def radar(ctx: Context) -> None:
    """Files two agents changed, and changes in linked worktrees that would conflict at merge time."""
    from ..authorship.radar import format_radar, scan

    found = scan(ctx.mesh, cwd=os.getcwd())
    ctx.out(found, format_radar(found))
