"""The edit ledger: recording each write an agent made, and reading who wrote what.

:func:`record_writes` is called by the post-call hook for every finished call
that wrote files; it hashes each file as the write left it (the git blob id,
so it compares directly with what ``git`` stages) and stores one entry per
path (see the package docstring).  It never fails the call: a file that
cannot be read is recorded without a blob id.  Directories are not recorded
(``rm -r dir/`` is the files' deletion, which a later ``git status`` shows).

A file larger than :data:`MAX_HASH_BYTES` is recorded by size and mtime only
(``blob`` null, ``unhashed`` true); it "still has that content" while both
are unchanged.
"""

from __future__ import annotations

import os

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..mesh import Mesh

MAX_HASH_BYTES = 256 << 20
CHUNK = 1 << 20


def blob_id(data: bytes) -> str:
    """The git (SHA-1) blob id of ``data``: what ``git hash-object`` prints."""
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def file_state(full: str) -> dict | None:
    """``{blob, deleted, size, mtime_ns}`` of the file at ``full`` as git would store it (a symlink is its
    target text); ``None`` for a directory."""
    import hashlib
    import stat

    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return {"blob": None, "deleted": True, "size": 0, "mtime_ns": 0}
    except OSError:
        return {"blob": None, "deleted": False, "size": 0, "mtime_ns": 0, "unhashed": True}
    if stat.S_ISDIR(st.st_mode):
        return None
    out: dict[str, object] = {"blob": None, "deleted": False, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        if stat.S_ISLNK(st.st_mode):
            out["blob"] = blob_id(os.fsencode(os.readlink(full)))
        elif stat.S_ISREG(st.st_mode) and st.st_size <= MAX_HASH_BYTES:
            h = hashlib.sha1(b"blob %d\0" % st.st_size, usedforsecurity=False)
            n = 0
            with open(full, "rb") as f:
                while True:
                    b = f.read(CHUNK)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
            if n == st.st_size:
                out["blob"] = h.hexdigest()
            else:  # it changed while being read: hash what is there now, in one read
                with open(full, "rb") as f:
                    data = f.read(MAX_HASH_BYTES + 1)
                out["blob"], out["size"] = blob_id(data), len(data)
        else:
            out["unhashed"] = True
    except OSError:
        out["unhashed"] = True
    return out


def matches(entry: dict, state: dict | None) -> bool:
    """Does the file (its :func:`file_state`) still hold what ``entry`` recorded?"""
    if state is None:
        return False
    if entry.get("deleted") or state.get("deleted"):
        return bool(entry.get("deleted")) and bool(state.get("deleted"))
    if entry.get("blob") and state.get("blob"):
        return bool(entry["blob"] == state["blob"])
    return bool(entry.get("size") == state.get("size") and entry.get("mtime_ns") == state.get("mtime_ns"))


def tree_id(mesh: Mesh) -> str:
    """The working tree the mesh's files live in: ``host:root``."""
    from ..liveness import this_host

    return f"{this_host()}:{mesh.root_real}"


def record_writes(mesh: Mesh, files: list[str], tool: str, session: str | None = None) -> list[dict]:
    """Record that ``mesh.agent`` just wrote ``files`` (canonical paths; ``dir/`` entries are skipped)."""
    if not mesh.agent:
        return []
    from ..clock import iso, now

    tree, ts, out = tree_id(mesh), iso(now()), []
    session = session or mesh.session
    if session is None:
        rec = mesh.store.get_agent(mesh.agent)
        session = rec.get("session") if rec else None
    for path in files:
        if path.endswith("/") or path == ".":
            continue
        state = file_state(os.path.join(mesh.root, path))
        if state is None:
            continue
        entry = {"schema": 1, "path": path, "tree": tree, "agent": mesh.agent, "session": session, **state,
                 "tool": tool, "ts": ts}
        out.append(mesh.store.record_write(entry))
    return out


def entries(mesh: Mesh, paths: list[str] | None = None) -> dict[str, dict]:
    """The ledger of this working tree: canonical path -> latest entry."""
    return {e["path"]: e for e in mesh.store.ledger(tree_id(mesh), paths)}


def live_names(mesh: Mesh) -> set[str]:
    store = mesh.store
    return {a["name"] for a in store.list_agents() if store.is_live(a)}
