"""The edit ledger on plain files: ``ledger/<tree-key>/<path-key>.json``, one file per written path.

Each file holds the latest write recorded for one canonical path: which agent
(and session) wrote it, the git blob id of the content it left (``null`` for a
deletion), its size and mtime, the tool, the time, and the working tree
(``tree``: ``host:root``) it was written in.  ``<tree-key>`` is the first 16
hex digits of the SHA-256 of ``tree`` (a mesh directory shared by working
trees keeps them apart).  The path key is the path with ``%``,
``/`` and a leading ``.`` percent-encoded (``src%2Fauth%2Flogin.py.json``), or
``h-<sha256>.json`` for a path too long for a file name.

Writes are :func:`.fsio.write_atomic` (a reader sees the old entry or the new
one).  Two writers of one path race benignly: the later replace wins, which is
what "last writer" means - except that an entry is not taken over by another
agent for the *same* content (a second post-call hook that merely saw a peer's
write does not steal it), and an entry remembers the other agents that wrote
the path before (``earlier``; :func:`merge`).
"""

from __future__ import annotations

import os

from . import fsio

MAX_KEY = 200


def key(path: str) -> str:
    k = path.replace("%", "%25").replace("/", "%2F")
    if k.startswith("."):
        k = "%2E" + k[1:]
    if len(k.encode("utf-8", "surrogateescape")) > MAX_KEY:
        import hashlib

        k = "h-" + hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()
    return k + ".json"


MAX_EARLIER = 8


def same_content(a: dict, b: dict) -> bool:
    return a.get("blob") == b.get("blob") and bool(a.get("deleted")) == bool(b.get("deleted"))


def merge(old: dict | None, new: dict) -> dict | None:
    """The entry to store when ``new`` is recorded over ``old``; ``None`` to keep ``old``.

    The new entry carries ``earlier``: the other agents that wrote the path before, newest last, each
    ``{agent, blob, deleted, ts}`` (at most :data:`MAX_EARLIER`) - who else has work in the file, for the
    radar and the destructive-git guard to judge against the time of the last commit.
    """
    if old is None or old.get("tree") != new.get("tree"):
        return new
    if old["agent"] != new["agent"] and same_content(old, new):
        return None
    earlier = [e for e in old.get("earlier") or [] if isinstance(e, dict) and e.get("agent") != new["agent"]]
    if old["agent"] != new["agent"]:
        earlier = [e for e in earlier if e.get("agent") != old["agent"]]
        earlier.append({k: old.get(k) for k in ("agent", "blob", "deleted", "ts")})
    return {**new, "earlier": earlier[-MAX_EARLIER:]} if earlier else new


class Ledger:
    def __init__(self, mesh_dir: str) -> None:
        self.directory = os.path.join(mesh_dir, "ledger")

    def _dir(self, tree: str) -> str:
        import hashlib

        return os.path.join(self.directory, hashlib.sha256(tree.encode("utf-8", "surrogateescape")).hexdigest()[:16])

    def _file(self, tree: str, path: str) -> str:
        return os.path.join(self._dir(tree), key(path))

    def _read(self, file: str, warnings: list[str] | None = None) -> dict | None:
        try:
            rec = fsio.read_json(file)
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as e:
            if warnings is not None:
                warnings.append(f"ledger entry {file} {e}; ignored")
            return None
        return rec if isinstance(rec.get("path"), str) and isinstance(rec.get("agent"), str) else None

    def record(self, entry: dict) -> dict:
        """Store ``entry`` as the latest write of its path; returns the entry now stored.  An existing entry of
        another agent with the same content and tree is kept."""
        fsio.ensure_dir(self.directory)
        fsio.ensure_dir(self._dir(entry["tree"]))
        file = self._file(entry["tree"], entry["path"])
        old = self._read(file)
        new = merge(old, entry)
        if new is None:
            return old  # type: ignore[return-value]
        fsio.write_atomic(file, fsio.dumps(new))
        return new

    def get(self, tree: str, paths: list[str] | None = None, warnings: list[str] | None = None) -> list[dict]:
        if paths is None:
            d = self._dir(tree)
            files = [os.path.join(d, n) for n in sorted(fsio.listdir(d)) if n.endswith(".json")]
        else:
            files = [self._file(tree, p) for p in dict.fromkeys(paths)]
        out = []
        for f in files:
            rec = self._read(f, warnings)
            if rec is not None and rec.get("tree") == tree:
                out.append(rec)
        return out

    def hand_over(self, tree: str, path: str, changes: dict) -> dict | None:
        file = self._file(tree, path)
        old = self._read(file)
        if old is None or old.get("tree") != tree:
            return None
        new = {**old, **changes}
        fsio.write_atomic(file, fsio.dumps(new))
        return new
