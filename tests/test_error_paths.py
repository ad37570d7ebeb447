"""Errors name the real file and never repeat more than ~200 characters of an argument.

The faults are real: a full tmpfs (ENOSPC), a read-only bind mount made by bubblewrap (EROFS), a
directory an unprivileged user cannot write (EACCES, a forked child as uid 65534).  Each drives the CLI
as a real process and reads its one line of error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.torture.common import REPO, new_project, worker_env


def _cli(root: str, agent: str, *args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str]:
    env = {**worker_env(), "PI_MESH_ROOT": root, "PI_MESH_AGENT": agent}
    r = subprocess.run([*prefix, sys.executable, "-m", "pi_mesh_plugin", *args], capture_output=True, text=True,
                       env=env, cwd=root, timeout=120, check=False)
    return r.returncode, r.stdout + r.stderr


def _as_nobody(root: str, agent: str, args: list[str]) -> tuple[int, str]:
    """The CLI run in a forked child as uid/gid 65534 (the venv's interpreter may not be theirs to run)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - pytest's capture is not fd 1/2
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.environ.update(PI_MESH_ROOT=root, PI_MESH_AGENT=agent)
            os.chdir(root)
            from pi_mesh_plugin.cli import run

            code = run(args)
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 99
        os._exit(code)
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode()


def _joined(base: str) -> str:
    root = new_project(base, "proj")
    for name in ("alice", "bob"):
        rc, out = _cli(root, name, "join", "--pid", "0")
        assert rc == 0, out
    return root


def _names_a_real_path(out: str, where: str) -> None:
    line = out.strip()
    assert "\n" not in line and "Traceback" not in line, out
    assert not line.endswith(": .") and ": .\n" not in out, out
    assert where in line, out


@pytest.fixture
def small_fs():
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tempfile.mkdtemp(prefix="pi-mesh-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt], capture_output=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)
        shutil.rmtree(mnt, ignore_errors=True)


def test_a_full_disk_names_the_file_that_could_not_be_written(small_fs) -> None:
    root = _joined(small_fs)
    fd = os.open(os.path.join(small_fs, "filler"), os.O_WRONLY | os.O_CREAT)  # fill what is left
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    rc, out = _cli(root, "alice", "send", "bob", "x" * 3000)
    assert rc != 0 and "No space left on device" in out, out
    _names_a_real_path(out, os.path.join(root, ".pi", "mesh", "inbox", "bob", "new", ""))
    rc, out = _cli(root, "alice", "reserve", os.path.join(root, "src", "a.py"), "src/b.py", "--reason", "r")
    assert rc != 0 and "No space left on device" in out, out
    _names_a_real_path(out, os.path.join(root, ".pi", "mesh", ""))


def test_a_read_only_mesh_names_the_file(tmp_path) -> None:
    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed")
    root = _joined(str(tmp_path))
    mesh = os.path.join(root, ".pi", "mesh")
    ro = ("bwrap", "--bind", "/", "/", "--dev", "/dev", "--ro-bind", mesh, mesh, "--")
    rc, out = _cli(root, "alice", "send", "bob", "hello", prefix=ro)
    if "bwrap:" in out:
        pytest.skip(f"bubblewrap cannot run here: {out.strip()}")
    assert rc != 0 and "Read-only file system" in out, out
    _names_a_real_path(out, os.path.join(mesh, "inbox", "bob", "new", ""))


def test_permission_denied_names_the_directory() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as an unprivileged user")
    base = tempfile.mkdtemp(prefix="pi-mesh-perm-")
    os.chmod(base, 0o755)
    try:
        root = _joined(base)
        mesh = os.path.join(root, ".pi", "mesh")
        for dirpath, dirnames, filenames in os.walk(mesh):
            for n in dirnames:
                os.chmod(os.path.join(dirpath, n), 0o777)
            for n in filenames:
                os.chmod(os.path.join(dirpath, n), 0o666)
        os.chmod(mesh, 0o777)
        new = os.path.join(mesh, "inbox", "bob", "new")
        os.chmod(new, 0o555)  # nobody may not deliver into bob's new/
        rc, out = _as_nobody(root, "alice", ["send", "bob", "hello"])
        assert rc != 0 and "Permission denied" in out, out
        _names_a_real_path(out, new + "/")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_errors_repeat_at_most_about_200_characters_of_an_argument(tmp_path) -> None:
    root = _joined(str(tmp_path))
    long_path = "/elsewhere/" + "p" * 5000
    rc, out = _cli(root, "alice", "reserve", long_path, "--reason", "r")
    assert rc != 0 and "outside the project" in out and len(out) < 600, out
    rc, out = _cli(root, "alice", "tool", "no_such_" + "t" * 5000, "{}")
    assert rc != 0 and "no tool named" in out and len(out) < 900, out
    rc, out = _cli(root, "alice", "tool", "send_message", '{"to": "bob", "text": 5, "x": "' + "y" * 5000 + '"}')
    assert rc != 0 and len(out) < 900, out
    from pi_mesh_plugin.errors import clip

    assert clip("a" * 201).startswith("a" * 200 + "... (201 characters)")
    assert clip("short") == "short"
    # the sidecar: an unknown op and a bad cwd of 10,000 characters each
    env = {**worker_env(), "PI_MESH_ROOT": root, "PI_MESH_AGENT": "pi-long"}
    lines = (b'{"id": 1, "op": "' + b"o" * 10000 + b'"}\n'
             + b'{"id": 2, "op": "hello", "agent": "pi-long", "cwd": "/' + b"c" * 10000 + b'"}\n')
    r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin", "serve"], input=lines, capture_output=True,
                       env=env, cwd=REPO, timeout=60, check=False)
    replies = [x for x in r.stdout.decode().splitlines() if '"id"' in x]
    assert len(replies) >= 2 and all(len(x) < 700 for x in replies), replies
