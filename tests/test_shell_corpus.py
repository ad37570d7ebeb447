"""The shell corpora, run for real: every command the guard allows is executed, and a claim that changed fails.

``tests/corpora/shell_writes.txt`` holds commands that write into alice's
claims (``src/auth/`` and ``docs/spec.md``) of a scratch project, one a line
as ``[class] command`` (a line starting ``  |`` continues the previous command
on a new line; ``@ROOT@`` is the project's absolute path).  Bob's ``bash``
call is put to the real guard (``host.decide`` on the file store):

* allowed: the command runs (``bash -c``, in the project) and the test fails
  if anything under the claims changed (names, contents, modes, mtimes,
  links - hashed before and after);
* blocked: the command runs anyway, unguarded, and must change the claims -
  so every case in the corpus is a real write, not a typo the guard happens to
  block.

Cases of the class ``kernel`` (inline interpreters, scripts) are the ones only
the kernel can stop: when the guard allows them they run through
``pi_mesh_plugin.sandbox.wrap_command``; where that module or bwrap is
missing they are reported as skipped with the reason, never passed silently.

``tests/corpora/shell_harmless.txt``: commands that must never be blocked
(reads, builds, tests, git status/log/diff, copies out of a claim); each runs
and must leave the claims as they were.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess

import pytest

from pi_mesh_plugin.host import decide
from pi_mesh_plugin.mesh import Mesh
from pi_mesh_plugin.records import ToolCall

HERE = os.path.dirname(os.path.abspath(__file__))
CLAIMS = ("src/auth", "docs/spec.md")

SETUP = r"""
set -e
mkdir -p src/auth/deep src/other docs tests
printf 'def login():\n    pass\n' > src/auth/login.py
printf 'TOKEN = 1\n' > src/auth/token.py
printf 'x = 1\n' > src/auth/deep/x.py
printf 'y = 2\n' > src/other/x.py
printf 'import sys\n' > src/app.py
printf '# spec\n' > docs/spec.md
printf '# readme\nline two\n' > README.md
printf 'notes\n' > notes.txt
printf 'data\n' > x
printf 'def test_ok():\n    assert 1\n' > tests/test_ok.py
printf 'all:\n\t@echo built\ntest:\n\t@echo tested\n' > Makefile
printf 'print("hello")\n' > hello.py
printf 'export ROOT=1\n' > env.sh
git init -q . && git add -A && git -c user.email=a@b -c user.name=a commit -qm init
# artifacts that carry other content for src/auth/login.py
mkdir -p /tmp/x && d=$(mktemp -d) && mkdir -p "$d/src/auth" && printf 'evil\n' > "$d/src/auth/login.py"
tar -C "$d" -cf evil.tar src/auth/login.py && (cd "$d" && zip -q "$OLDPWD/evil.zip" src/auth/login.py)
cp src/auth/login.py "$d/orig.py" && diff -u src/auth/login.py "$d/src/auth/login.py" \
  | sed -e '1s|^--- .*|--- a/src/auth/login.py|' -e '2s|^+++ .*|+++ b/src/auth/login.py|' > fix.patch || true
printf 'incoming\n' > incoming
printf '#!/bin/sh\necho scripted > src/auth/login.py\n' > evil.sh && chmod +x evil.sh
git add -A && git -c user.email=a@b -c user.name=a commit -qm artifacts
git branch other && git checkout -q other && printf 'other branch\n' > src/auth/login.py \
  && git -c user.email=a@b -c user.name=a commit -qam other && git checkout -q -
# alice's uncommitted work in her claim
printf 'def login():\n    return "alice"\n' > src/auth/login.py
rm -rf "$d"
"""


def load(name: str) -> list[tuple[str, str, int]]:
    """``(class, command, line)`` of the corpus file ``name``."""
    out: list[tuple[str, str, int]] = []
    with open(os.path.join(HERE, "corpora", name), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("  |"):
                cls, cmd, at = out[-1]
                out[-1] = (cls, cmd + "\n" + line[3:], at)
            elif line.strip() and not line.startswith("#"):
                assert line.startswith("[") and "] " in line, f"{name}:{n}: not '[class] command': {line!r}"
                cls, cmd = line[1:].split("] ", 1)
                out.append((cls, cmd, n))
    return out


WRITES = load("shell_writes.txt")
HARMLESS = load("shell_harmless.txt")


class Scratch:
    """A project with alice's claims, bob guarded, restored to its first state before each command."""

    def __init__(self, base: str) -> None:
        self.root = os.path.join(base, "project")
        self.pristine = os.path.join(base, "pristine")
        self.home = os.path.join(base, "home")
        self.tmp = os.path.join(base, "tmp")
        for d in (self.root, self.home, self.tmp):
            os.makedirs(d)
        env = {**os.environ, "HOME": self.home, "TMPDIR": self.tmp, "GIT_CONFIG_NOSYSTEM": "1"}
        subprocess.run(["bash", "-c", SETUP], cwd=self.root, env=env, check=True, capture_output=True)
        shutil.copytree(self.root, self.pristine, symlinks=True)
        with open(os.path.join(self.root, "hooks.toml"), "w") as f:
            f.write('[defaults]\nguard = ["edit", "write", "bash"]\n')
        past = os.path.getmtime(self.root) - 60  # hooks.toml is read as settled
        os.utime(os.path.join(self.root, "hooks.toml"), (past, past))
        self.alice = Mesh(self.root, "alice")
        self.alice.join()
        self.alice.reserve([c + "/" if c == "src/auth" else c for c in CLAIMS], "refactoring auth", cwd=self.root)
        self.bob = Mesh(self.root, "bob")
        self.bob.join()
        self.env = {**env, "PI_MESH_AGENT": "bob", "TERM": "dumb"}  # watch needs a terminal type
        self.env.pop("PI_MESH_ROOT", None)

    def restore(self) -> None:
        for name in os.listdir(self.root):
            if name in (".pi", "hooks.toml"):
                continue
            p = os.path.join(self.root, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        for name in os.listdir(self.pristine):
            s, d = os.path.join(self.pristine, name), os.path.join(self.root, name)
            if os.path.isdir(s) and not os.path.islink(s):
                shutil.copytree(s, d, symlinks=True)
            else:
                shutil.copy2(s, d, follow_symlinks=False)
        for d in (self.home, self.tmp):
            shutil.rmtree(d)
            os.makedirs(d)

    def command(self, text: str) -> str:
        return text.replace("@ROOT@", self.root)

    def decide(self, cmd: str):  # type: ignore[no-untyped-def]
        return decide(self.bob, ToolCall(tool="bash", input={"command": cmd}, agent="bob", cwd=self.root),
                      dry_run=True)

    def run(self, cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["timeout", "-k", "2", "20", "bash", "-c", cmd], cwd=self.root, env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, check=False)

    def claims_hash(self) -> str:
        h = hashlib.sha256()
        for claim in CLAIMS:
            top = os.path.join(self.root, claim)
            entries = [top]
            if os.path.isdir(top) and not os.path.islink(top):
                for d, dirs, files in os.walk(top):
                    dirs.sort()
                    entries += [os.path.join(d, n) for n in sorted(dirs + files)]
            for p in entries:
                h.update(os.path.relpath(p, self.root).encode() + b"\0")
                try:
                    s = os.lstat(p)
                except FileNotFoundError:
                    h.update(b"missing\0")
                    continue
                h.update(f"{stat.S_IFMT(s.st_mode)} {s.st_mode & 0o7777} {s.st_uid}:{s.st_gid} {s.st_size} {s.st_mtime_ns}\0"
                         .encode())
                if stat.S_ISLNK(s.st_mode):
                    h.update(os.readlink(p).encode())
                elif stat.S_ISREG(s.st_mode):
                    with open(p, "rb") as f:
                        h.update(hashlib.sha256(f.read()).digest())
        return h.hexdigest()

    def still_claimed(self) -> None:
        b = self.decide("touch src/auth/login.py")
        assert b is not None and b.holder == "alice", "the scratch project lost alice's claim"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    s = Scratch(str(tmp_path_factory.mktemp("corpus")))
    yield s
    s.alice.close()
    s.bob.close()


def _sandbox():  # type: ignore[no-untyped-def]  # -> wrap_command, or the reason it cannot be used
    try:
        from pi_mesh_plugin.sandbox import wrap_command
    except ImportError:
        return None, "pi_mesh_plugin.sandbox is not on this branch"
    return wrap_command, None


def test_the_corpora_are_big_enough_and_cover_every_class():
    assert len(WRITES) >= 300 and len(HARMLESS) >= 100, (len(WRITES), len(HARMLESS))
    classes = {c for c, _, _ in WRITES}
    for needed in ("redirect", "writer", "runtime-path", "symlink", "chdir", "wrapper", "quoting", "function",
                   "kernel", "nested", "git"):
        assert needed in classes, needed
    cmds = [c for _, c, _ in WRITES + HARMLESS]
    assert len(cmds) == len(set(cmds)), "a command appears twice"


@pytest.mark.parametrize("cls, cmd, line", WRITES, ids=[f"L{n}-{c}" for c, _, n in WRITES])
def test_write_corpus(scratch, cls, cmd, line):
    cmd = scratch.command(cmd)
    scratch.restore()
    before = scratch.claims_hash()
    block = scratch.decide(cmd)
    if block is not None:
        assert block.holder == "alice", (line, block.message)
        r = scratch.run(cmd)  # the block is real only if the command really writes the claim
        assert scratch.claims_hash() != before, (
            f"shell_writes.txt:{line}: blocked, but run unguarded it leaves the claims unchanged - the case "
            f"writes nothing there (exit {r.returncode}: {r.stderr.decode()[-300:]})")
        return
    if cls == "kernel":
        wrap, why = _sandbox()
        if wrap is None:
            pytest.skip(f"not run by this branch: only the kernel can stop it ({why})")
        wrapped = wrap(scratch.bob, cmd, scratch.root)
        if wrapped is None:
            pytest.skip("not run: bwrap cannot run here")
        scratch.run(wrapped)
    else:
        scratch.run(cmd)
    changed = scratch.claims_hash() != before
    scratch.still_claimed()
    assert not changed, f"shell_writes.txt:{line}: allowed, and it changed alice's claim: {cmd!r}"


@pytest.mark.parametrize("cls, cmd, line", HARMLESS, ids=[f"L{n}-{c}" for c, _, n in HARMLESS])
def test_harmless_corpus(scratch, cls, cmd, line):
    cmd = scratch.command(cmd)
    scratch.restore()
    before = scratch.claims_hash()
    block = scratch.decide(cmd)
    assert block is None, f"shell_harmless.txt:{line}: blocked: {block.message}"
    r = scratch.run(cmd)
    assert scratch.claims_hash() == before, f"shell_harmless.txt:{line}: changed the claims ({r.returncode})"
