"""Which project a path belongs to: found from the path, never from the caller's working directory.

A directory is the top of a repository when its ``.git`` entry is a real one:
a directory holding ``HEAD``, or a file ``gitdir: X`` whose ``X`` holds
``HEAD`` (a submodule, a linked worktree).  A stray ``.git`` (an empty file,
an empty directory) is no boundary.

:func:`governing_roots` lists every project whose claims cover a path: the
innermost repository holding it and, while that repository is a submodule
(its ``.git`` file points into a ``modules/`` directory and the repository
above lists it in ``.gitmodules``), the superproject too - a claim on
``vendor/`` covers ``vendor/lib/x.c`` inside the submodule ``vendor/lib``.

:func:`shared_root` is where the mesh of a linked worktree lives: the main
worktree of its repository, read from the ``.git`` file and ``commondir``
directly (no git subprocess on the per-call path).

On the per-call guard path: ``os`` only, a few ``stat`` calls per path.
"""

from __future__ import annotations

import os

_S_IFMT, _S_IFDIR = 0o170000, 0o040000


def git_dir(top: str) -> str | None:
    """The git directory of the repository whose work tree is ``top``, or ``None`` if ``top/.git`` is not one."""
    entry = os.path.join(top, ".git")
    try:
        mode = os.stat(entry).st_mode
    except OSError:
        return None
    if mode & _S_IFMT == _S_IFDIR:
        return entry if os.path.isfile(os.path.join(entry, "HEAD")) else None
    target = _gitdir_file(entry)
    if target is None:
        return None
    target = os.path.normpath(os.path.join(top, target))
    return target if os.path.isfile(os.path.join(target, "HEAD")) else None


def _gitdir_file(entry: str) -> str | None:
    try:
        with open(entry, "rb") as f:
            data = f.read(4097)
    except OSError:
        return None
    if len(data) > 4096 or not data.startswith(b"gitdir:"):
        return None
    try:
        target = data[7:].decode().strip()
    except UnicodeDecodeError:
        return None
    return target or None


def repo_top(start: str) -> str | None:
    """The innermost directory at or above ``start`` (absolute) that is the top of a real repository."""
    d = start
    while True:
        if git_dir(d) is not None:
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def governing_roots(full: str) -> list[str]:
    """The tops of the repositories whose claims cover the absolute, resolved path ``full``, innermost first."""
    top = repo_top(full)
    out: list[str] = []
    while top is not None:
        out.append(top)
        top = _superproject(top)
    return out


def _superproject(top: str) -> str | None:
    """The repository ``top`` is a submodule of, or ``None``."""
    gd = git_dir(top)
    if gd is None or "/modules/" not in gd or os.path.isdir(os.path.join(top, ".git")):
        return None  # a submodule's git dir lives in its superproject's .git/modules/
    parent = os.path.dirname(top)
    if parent == top:
        return None
    sup = repo_top(parent)
    if sup is None:
        return None
    rel = os.path.relpath(top, sup)
    try:
        with open(os.path.join(sup, ".gitmodules"), encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "path" and value.strip().strip('"').rstrip("/") == rel:
            return sup
    return None


def common_dir(top: str) -> str | None:
    """The common git directory of the repository at ``top`` (the main worktree's ``.git``)."""
    gd = git_dir(top)
    if gd is None:
        return None
    try:
        with open(os.path.join(gd, "commondir"), encoding="utf-8") as f:
            rel = f.read(4096).strip()
    except OSError:
        return gd
    return os.path.normpath(os.path.join(gd, rel)) if rel else gd


def shared_root(top: str) -> str:
    """The work tree whose ``.pi/mesh/`` all worktrees of ``top``'s repository share: the main worktree.

    ``top`` itself when it is the main worktree, not a linked one, or the main worktree cannot be told
    (a bare common directory)."""
    gd = git_dir(top)
    if gd is None or os.path.isdir(os.path.join(top, ".git")):
        return top
    common = common_dir(top)
    if common is None or common == gd:
        return top  # a submodule's own git dir, not a linked worktree
    if os.path.basename(common) == ".git":
        main = os.path.dirname(common)
        if git_dir(main) == common:
            return main
    return top


def worktree_of(top: str) -> tuple[str, str | None]:
    """``(worktree top, branch or None when detached)`` of the checkout at ``top``, read from its HEAD."""
    gd = git_dir(top)
    branch = None
    if gd is not None:
        try:
            with open(os.path.join(gd, "HEAD"), encoding="utf-8") as f:
                head = f.read(4096).strip()
        except OSError:
            head = ""
        if head.startswith("ref: refs/heads/"):
            branch = head[len("ref: refs/heads/"):]
    return top, branch
