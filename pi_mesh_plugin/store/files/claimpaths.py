"""The path of a claim file read from ``reservations/``, in the one form ``check`` looks up.

The mesh writes every claim with a canonical path (:mod:`pi_mesh_plugin.paths`): relative to the
project root, ``/``-separated, no ``.``, ``..`` or empty component, no trailing ``/``, NFC, ``.``
for the whole project.  ``check`` looks claims up by exactly that string, so a claim file placed by
hand (or by another tool) with another spelling of a path - ``src/auth/``, ``./src/auth``,
``src//auth``, an absolute path - would be listed by ``claims`` yet never enforced.  So every claim
file is read through :func:`canonical_claim` before it joins the index:

* spellings with one meaning are rewritten in memory (the file is left as it is): ``./``, ``//``,
  ``.`` components, a trailing ``/`` (which also makes it a ``dir`` claim, as ``reserve`` would),
  a path absolute under the project root (as spelled, or resolved), non-NFC text;
* spellings that cannot be read one way are set aside, like any bad file (``doctor`` reports them,
  ``doctor --fix`` moves them to ``bad/reservations/``): a ``..`` component (what it means depends
  on symlinks), an absolute path outside the project, a NUL, or a path through a symlink inside
  the project (``check`` resolves the symlink, so the claim would never match; claim the real path).

Both ``claims`` and ``check`` then read the same index: what one lists as live, the other enforces
(a hypothesis test places random claim files and compares the two).
"""

from __future__ import annotations

import os

from ... import paths as P


def lexical(path: str) -> str | None:
    """``path`` with ``.``/empty components dropped and NFC applied; ``None`` if it has a ``..``."""
    parts = []
    for c in path.split("/"):
        if c == "" or c == ".":
            continue
        if c == "..":
            return None
        parts.append(c)
    return P._nfc("/".join(parts)) if parts else P.ROOT


def canonical_claim(rec: dict, root: str, root_real: str) -> dict:
    """``rec`` (schema-valid) with its path in canonical form; ``ValueError`` saying why if it has none.

    ``root`` is the project root as the store knows it, ``root_real`` the same resolved
    (:func:`pi_mesh_plugin.paths.normalise_root`)."""
    path = rec["path"]
    if "\x00" in path:
        raise ValueError("holds a path with a NUL character")
    if path.startswith("/"):
        rel = _under(path, root) if root else None
        if rel is None:
            rel = _under(path, root_real)
        if rel is None:
            raise ValueError(f"claims {path[:200]!r}, which is outside the project {root}")
    else:
        rel = lexical(path)
        if rel is None:
            raise ValueError(f"claims {path[:200]!r}: a '..' in a claim has no single meaning; claim the real path")
    if _no_symlink(rel, root_real, path):
        rel = P.fold_by_fs(rel, root_real)  # beneath a mount point: folded as reserve() folds it there
    kind = rec["kind"]
    if path.endswith("/") or path.endswith("/.") or rel == P.ROOT:
        kind = P.DIR
    if rel == path and kind == rec["kind"]:
        return rec
    return {**rec, "path": rel, "kind": kind}


def _under(path: str, root: str) -> str | None:
    rel = lexical(path)
    if rel is None:
        return None
    full = "/" + rel if rel != P.ROOT else "/"
    return P.relative_to_root(full, root.rstrip("/") or "/")


def _no_symlink(rel: str, root_real: str, given: str) -> bool:
    """Refuse a claim whose path passes through (or is) a symlink inside the project; ``True`` when it
    crosses into another file system (a mount point beneath the root)."""
    if rel == P.ROOT:
        return False
    cur = root_real
    try:
        dev = os.lstat(root_real).st_dev
    except OSError:
        return False
    crossed = False
    for name in rel.split("/"):
        cur = os.path.join(cur, name)
        try:
            st = os.lstat(cur)
        except OSError:
            return crossed  # the rest does not exist yet: nothing to resolve
        mode = st.st_mode
        crossed = crossed or st.st_dev != dev
        if mode & 0o170000 == 0o120000:
            raise ValueError(f"claims {given[:200]!r}, which goes through the symlink "
                             f"{os.path.relpath(cur, root_real)}; claim the real path")
    return crossed
