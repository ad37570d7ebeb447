"""Commits carry only your own work.

**The guard** (:func:`commit_refusal`, called by the pre-commit hook,
:mod:`pi_mesh_plugin.adapters.hooks.git_precommit`): the committer is refused when the
commit would record, for some file, exactly the content another *live* agent
last wrote there (its staged blob id is that agent's ledger entry; a staged
deletion matches a recorded deletion).  Content that changed after the peer's
write - by the committer, a person or a script - is not the peer's any more
and passes (the radar lists files two agents wrote).  A peer hands its files
over with ``pi-mesh handover PATH… --to NAME`` (the ledger entry becomes the
receiver's); a person overrides with ``PI_MESH_OVERRIDE=1 git commit …``
(recorded in the feed as ``override``) or ``git commit --no-verify`` (which
skips every pre-commit hook).

**Who commits**: ``$PI_MESH_AGENT`` (``[mesh] agent``), else the one live agent
whose owner process is an ancestor of the hook (``pi-mesh join`` from the
agent's shell, or the harness that runs ``pi-mesh mcp``); several or none: no
agent, and every agent's work counts as another's.

**``pi-mesh commit -m MSG``** (:func:`commit_own`) stages and commits exactly
the caller's own changed files - those whose last write is the caller's and
which still hold that content - with ``git commit --only``, so whatever else
the shared index holds stays staged and out of this commit.  Files the caller
wrote that changed since are listed, not committed.
"""

from __future__ import annotations

import os

from ..errors import EXIT_BLOCKED, MeshError, NotJoined, UsageError
from .gitstate import GitError, git, staged_blobs
from .ledger import entries, live_names
from .owners import owned_changes, repo_top

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..mesh import Mesh

OVERRIDE = "PI_MESH_OVERRIDE"


class CommitRefused(MeshError):
    exit_code = EXIT_BLOCKED


def committer(mesh: Mesh) -> str | None:
    from ..identity import caller_agent

    return mesh.agent or caller_agent(mesh.store)


def foreign_staged(mesh: Mesh, top: str, me: str | None) -> dict[str, list[str]]:
    """Agent -> the staged paths whose content is exactly that live agent's last write (not ``me``'s)."""
    staged = staged_blobs(top)
    keyed = {}
    for p, blob in staged.items():
        c = mesh.canonical(os.path.join(top, p))
        if c is not None:
            keyed[c] = blob
    if not keyed:
        return {}
    ledger = entries(mesh, list(keyed))
    if not ledger:
        return {}
    live = live_names(mesh)
    out: dict[str, list[str]] = {}
    for c, blob in keyed.items():
        e = ledger.get(c)
        if e is None or e["agent"] == me or e["agent"] not in live:
            continue
        if (blob is None and e.get("deleted")) or (blob is not None and blob == e.get("blob")):
            out.setdefault(e["agent"], []).append(c)
    return out


def refusal(foreign: dict[str, list[str]], me: str | None) -> str:
    who = f"agent {me}" if me else "a committer who is no mesh agent (PI_MESH_AGENT is unset)"
    lines = [f"BLOCKED by pi-mesh: this commit by {who} includes uncommitted work of other live agents:"]
    for agent, paths in sorted(foreign.items()):
        shown = ", ".join(paths[:10]) + (f" (+{len(paths) - 10} more)" if len(paths) > 10 else "")
        lines.append(f"  {agent} last wrote {shown}")
    peers = sorted(foreign)
    lines.append("Commit only your own files with `pi-mesh commit -m MSG`, or unstage theirs "
                 "(git restore --staged PATH). See `pi-mesh whose`.")
    lines.append("Ask first: " + "; ".join(f'pi-mesh send {a} "..."' for a in peers)
                 + (f" - the author may hand them over: pi-mesh handover PATH... --to {me}" if me else ""))
    lines.append(f"A person who is sure may override: {OVERRIDE}=1 git commit ... (or git commit --no-verify).")
    return "\n".join(lines)


def commit_refusal(mesh: Mesh, top: str) -> str | None:
    """The refusal text for the commit being made in ``top``, or ``None`` to let it go ahead."""
    if os.environ.get(OVERRIDE, "") not in ("", "0"):
        mesh.record("override", what="commit", by=committer(mesh))
        return None
    me = committer(mesh)
    foreign = foreign_staged(mesh, top, me)
    if not foreign:
        return None
    for agent, paths in foreign.items():
        mesh.record("blocked", tool="commit", holder=agent, paths=paths[:20], by=me)
    return refusal(foreign, me)


def commit_own(mesh: Mesh, message: str, cwd: str | None = None) -> dict:
    """Stage and commit exactly the caller's own changed files; ``{commit, files, changed_since}``."""
    if not message or not message.strip():
        raise UsageError("pi-mesh commit needs a message: -m MSG")
    me = committer(mesh)
    if not me:
        raise NotJoined("no agent name: pass --agent NAME or set PI_MESH_AGENT (whose files to commit?)")
    top = repo_top(mesh, cwd)
    try:
        owned = owned_changes(mesh, top)
    except GitError as e:
        raise UsageError(str(e)) from None
    mine = [o for o in owned if o.agent == me and o.pending()]
    files = [o.change.path for o in mine if o.matches]
    since = [o.path for o in mine if not o.matches]
    if not files:
        extra = f"; changed since you wrote them (not committed): {', '.join(since)}" if since else ""
        raise UsageError(f"nothing of yours to commit: no changed file holds what {me} last wrote{extra}")
    env = {**os.environ, "PI_MESH_AGENT": me}
    env.pop(OVERRIDE, None)
    try:
        git(["add", "-A", "--", *files], top, env)
        git(["commit", "-q", "-m", message, "--only", "--", *files], top, env)
        rev = git(["rev-parse", "HEAD"], top).decode().strip()
    except GitError as e:
        raise CommitRefused(f"the commit failed: {e}") from None
    mesh.record("commit", command="pi-mesh commit", commit=rev, paths=[o.path for o in mine if o.matches][:20])
    return {"commit": rev, "files": [o.path for o in mine if o.matches], "changed_since": since}


def hand_over(mesh: Mesh, paths: list[str], to: str, cwd: str | None = None) -> list[str]:
    """Make ``to`` the author of the caller's ledger entries for ``paths``; returns the paths handed over."""
    from ..clock import iso, now
    from ..errors import UnknownAgent
    from ..names import validate_name
    from .ledger import tree_id

    me = committer(mesh)
    if not me:
        raise NotJoined("no agent name: pass --agent NAME or set PI_MESH_AGENT (whose files to hand over?)")
    validate_name(to, "recipient")
    rec = mesh.store.get_agent(to)
    if rec is None:
        raise UnknownAgent(to)
    keys = []
    for p in paths:
        c = mesh.canonical(p, cwd)
        if c is None:
            raise UsageError(f"{p} is outside the project {mesh.root}")
        keys.append(c)
    ledger = entries(mesh, keys)
    missing = [k for k in keys if k not in ledger]
    theirs = [f"{k} (last written by {ledger[k]['agent']})" for k in keys if k in ledger and ledger[k]["agent"] != me]
    if missing or theirs:
        raise UsageError("can only hand over files you last wrote: " + ", ".join(
            [f"{k} (no recorded write)" for k in missing] + theirs))
    done = []
    t = iso(now())
    for k in keys:
        if mesh.store.hand_over(tree_id(mesh), k, {"agent": to, "session": rec.get("session"),
                                                   "handed_over_by": me, "handed_over_at": t}):
            done.append(k)
    mesh.record("handover", paths=done[:20], to=to)
    return done
