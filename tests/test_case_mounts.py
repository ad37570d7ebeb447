"""Case folding per file system: a real case-insensitive mount (a FAT image, fusefat) inside a case-sensitive project.

``vendor/share`` is the FAT mount; ``vendor/other`` a plain directory beside it.  A claim on
``vendor/share/Auth/`` covers every spelling of the names beneath the mount, on both sides (the
claim, the write, a hand-placed claim file), while the sibling and the mount point's own name keep
their case.  Needs root, mkfs.vfat, fusefat and /dev/fuse (CI has them: there it must run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from pi_mesh_plugin import ReservationConflict
from pi_mesh_plugin.host import decide
from pi_mesh_plugin.records import ToolCall
from tests.conftest import REPO, run_cli


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "mounting a FAT image with fusefat needs root"
    for tool in ("mkfs.vfat", "fusefat", "fusermount"):
        if not shutil.which(tool):
            return f"{tool} is not installed (Debian: dosfstools, fusefat)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    return None


@pytest.fixture
def fat_project(project, tmp_path):
    why = _why_not()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the case-insensitive mount test: {why}")
        print(f"skipping: {why}")
        pytest.skip(why)
    mnt = os.path.join(project, "vendor", "share")
    os.makedirs(mnt)
    os.makedirs(os.path.join(project, "vendor", "other", "Auth"))
    img = str(tmp_path / "fat.img")
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.vfat", img], check=True, capture_output=True, timeout=60)
    subprocess.run(["fusefat", "-o", "rw+", img, mnt], check=True, capture_output=True, timeout=60)
    try:
        os.makedirs(os.path.join(mnt, "Auth"))
        with open(os.path.join(mnt, "Auth", "login.py"), "w") as f:
            f.write("x = 1\n")
        yield project
    finally:
        if subprocess.run(["fusermount", "-u", mnt], capture_output=True).returncode != 0:
            subprocess.run(["fusermount", "-u", "-z", mnt], capture_output=True)


def _hook_denies(root: str, path: str) -> str | None:
    """A real ``pi-mesh hook claude-code`` process for a Write of ``path`` as bob: the reason if denied."""
    event = {"session_id": "s", "transcript_path": None, "cwd": root, "permission_mode": "acceptEdits",
             "hook_event_name": "PreToolUse", "tool_name": "Write",
             "tool_input": {"file_path": path, "content": "x = 2\n"}, "tool_use_id": "toolu_1"}
    env = {**os.environ, "PI_MESH_AGENT": "bob", "PYTHONPATH": REPO}
    r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin", "hook", "claude-code"], input=json.dumps(event),
                       capture_output=True, text=True, env=env, cwd=root, timeout=60)
    if r.returncode == 0 and r.stdout == "":
        return None
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny", out
    return str(out["permissionDecisionReason"])


def test_a_case_insensitive_mount_folds_beneath_it_and_nowhere_else(fat_project, mesh_factory):
    root = fat_project
    alice = mesh_factory("alice")
    alice.reserve(["vendor/share/Auth/"], "auth on the shared FAT volume")
    alice.reserve(["vendor/other/Auth/"], "auth beside it")
    bob = mesh_factory("bob")

    # beneath the mount, every spelling is the claimed directory: the check, the decision, the hook process
    for spelling in ("vendor/share/AUTH/LOGIN.PY", "vendor/share/auth/login.py", "vendor/share/aUTH/New.py",
                     os.path.join(root, "vendor", "share", "AuTh", "login.py")):
        block = bob.check(spelling)
        assert block is not None and block.holder == "alice", spelling
        assert decide(bob, ToolCall(tool="edit", paths=(spelling,), cwd=root, input={"path": spelling})) is not None
    reason = _hook_denies(root, "vendor/share/AUTH/LOGIN.PY")
    assert reason is not None and "alice" in reason and "auth on the shared FAT volume" in reason
    r = run_cli("check", "vendor/share/AUTH/LOGIN.PY", "--agent", "bob", cwd=root)
    assert r.returncode == 3 and "alice" in r.stdout, r.stdout + r.stderr
    with open(os.path.join(root, "vendor", "share", "Auth", "login.py")) as f:
        assert f.read() == "x = 1\n"

    # the claim side folds too: another spelling of the claimed directory is refused
    with pytest.raises(ReservationConflict):
        bob.reserve(["vendor/share/AUTH/"], "same directory, other case")

    # the case-sensitive sibling still tells case apart, and so does the mount point's own name
    os.makedirs(os.path.join(root, "vendor", "other", "AUTH"))
    assert bob.check("vendor/other/Auth/x.py") is not None
    assert bob.check("vendor/other/AUTH/x.py") is None
    assert _hook_denies(root, "vendor/other/AUTH/x.py") is None
    assert bob.check("vendor/SHARE/Auth/login.py") is None  # another (non-existent) directory of the project

    # a claim file placed by hand with another spelling beneath the mount is enforced as listed
    rdir = os.path.join(root, ".pi", "mesh", "reservations")
    mine = []
    for n in os.listdir(rdir):
        if n.endswith(".json"):
            with open(os.path.join(rdir, n)) as f:
                mine.append(json.load(f))
    rec = dict(next(r for r in mine if r["path"] == "vendor/share/auth"), id="1800000000000000-handplaced",
               path="vendor/share/Docs", reason="placed by hand")
    with open(os.path.join(rdir, rec["id"] + ".json"), "w") as f:
        json.dump(rec, f)
    block = bob.check("vendor/share/DOCS/readme.md")
    assert block is not None and block.reason == "placed by hand"
