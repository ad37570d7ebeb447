"""The git pre-commit guard: refuse a commit that touches another live agent's claim.

``pi-mesh install git-hook`` (:mod:`..installers.git`) writes the ``pre-commit`` hook; a pre-commit hook
that was there before runs first (its failure fails the commit, its changes to the index are then checked).

At commit time the hook runs ``pi-mesh hook git-pre-commit`` (equivalently
``python -m pi_mesh_plugin.adapters.hooks.git_precommit``), which reads the staged
changes (``git diff --cached --name-status -M -z``) and checks every path
against the live claims, exactly as an ``edit`` would be checked - both names
of a rename count, as does a deleted file.  The committing agent is
``$PI_MESH_AGENT`` (else ``[mesh] agent`` in hooks.toml); its own claims do
not block it.  A commit by no known agent (a person at a terminal, a script)
is checked against every claim.  A refusal names each path, its holder and the
reason, and exits 1; ``git commit --no-verify`` still bypasses it, as it does
every pre-commit hook.  If the mesh cannot be read, the commit is refused
unless ``on_store_error = "allow"``.

It also refuses a commit that would carry another live agent's uncommitted
work (:mod:`pi_mesh_plugin.authorship.commits`; ``PI_MESH_OVERRIDE=1`` lets a
person through).
"""

from __future__ import annotations

import os
import subprocess
import sys

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...mesh import Mesh
    from ...records import Block

MARK = "# pi-mesh pre-commit hook"
CHAINED = "pre-commit.pi-mesh-chained"
EXIT_REFUSED = 1


class GitError(Exception):
    pass


def run_git(args: list[str], cwd: str) -> bytes:
    try:
        p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if p.returncode != 0:
        msg = " ".join(p.stderr.decode("utf-8", "replace").split()) or f"exit {p.returncode}"
        raise GitError(f"git {' '.join(args)}: {msg}")
    return p.stdout


# -- the check ---------------------------------------------------------------------
def staged_changes(cwd: str) -> list[tuple[str, list[str]]]:
    """``(status, paths)`` of each staged change; a rename or copy has two paths (old, new)."""
    raw = run_git(["diff", "--cached", "--name-status", "-M", "-z", "--no-color", "--no-ext-diff"], cwd)
    fields = raw.split(b"\0")
    out: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i].decode("ascii", "replace")
        n = 2 if status[:1] in ("R", "C") else 1
        paths = [os.fsdecode(f) for f in fields[i + 1:i + 1 + n]]
        out.append((status, paths))
        i += 1 + n
    return out


def written_paths(changes: list[tuple[str, list[str]]]) -> list[str]:
    """The paths a commit changes: both names of a rename, only the new name of a copy."""
    out: list[str] = []
    for status, paths in changes:
        touched = paths[1:] if status.startswith("C") else paths
        for p in touched:
            if p not in out:
                out.append(p)
    return out


def check_commit(mesh: Mesh, top: str) -> list[Block]:
    """Every block the staged changes of the worktree at ``top`` run into: each changed path is put to
    :func:`~pi_mesh_plugin.host.decide` as a ``commit`` that writes it (so a plugin's veto of a write
    holds for a commit too)."""
    from ...host import decide
    from ...records import Block, ToolCall

    blocks = []
    for path in written_paths(staged_changes(top)):
        b = decide(mesh, ToolCall(tool="commit", writes=[(path, "file")], agent=mesh.agent, cwd=top,
                                  harness="git", raw_tool="git commit"))
        if isinstance(b, Block):  # a commit is never rewritten: an answer is a Block or None
            blocks.append(b)
    return blocks


def refusal(blocks: list, agent: str | None) -> str:
    who = f"agent {agent}" if agent else "a committer who is no mesh agent (PI_MESH_AGENT is unset)"
    lines = [f"BLOCKED by pi-mesh: this commit by {who} touches paths reserved by other agents:"]
    for b in blocks:
        if b.holder:
            lines.append(f"  {b.canonical} - reserved by agent {b.holder}: \"{b.reason}\" (expires {b.expires})")
        else:  # a plugin's veto, or the mesh could not be read
            lines.append("  " + " ".join(b.message.split()))
    holders = sorted({b.holder for b in blocks if b.holder})
    lines.append("Coordinate first: " + "; ".join(f"pi-mesh send {h} \"...\"" for h in holders)
                 + " - or unstage those paths (git restore --staged PATH). "
                 "Only a person who is sure may bypass this with git commit --no-verify.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``pi-mesh hook git-pre-commit``: exit 0 to let the commit go ahead, 1 to refuse it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write("usage: pi-mesh hook git-pre-commit  (run by git's pre-commit hook in the worktree)\n")
        return 0
    if args:
        sys.stderr.write(f"pi-mesh hook git-pre-commit: unexpected argument {args[0]!r}\n")
        return 2
    mesh = None
    try:
        top = run_git(["rev-parse", "--show-toplevel"], os.getcwd()).decode().strip()
        from ...mesh import Mesh

        mesh = Mesh(None, None, cwd=top)
        blocks = check_commit(mesh, top)
        from ...authorship.commits import commit_refusal  # commits carry only the committer's own work

        authored = commit_refusal(mesh, top)
    except Exception as e:  # noqa: BLE001 - one line, and fail closed unless configured otherwise
        from ...errors import MeshError

        why = str(e) if isinstance(e, (MeshError, GitError)) else f"{type(e).__name__}: {e}"
        why = " ".join(why.split())
        try:
            fail_open = bool(mesh.config.fail_open) if mesh is not None else False
        except Exception:  # noqa: BLE001
            fail_open = False
        if fail_open:
            sys.stderr.write(f"pi-mesh: warning: cannot check the commit ({why}); allowed because "
                             f"on_store_error = \"allow\"\n")
            return 0
        sys.stderr.write(f"BLOCKED by pi-mesh: cannot check this commit against the reservations ({why}). "
                         f"Run `pi-mesh doctor`; commits are refused while the mesh cannot be read "
                         f"(on_store_error = \"block\").\n")
        return EXIT_REFUSED
    if authored:
        sys.stderr.write(authored + "\n")
        if not blocks:
            return EXIT_REFUSED
    if not blocks:
        return 0
    mesh.close()  # decide() recorded each block in the feed
    sys.stderr.write(refusal(blocks, mesh.agent) + "\n")
    return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
