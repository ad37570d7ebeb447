"""Projects populated with agents, claims and messages, built the fast way.

Agents join through the real API (:meth:`Mesh.join`), with this process as
their owner, so they are live exactly while the benchmark runs.  Claims and
messages in bulk are written straight into the file store's on-disk format
(the same JSON the store writes, validated against the same schemas) rather
than through ``reserve()``/``send()`` one by one: seeding 10,000 claims
through ``reserve()`` would rewrite the claims index 10,000 times and take
minutes.  The claims index (``index/claims.json``) is then rebuilt by the
store's own reader, exactly as after a ``reserve()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from pi_mesh_plugin.clock import iso, new_id, now
from pi_mesh_plugin.mesh import Mesh
from pi_mesh_plugin.schema import validate
from pi_mesh_plugin.store.files import fsio

CHECKED = "src/auth/login.py"  # the unclaimed path the check rows ask about


class Project:
    def __init__(self, root: str) -> None:
        self.root = root
        self.meshes: list[Mesh] = []

    @property
    def mesh_dir(self) -> str:
        return os.path.join(self.root, ".pi", "mesh")

    def mesh(self, agent: str | None, **kw: object) -> Mesh:
        return Mesh(self.root, agent, cwd=self.root, **kw)  # type: ignore[arg-type]

    def join(self, n: int, prefix: str = "agent") -> list[Mesh]:
        out = []
        for i in range(n):
            m = self.mesh(f"{prefix}{i:04d}")
            m.join(pid=os.getpid(), harness="bench")
            out.append(m)
        self.meshes.extend(out)
        return out

    def seed_claims(self, n: int, holders: list[Mesh] | None = None, ttl: float = 3600.0) -> None:
        """``n`` live claims spread over ``holders`` (default: every joined agent), half dirs, half files."""
        holders = holders or self.meshes
        directory = os.path.join(self.mesh_dir, "reservations")
        fsio.ensure_dir(directory)
        t = now()
        created, expires = iso(t), iso(t + ttl)
        for j in range(n):
            h = holders[j % len(holders)]
            is_dir = j % 2 == 0
            path = f"pkg{j % 50}/mod{j}" if is_dir else f"pkg{j % 50}/mod{j - 1}x/file{j}.py"
            rec = {"schema": 1, "id": new_id(), "holder": h.agent, "session": h.session, "path": path,
                   "kind": "dir" if is_dir else "file", "reason": f"bench claim {j}", "created": created,
                   "expires": expires}
            validate("reservation", rec)
            fsio.write_atomic(os.path.join(directory, rec["id"] + ".json"), fsio.dumps(rec), durable=False)
        self.rebuild_index()

    def clear_claims(self) -> None:
        directory = os.path.join(self.mesh_dir, "reservations")
        for fn in os.listdir(directory):
            os.unlink(os.path.join(directory, fn))
        self.rebuild_index()

    def rebuild_index(self) -> None:
        """Let the store's reader rebuild ``index/claims.json`` (it refuses while the directory is racy)."""
        index = self.meshes[0].store.claims.index if self.meshes else self.mesh(None).store.claims.index
        index.stamp = None
        index.files = {}
        time.sleep(0.06)  # past the racy window, so the index file is written
        index.rescan()
        index.write_index_file()

    def seed_messages(self, to: str, n: int, sender: str = "sender", size: int = 200) -> None:
        """``n`` unread messages in ``to``'s inbox."""
        new = os.path.join(self.mesh_dir, "inbox", to, "new")
        fsio.ensure_dir(new)
        t = iso(now())
        text = ("lorem ipsum " * (size // 12 + 1))[:size]
        for _ in range(n):
            rec = {"schema": 1, "id": new_id(), "from": sender, "to": to, "text": text, "urgent": False,
                   "reply_to": None, "thread": None, "created": t}
            with open(os.path.join(new, rec["id"] + ".json"), "wb") as f:
                f.write(fsio.dumps(rec))


def new_project(base: str, name: str) -> Project:
    root = os.path.join(base, name)
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(os.path.join(root, "src", "auth"))
    subprocess.run(["git", "init", "-q", root], check=True)
    with open(os.path.join(root, CHECKED), "w", encoding="utf-8") as f:
        f.write("def login():\n    pass\n")
    return Project(root)
