"""The multi-user model of the file store: private to its owner by default, group-shared by ``[mesh] share``.

A second real Unix user (``nobody``, through ``runuser``) tries to read another user's mail and to write
into the mesh.  The project lives in a world-traversable folder, so only the mesh's own modes stand
between that user and the files.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

SECRET = "the staging password is in the vault"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"),
                                reason="needs root and runuser to act as a second user")


def as_nobody(*cmd: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "nobody", "--", *cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def shared_root():
    """A project under /tmp that every user may traverse, whose ``.pi/mesh`` was made for a team: owned by its
    creator, group ``nogroup`` (nobody's), mode 2770."""
    root = tempfile.mkdtemp(prefix="pi-mesh-share-", dir="/tmp")
    os.chmod(root, 0o755)
    subprocess.run(["git", "init", "-q", root], check=True)
    os.makedirs(os.path.join(root, "src", "auth"))
    with open(os.path.join(root, "src", "auth", "login.py"), "w") as f:
        f.write("x = 1\n")
    os.makedirs(os.path.join(root, ".pi", "mesh"))
    os.chmod(os.path.join(root, ".pi"), 0o755)
    os.chown(os.path.join(root, ".pi", "mesh"), -1, pwd.getpwnam("nobody").pw_gid)
    os.chmod(os.path.join(root, ".pi", "mesh"), 0o2770)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def use_the_mesh(root: str, share: str | None) -> str:
    """Make every kind of file the store writes; the path of bob's unread message."""
    from pi_mesh_plugin.authorship.ledger import record_writes
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.files import modes

    if share:
        with open(os.path.join(root, ".pi", "hooks.toml"), "w") as f:
            f.write(f'[mesh]\nshare = "{share}"\n')
    try:
        alice, bob = Mesh(root, "alice"), Mesh(root, "bob")
        alice.join()
        bob.join()
        alice.reserve(["src/auth/", "docs/"], "refactoring")  # two paths: a batch marker too
        bob.reserve(["src/auth/"], "next", queue=True)  # the waiting line
        assert bob.check("src/auth/login.py") is not None  # the claims index
        alice.send("bob", SECRET)
        alice.broadcast("hello all")
        record_writes(alice, [os.path.join(root, "src", "auth", "login.py")], "edit")  # the ledger
        new = os.path.join(root, ".pi", "mesh", "inbox", "bob", "new")
        mine = [f for f in os.listdir(new) if SECRET in _read(os.path.join(new, f))]
        assert len(mine) == 1
        alice.close()
        bob.close()
        return os.path.join(new, mine[0])
    finally:
        modes.set_share("private")  # the policy is the process's: later tests start from the default


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def modes_in(mesh: str) -> dict[str, int]:
    out = {}
    for d, dirs, files in os.walk(mesh):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, mesh)] = os.lstat(p).st_mode
    out["."] = os.lstat(mesh).st_mode
    return out


def test_private_by_default_another_user_can_read_nothing(shared_root):
    msg = use_the_mesh(shared_root, None)
    mesh = os.path.join(shared_root, ".pi", "mesh")
    found = modes_in(mesh)
    kinds = {p.split(os.sep)[0] for p in found}
    assert {"agents", "inbox", "reservations", "queue", "ledger", "feed.jsonl", "locks", "index"} <= kinds, kinds
    loose = {p: oct(stat.S_IMODE(m)) for p, m in found.items() if stat.S_IMODE(m) & 0o077}
    assert loose == {}, loose  # no bit for the group or others anywhere, the mesh folder itself included
    r = as_nobody("cat", msg, cwd="/")
    assert r.returncode != 0 and "Permission denied" in r.stderr and SECRET not in r.stdout
    r = as_nobody("sh", "-c", f"echo forged > {mesh}/inbox/bob/new/1-forged.json", cwd="/")
    assert r.returncode != 0 and not os.path.exists(f"{mesh}/inbox/bob/new/1-forged.json")
    r = as_nobody("ls", f"{mesh}/reservations", cwd="/")
    assert r.returncode != 0


def test_group_mode_shares_the_mesh_with_the_group_and_nobody_else(shared_root):
    msg = use_the_mesh(shared_root, "group")
    mesh = os.path.join(shared_root, ".pi", "mesh")
    gid = grp.getgrnam("nogroup").gr_gid
    for p, m in modes_in(mesh).items():
        full = os.path.join(mesh, p) if p != "." else mesh
        assert os.lstat(full).st_gid == gid, p  # setgid folders: everything belongs to the mesh's group
        if stat.S_ISDIR(m):
            assert stat.S_IMODE(m) == 0o2770, (p, oct(m))
        elif not p.startswith("feed."):  # a rotated feed generation is read-only on purpose
            assert stat.S_IMODE(m) == 0o660, (p, oct(m))
    r = as_nobody("cat", msg, cwd="/")
    assert r.returncode == 0 and SECRET in r.stdout, r
    probe = f"{mesh}/inbox/bob/tmp/probe"
    r = as_nobody("sh", "-c", f"echo x > {probe}", cwd="/")
    assert r.returncode == 0 and os.path.exists(probe), r
    # others (not in the group) still see nothing: the mesh folder has no bit for them
    assert stat.S_IMODE(os.lstat(mesh).st_mode) & 0o007 == 0


def test_share_is_validated(shared_root):
    from pi_mesh_plugin.errors import ConfigError
    from pi_mesh_plugin.mesh import Mesh

    with open(os.path.join(shared_root, ".pi", "hooks.toml"), "w") as f:
        f.write('[mesh]\nshare = "world"\n')
    with pytest.raises(ConfigError, match="share"):
        Mesh(shared_root, "alice")
