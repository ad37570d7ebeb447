"""``pi-mesh install git-hook``: write the pre-commit hook that runs :mod:`..hooks.git_precommit`.

The hook goes into the hooks directory git actually uses (``git rev-parse --git-path hooks``, which honours
``core.hooksPath``).  A pre-commit hook already there that is not ours is kept: it is renamed
``pre-commit.pi-mesh-chained`` and our hook runs it first, so installing twice changes nothing and
``--uninstall`` puts it back.
"""

from __future__ import annotations

import os
import sys

import click

from ...errors import UsageError
from ..hooks.git_precommit import CHAINED, MARK, GitError, run_git

def hooks_dir(cwd: str) -> str:
    """The hooks directory git uses for the repository at ``cwd`` (``core.hooksPath`` honoured)."""
    rel = run_git(["rev-parse", "--git-path", "hooks"], cwd).decode().strip()
    return os.path.normpath(os.path.join(cwd, rel))


def hook_script(python: str) -> str:
    import shlex

    py = shlex.quote(python)
    return f"""#!/bin/sh
{MARK} (installed by `pi-mesh install git-hook`; reinstalling is safe).
# Refuses a commit touching a path another live agent has reserved. The committing agent is $PI_MESH_AGENT.
# A pre-commit hook that was here before runs first: {CHAINED}
hookdir=$(dirname "$0")
if [ -e "$hookdir/{CHAINED}" ]; then
    "$hookdir/{CHAINED}" "$@" || exit $?
fi
if [ ! -x {py} ]; then
    echo "BLOCKED by pi-mesh: the pre-commit hook's interpreter {py} is gone; run \\`pi-mesh install git-hook\\` again" >&2
    exit 1
fi
exec {py} -m pi_mesh_plugin hook git-pre-commit
"""


def _is_ours(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return MARK.encode() in f.read(4096)
    except OSError:
        return False


def install(cwd: str, python: str | None = None) -> list[str]:
    """Install (or refresh) the hook; returns what was done, one line each."""
    d = hooks_dir(cwd)
    os.makedirs(d, exist_ok=True)
    hook = os.path.join(d, "pre-commit")
    chained = os.path.join(d, CHAINED)
    done = []
    if os.path.lexists(hook) and not _is_ours(hook):
        if os.path.lexists(chained):
            raise UsageError(f"{hook} is not pi-mesh's and {chained} exists too; merge them by hand first")
        os.replace(hook, chained)
        done.append(f"pi-mesh: kept the existing pre-commit hook as {chained} (it runs first)")
    tmp = f"{hook}.pi-mesh-{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(hook_script(python or sys.executable))
    os.chmod(tmp, 0o755)
    os.replace(tmp, hook)
    done.append(f"pi-mesh: pre-commit hook installed in {hook}")
    return done


def uninstall(cwd: str) -> list[str]:
    d = hooks_dir(cwd)
    hook = os.path.join(d, "pre-commit")
    chained = os.path.join(d, CHAINED)
    if not _is_ours(hook):
        return [f"pi-mesh: no pi-mesh pre-commit hook in {d}; nothing to do"]
    os.unlink(hook)
    if os.path.lexists(chained):
        os.replace(chained, hook)
        return [f"pi-mesh: removed the hook; the previous pre-commit hook is back in {hook}"]
    return [f"pi-mesh: removed the pre-commit hook from {d}"]


@click.command("git-hook")
@click.option("--uninstall", "remove", is_flag=True, help="Remove the hook (and restore a chained one).")
@click.pass_context
def install_command(ctx: click.Context, remove: bool) -> None:
    """Install a git pre-commit hook refusing commits that touch other agents' claims."""
    obj = ctx.find_root().obj
    root = getattr(obj, "root", None) or os.getcwd()
    try:
        lines = uninstall(root) if remove else install(root)
    except GitError as e:
        raise UsageError(f"not a git repository? {e}") from None
    for line in lines:
        click.echo(line)



