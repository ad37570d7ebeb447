"""Maildir delivery both ways (pi_mesh_plugin/store/files/delivery.py): unnamed (O_TMPFILE + linkat) and rename.

Both must give the same files, the same crash behaviour at every named step (minus the rename way's
leftover temp file), and the unnamed way must fall back to rename the first time a file system refuses it.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from pi_mesh_plugin.store.files import delivery
from tests.conftest import REPO

MODES = ["unnamed", "rename"]


@pytest.fixture
def mode(request):
    delivery.use_unnamed(None if request.param == "unnamed" else False)  # None: decide as in real use
    if request.param == "unnamed" and not delivery.unnamed_supported():
        pytest.skip("this file system or kernel has no O_TMPFILE")
    yield request.param
    delivery.use_unnamed(None)


def inbox(tmp_path, name: str = "bob") -> str:
    d = tmp_path / "inbox" / name
    for sub in ("tmp", "new", "cur"):
        (d / sub).mkdir(parents=True)
    return str(d)


def ls(path: str) -> list[str]:
    return sorted(os.listdir(path))


def _deliverer(kind: str, boxes: list[str]):
    def deliver(name: str, data: bytes) -> None:
        if kind == "linked":
            delivery.deliver_linked(boxes, name, data)
        else:
            delivery.deliver([(b, name, data) for b in boxes])
    return deliver


def _refuse_links_through_proc(monkeypatch, code: int) -> list[str]:
    real_link = os.link
    refused: list[str] = []

    def fake_link(src, dst, *, src_dir_fd=None, dst_dir_fd=None, follow_symlinks=True):
        if str(src).startswith("/proc/self/fd/"):
            refused.append(dst)
            raise OSError(code, os.strerror(code))
        return real_link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(os, "link", fake_link)
    return refused


def test_unnamed_is_the_way_on_linux():
    """The fast way must really be in use where it exists (or the benchmark measures the fallback)."""
    delivery.use_unnamed(None)
    if sys.platform.startswith("linux"):
        assert delivery.unnamed_supported()


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_one_message_lands_complete_with_nothing_else(tmp_path, mode):
    box = inbox(tmp_path)
    data = json.dumps({"text": "hi ✓"}).encode() + b"\n"
    delivery.deliver([(box, "m1.json", data)])
    assert ls(f"{box}/new") == ["m1.json"] and ls(f"{box}/tmp") == [] and ls(f"{box}/cur") == []
    with open(f"{box}/new/m1.json", "rb") as f:
        assert f.read() == data
    st = os.stat(f"{box}/new/m1.json")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(st.st_mode) == 0o600 & ~umask and st.st_nlink == 1  # private to its owner (.modes)


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_a_batch_lands_in_every_inbox_including_one_inbox_twice(tmp_path, mode):
    boxes = [inbox(tmp_path, f"a{i}") for i in range(5)]
    items = [(b, f"m{i}.json", f"message {i}".encode()) for i, b in enumerate(boxes)]
    items.append((boxes[0], "second.json", b"second"))
    delivery.deliver(items)
    for i, b in enumerate(boxes):
        assert ls(f"{b}/new") == ([f"m{i}.json", "second.json"] if i == 0 else [f"m{i}.json"])
        assert ls(f"{b}/tmp") == []
    with open(f"{boxes[0]}/new/second.json", "rb") as f:
        assert f.read() == b"second"


@pytest.mark.parametrize("mode", MODES, indirect=True)
@pytest.mark.parametrize("batch", [False, True])
def test_a_missing_inbox_fails_before_anything_is_named(tmp_path, mode, batch):
    good = inbox(tmp_path, "good")
    gone = str(tmp_path / "inbox" / "gone")
    items = [(good, "m1.json", b"1"), (gone, "m2.json", b"2")] if batch else [(gone, "m2.json", b"2")]
    with pytest.raises(FileNotFoundError):
        delivery.deliver(items)
    assert ls(f"{good}/new") == [] and ls(f"{good}/tmp") == []


def test_unnamed_never_replaces_a_name(tmp_path):
    delivery.use_unnamed(None)
    if not delivery.unnamed_supported():
        pytest.skip("no O_TMPFILE")
    box = inbox(tmp_path)
    delivery.deliver([(box, "m1.json", b"first")])
    with pytest.raises(FileExistsError):
        delivery.deliver([(box, "m1.json", b"second")])
    with open(f"{box}/new/m1.json", "rb") as f:
        assert f.read() == b"first"


@pytest.mark.parametrize("kind", ["one", "batch", "linked"])
@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.EISDIR])
def test_a_file_system_without_o_tmpfile_falls_back_to_rename(tmp_path, monkeypatch, kind, code):
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE on this platform: rename is the only way")
    delivery.use_unnamed(None)
    real_open = os.open
    refused = []

    def fake_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            refused.append(path)
            raise OSError(code, os.strerror(code))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", fake_open)
    boxes = [inbox(tmp_path, f"a{i}") for i in range(1 if kind == "one" else 3)]
    deliver = _deliverer(kind, boxes)
    try:
        deliver("m.json", b"x")
        assert refused and delivery._unnamed[0] is False  # switched for the rest of the process
        n = len(refused)
        deliver("m2.json", b"y")
        assert len(refused) == n  # not tried again
    finally:
        delivery.use_unnamed(None)
    for b in boxes:
        assert ls(f"{b}/new") == ["m.json", "m2.json"] and ls(f"{b}/tmp") == []


@pytest.mark.parametrize("kind", ["one", "batch", "linked"])
@pytest.mark.parametrize("code", [errno.EPERM, errno.ENOENT, errno.EXDEV])
def test_a_sandbox_that_will_not_link_through_proc_gets_rename(tmp_path, monkeypatch, kind, code):
    """The process's first link of an unnamed file fails (as under some sandboxes): the message is
    delivered by rename instead, and the process stays with rename."""
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE")
    delivery.use_unnamed(None)
    refused = _refuse_links_through_proc(monkeypatch, code)
    boxes = [inbox(tmp_path, f"a{i}") for i in range(1 if kind == "one" else 3)]
    deliver = _deliverer(kind, boxes)
    try:
        deliver("m.json", b"x")
        assert len(refused) == 1 and delivery._unnamed[0] is False
        deliver("m2.json", b"y")
        assert len(refused) == 1
    finally:
        delivery.use_unnamed(None)
    for b in boxes:
        assert ls(f"{b}/new") == ["m.json", "m2.json"] and ls(f"{b}/tmp") == []
        with open(f"{b}/new/m.json", "rb") as f:
            assert f.read() == b"x"


@pytest.mark.parametrize("kind", ["one", "linked"])
def test_once_unnamed_delivery_has_worked_a_link_error_is_an_error(tmp_path, monkeypatch, kind):
    """No silent switch later on: a full disk after the first success is the caller's error."""
    delivery.use_unnamed(None)
    if not delivery.unnamed_supported():
        pytest.skip("no O_TMPFILE")
    boxes = [inbox(tmp_path, f"a{i}") for i in range(1 if kind == "one" else 3)]
    deliver = _deliverer(kind, boxes)
    try:
        deliver("m.json", b"x")
        _refuse_links_through_proc(monkeypatch, errno.ENOSPC)
        with pytest.raises(OSError) as e:
            deliver("m2.json", b"y")
        assert e.value.errno == errno.ENOSPC and delivery._unnamed[0] is True
    finally:
        delivery.use_unnamed(None)
    assert all(ls(f"{b}/new") == ["m.json"] and ls(f"{b}/tmp") == [] for b in boxes)


def test_another_open_error_is_raised_not_taken_for_a_missing_feature(tmp_path, monkeypatch):
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE")
    delivery.use_unnamed(None)
    real_open = os.open

    def fake_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", fake_open)
    box = inbox(tmp_path)
    with pytest.raises(OSError) as e:
        delivery.deliver([(box, "m.json", b"x")])
    assert e.value.errno == errno.ENOSPC and delivery._unnamed[0] is not False
    assert ls(f"{box}/new") == []


CHILD = """
import sys
from pi_mesh_plugin.store.files import delivery, fsio
mode, step, kind, boxes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
delivery.use_unnamed(False if mode == "rename" else None)
fsio.set_crash_point(step)
if kind == "linked":
    delivery.deliver_linked(boxes, "m.json", b"complete")
else:
    delivery.deliver([(b, "m.json", b"complete") for b in boxes])
print("SURVIVED")
"""


@pytest.mark.parametrize("mode", MODES, indirect=True)
@pytest.mark.parametrize("kind", ["one", "batch", "linked"])
@pytest.mark.parametrize("step", ["temp-write", "file-fsync", "rename", "dir-fsync"])
def test_kill_9_at_each_step(tmp_path, mode, kind, step):
    """Killed before the naming: nothing delivered (rename leaves its temp file, unnamed leaves nothing);
    killed after it: delivered complete.  A batch or a linked broadcast names every file before the last step."""
    boxes = [inbox(tmp_path, f"a{i}") for i in range(1 if kind == "one" else 4)]
    env = {**os.environ, "PYTHONPATH": REPO}
    r = subprocess.run([sys.executable, "-c", CHILD, mode, step, kind, *boxes], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGKILL, r.stderr
    named = step in ("rename", "dir-fsync")
    delivered = [b for b in boxes if ls(f"{b}/new") == ["m.json"]]
    if not named:
        assert delivered == []
    elif kind != "one" and step == "rename":
        assert delivered == boxes[:1]  # killed right after naming the first
    else:
        assert delivered == boxes
    for b in delivered:
        with open(f"{b}/new/m.json", "rb") as f:
            assert f.read() == b"complete"
    leftovers = [n for b in boxes for n in os.listdir(f"{b}/tmp")]
    assert all(n.startswith("m.json.") and n.endswith(".tmp") for n in leftovers)
    assert len(leftovers) == expected_leftovers(mode, kind, step, len(boxes))


def expected_leftovers(mode: str, kind: str, step: str, n: int) -> int:
    """Temp files a writer killed at ``step`` leaves in tmp/: none the unnamed way."""
    if mode == "unnamed" or step == "dir-fsync":
        return 0
    if kind == "linked":  # one temp file, linked into each inbox, removed once all are linked
        return 1
    if kind == "batch":  # killed after writing the first / all written / after renaming the first
        return {"temp-write": 1, "file-fsync": n, "rename": n - 1}[step]
    return 0 if step == "rename" else 1


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_linked_delivery_is_one_inode_named_in_every_inbox(tmp_path, mode):
    boxes = [inbox(tmp_path, f"a{i}") for i in range(5)]
    delivery.deliver_linked(boxes, "b.json", b"to all")
    stats = [os.stat(f"{b}/new/b.json") for b in boxes]
    assert len({(st.st_dev, st.st_ino) for st in stats}) == 1 and stats[0].st_nlink == len(boxes)
    assert all(ls(f"{b}/tmp") == [] for b in boxes)
    with open(f"{boxes[3]}/new/b.json", "rb") as f:
        assert f.read() == b"to all"


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_linked_delivery_to_a_missing_inbox_names_nothing(tmp_path, mode):
    boxes = [inbox(tmp_path, f"a{i}") for i in range(3)]
    with pytest.raises(FileNotFoundError):
        delivery.deliver_linked([*boxes, str(tmp_path / "inbox" / "gone")], "b.json", b"x")
    assert all(ls(f"{b}/new") == [] and ls(f"{b}/tmp") == [] for b in boxes)


def test_doctor_removes_the_rename_ways_leftover(mesh_factory, project):
    """The rename way's only residue after a crash is a temp file of a dead writer; doctor removes it."""
    alice, bob = mesh_factory("alice", cwd=project), mesh_factory("bob", cwd=project)
    box = os.path.join(project, ".pi", "mesh", "inbox", "bob")
    code = ("import sys; from pi_mesh_plugin.mesh import Mesh; from pi_mesh_plugin.store.files import delivery, fsio\n"
            "delivery.use_unnamed(False); m = Mesh(sys.argv[1], 'alice', cwd=sys.argv[1])\n"
            "fsio.set_crash_point('temp-write'); m.send('bob', 'lost in a crash')")
    r = subprocess.run([sys.executable, "-c", code, project], env={**os.environ, "PYTHONPATH": REPO},
                       capture_output=True, timeout=60)
    assert r.returncode == -signal.SIGKILL
    assert os.listdir(f"{box}/new") == [] and bob.read_inbox() == []
    tmp = os.listdir(f"{box}/tmp")
    assert len(tmp) == 1 and tmp[0].endswith(".tmp")
    found = [f for f in alice.doctor() if f["kind"] == "temp-file"]
    assert len(found) == 1 and not found[0]["fixed"]
    fixed = [f for f in alice.doctor(fix=True) if f["kind"] == "temp-file"]
    assert fixed and fixed[0]["fixed"]
    assert os.listdir(f"{box}/tmp") == []


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_linked_delivery_gives_an_inbox_on_another_file_system_its_own_copy(tmp_path, mode):
    """An inbox moved by hand onto another file system (a symlink to tmpfs) cannot share the inode."""
    elsewhere = "/dev/shm"
    if not os.path.isdir(elsewhere) or os.stat(elsewhere).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system at /dev/shm")
    import tempfile

    with tempfile.TemporaryDirectory(dir=elsewhere) as away:
        boxes = [inbox(tmp_path, "a0"), str(tmp_path / "inbox" / "a1"), inbox(tmp_path, "a2")]
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(away, sub))
        os.symlink(away, boxes[1])
        delivery.deliver_linked(boxes, "b.json", b"to all")
        stats = [os.stat(f"{b}/new/b.json") for b in boxes]
        assert stats[0].st_ino == stats[2].st_ino and stats[0].st_nlink == 2
        assert stats[1].st_dev != stats[0].st_dev and stats[1].st_nlink == 1
        for b in boxes:
            with open(f"{b}/new/b.json", "rb") as f:
                assert f.read() == b"to all"
            assert ls(f"{b}/tmp") == []
