"""The conflict radar: work that is about to collide, found before anyone merges.

:func:`scan` reports

* ``shared``: files of this working tree with uncommitted changes written by
  two or more live agents (the last writer and those that wrote it earlier,
  after its last commit);
* ``worktrees``: for each other linked worktree of the repository (``git
  worktree list``), its uncommitted changes and the files that would conflict
  if it were merged with this one.  Each side is taken as it stands -
  committed *and* uncommitted work: its index is copied to a temporary index,
  ``git add -A`` there gives the tree of the working files, ``git
  commit-tree`` a commit on top of its HEAD (an unreferenced object; nothing
  in either worktree changes), and ``git merge-tree --write-tree
  --name-only`` of the two commits names the conflicting files without
  touching any working tree or index.

:func:`edit_warning` is what an agent about to edit a file is told when
another worktree has uncommitted changes to the same path (a warning, never
a block): the adapters add it to the tool result.
"""

from __future__ import annotations

import os
import shutil
import tempfile

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

from .gitstate import GitError, git, status, toplevel, worktrees
from .owners import owned_changes

if TYPE_CHECKING:
    from ..mesh import Mesh


def _others(top: str) -> list[dict]:
    here = os.path.realpath(top)
    return [w for w in worktrees(top) if "path" in w and not w.get("bare") and not w.get("prunable")
            and os.path.realpath(w["path"]) != here and os.path.isdir(w["path"])]


def snapshot(top: str) -> str:
    """A commit of the worktree at ``top`` as it stands (HEAD plus every uncommitted change)."""
    index = os.path.join(top, os.fsdecode(git(["rev-parse", "--git-path", "index"], top).strip()))
    tmpdir = tempfile.mkdtemp(prefix="pi-mesh-radar-")
    try:
        tmp = os.path.join(tmpdir, "index")
        if os.path.exists(index):
            shutil.copyfile(index, tmp)
        env = {**os.environ, "GIT_INDEX_FILE": tmp}
        git(["add", "-A", "--", "."], top, env)
        tree = git(["write-tree"], top, env).decode().strip()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    head = git(["rev-parse", "-q", "--verify", "HEAD"], top, check=False).decode().strip()
    args = ["commit-tree", tree, "-m", "pi-mesh radar snapshot"] + (["-p", head] if head else [])
    env = {**os.environ, "GIT_AUTHOR_NAME": "pi-mesh", "GIT_AUTHOR_EMAIL": "pi-mesh@localhost",
           "GIT_COMMITTER_NAME": "pi-mesh", "GIT_COMMITTER_EMAIL": "pi-mesh@localhost"}
    return git(args, top, env).decode().strip()


def merge_conflicts(top: str, a: str, b: str) -> list[str]:
    """Files that merging commits ``a`` and ``b`` would leave in conflict (``git merge-tree --write-tree``)."""
    import subprocess

    p = subprocess.run(["git", "merge-tree", "--write-tree", "--name-only", "--no-messages",
                        "--allow-unrelated-histories", a, b], cwd=top, capture_output=True, check=False)
    if p.returncode == 0:
        return []
    if p.returncode != 1:
        raise GitError("git merge-tree: " + (" ".join(p.stderr.decode("utf-8", "replace").split())
                                             or f"exit {p.returncode}"))
    lines = p.stdout.decode("utf-8", "surrogateescape").splitlines()
    return list(dict.fromkeys(line for line in lines[1:] if line))


def _authors(root: str, paths: list[str]) -> dict[str, str]:
    """path -> the agent that last wrote it in the worktree at ``root`` (its own mesh)."""
    if not paths:
        return {}
    from ..mesh import Mesh
    from .ledger import entries

    try:
        m = Mesh(root, None, cwd=root)
    except Exception:  # noqa: BLE001 - a worktree whose mesh cannot be opened has no names to show
        return {}
    try:
        keyed = {}
        for p in paths:
            c = m.canonical(os.path.join(root, p))
            if c is not None:
                keyed[c] = p
        return {keyed[k]: e["agent"] for k, e in entries(m, list(keyed)).items() if k in keyed}
    except Exception:  # noqa: BLE001
        return {}
    finally:
        m.close()


def scan(mesh: Mesh, cwd: str | None = None, cross: bool = True) -> dict:
    top = toplevel(cwd or mesh.cwd)
    if top is None:
        from ..errors import UsageError

        raise UsageError(f"{cwd or mesh.cwd} is not inside a git working tree")
    shared = []
    for o in owned_changes(mesh, top):
        if not o.entry:
            continue
        writers = ([o.agent] if o.live else []) + o.co_writers(top)
        if len(set(writers)) >= 2:
            shared.append({"path": o.path, "agents": list(dict.fromkeys(writers))})
    found: dict = {"top": top, "shared": shared, "worktrees": []}
    if not cross:
        return found
    others = _others(top)
    if not others:
        return found
    mine = snapshot(top)
    for w in others:
        changed = [c.path for c in status(w["path"])]
        conflicts = merge_conflicts(top, mine, snapshot(w["path"]))
        authors = _authors(w["path"], list(dict.fromkeys(changed + conflicts)))
        found["worktrees"].append({
            "path": w["path"], "branch": (w.get("branch") or "").removeprefix("refs/heads/") or None,
            "uncommitted": [{"path": p, "agent": authors.get(p)} for p in changed],
            "conflicts": [{"path": p, "agent": authors.get(p)} for p in conflicts]})
    return found


def format_radar(found: dict) -> str:
    lines = []
    for s in found["shared"]:
        lines.append(f"{s['path']}: uncommitted changes by {' and '.join(s['agents'])}")
    for w in found["worktrees"]:
        where = f"worktree {w['path']}" + (f" (branch {w['branch']})" if w["branch"] else "")
        for c in w["conflicts"]:
            by = f", last written there by {c['agent']}" if c["agent"] else ""
            lines.append(f"{c['path']}: would CONFLICT at merge with {where}{by}")
        if w["uncommitted"]:
            lines.append(f"{where}: {len(w['uncommitted'])} uncommitted file(s): "
                         + ", ".join(u["path"] for u in w["uncommitted"][:10])
                         + (" …" if len(w["uncommitted"]) > 10 else ""))
    return "\n".join(lines) or "no collisions in sight"


def summary(mesh: Mesh) -> str | None:
    """One line for ``pi-mesh agents``: what the radar sees, or ``None`` when nothing (or no git)."""
    try:
        found = scan(mesh)
    except Exception:  # noqa: BLE001 - the listing must not fail for the radar
        return None
    conflicts = sum(len(w["conflicts"]) for w in found["worktrees"])
    bits = []
    if found["shared"]:
        bits.append(f"{len(found['shared'])} file(s) changed by two agents")
    if conflicts:
        bits.append(f"{conflicts} file(s) would conflict with other worktrees")
    return ("radar: " + "; ".join(bits) + " - run `pi-mesh radar`") if bits else None


def edit_warning(mesh: Mesh, path: str, cwd: str | None = None) -> str | None:
    """A warning when another linked worktree has uncommitted changes to ``path`` (as an edit tool names
    it), else ``None``.  Never raises."""
    try:
        top = toplevel(cwd or mesh.cwd)
        if top is None:
            return None
        full = os.path.realpath(os.path.join(cwd or mesh.cwd, path))
        rel = os.path.relpath(full, os.path.realpath(top))
        if rel.startswith(".."):
            return None
        hits = []
        for w in _others(top):
            if any(c.path == rel for c in status(w["path"], paths=[rel])):
                who = _authors(w["path"], [rel]).get(rel)
                hits.append(f"{w['path']}" + (f" (branch {w['branch'].removeprefix('refs/heads/')})"
                                              if w.get("branch") else "") + (f", by {who}" if who else ""))
    except Exception:  # noqa: BLE001 - a warning that cannot be computed is no warning
        return None
    if not hits:
        return None
    return (f"pi-mesh: note: {rel} has uncommitted changes in another worktree: {'; '.join(hits)}. "
            "Editing it here may conflict at merge time - see `pi-mesh radar`, and message the author.")
