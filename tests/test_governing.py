"""Claims hold wherever the write lands: the project comes from the path written, not the caller's cwd.

Real git repositories with a real submodule; hook events run as real processes with their ``cwd`` in the
submodule, in a folder holding a stray ``.git`` file, and in a directory outside any project.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import PI_MESH, REPO
from tests.test_hooks import REASON, assert_allow, assert_claude_deny, claude_event, hook

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_ALLOW_PROTOCOL": "file"}


def git(cwd: str, *args: str) -> None:
    subprocess.run(["git", "-c", "protocol.file.allow=always", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def cli(*args: str, cwd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": REPO, **(env or {})}
    full.pop("PI_MESH_AGENT", None)
    full.pop("PI_MESH_ROOT", None)
    return subprocess.run([*PI_MESH, *args], cwd=cwd, capture_output=True, text=True, env=full, timeout=60,
                          check=False)


@pytest.fixture
def with_submodule(project, tmp_path):
    """``project`` with a real submodule at ``vendor/lib`` (its own repository, with a commit)."""
    lib = tmp_path / "lib-upstream"
    lib.mkdir()
    (lib / "x.c").write_text("int x;\n")
    git(str(lib), "init", "-q")
    git(str(lib), "add", "x.c")
    git(str(lib), "commit", "-q", "-m", "lib")
    git(project, "submodule", "add", "-q", str(lib), "vendor/lib")
    assert os.path.isfile(os.path.join(project, "vendor", "lib", ".git"))
    return project


@pytest.fixture
def held(project, mesh_factory):
    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], REASON, cwd=project)
    return alice


def test_event_cwd_in_a_submodule_is_blocked(with_submodule, held):
    sub = os.path.join(with_submodule, "vendor", "lib")
    target = os.path.join(with_submodule, "src", "auth", "login.py")
    r = hook("claude-code", claude_event(with_submodule, "Edit", {"file_path": target, "old_string": "a",
                                                                   "new_string": "b"}, cwd=sub), cwd=sub)
    assert_claude_deny(r)
    r = hook("claude-code", claude_event(with_submodule, "Write", {"file_path": "../../src/auth/new.py",
                                                                    "content": "x"}, cwd=sub), cwd=sub)
    assert_claude_deny(r)


def test_a_claim_on_vendor_covers_the_submodule_files(with_submodule, mesh_factory):
    alice = mesh_factory("alice")
    alice.reserve(["vendor/"], "bumping vendored code", cwd=with_submodule)
    sub = os.path.join(with_submodule, "vendor", "lib")
    r = hook("claude-code", claude_event(sub, "Edit", {"file_path": os.path.join(sub, "x.c"), "old_string": "a",
                                                       "new_string": "b"}, cwd=sub), cwd=sub)
    out = r.stdout.decode()
    assert "reserved by agent alice" in out and "bumping vendored code" in out, (out, r.stderr)
    # and the submodule's own mesh, if it has one, is checked too
    from pi_mesh_plugin.mesh import Mesh

    with Mesh(sub, "carol") as carol:
        carol.join()
        carol.reserve(["x.c"], "submodule fix", cwd=sub)
        alice.release()
        r = hook("claude-code", claude_event(with_submodule, "Edit", {"file_path": "vendor/lib/x.c",
                                                                      "old_string": "a", "new_string": "b"}),
                 cwd=with_submodule)
        out = r.stdout.decode()
        assert "reserved by agent carol" in out and "submodule fix" in out, (out, r.stderr)


def test_event_cwd_under_a_stray_git_file_is_blocked(project, held):
    stray = os.path.join(project, "docs")
    os.makedirs(stray)
    open(os.path.join(stray, ".git"), "w").close()  # an empty file: not a repository
    r = hook("claude-code", claude_event(project, "Write", {"file_path": "../src/auth/login.py", "content": "x"},
                                         cwd=stray), cwd=stray)
    assert_claude_deny(r)


def test_event_cwd_outside_any_project_is_blocked(project, held, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = os.path.join(project, "src", "auth", "login.py")
    r = hook("claude-code", claude_event(str(outside), "Edit", {"file_path": target, "old_string": "a",
                                                                "new_string": "b"}, cwd=str(outside)),
             cwd=str(outside))
    reason = assert_claude_deny(r)
    assert "alice" in reason
    assert not os.path.exists(outside / ".pi"), "a block is recorded in the project's mesh, not the caller's cwd"
    # a path elsewhere outside the project is not the mesh's business
    r = hook("claude-code", claude_event(str(outside), "Write", {"file_path": str(outside / "f"), "content": "x"},
                                         cwd=str(outside)), cwd=str(outside))
    assert_allow(r)


def test_check_from_inside_a_submodule(with_submodule, held):
    sub = os.path.join(with_submodule, "vendor", "lib")
    r = cli("check", "../../src/auth/login.py", "--agent", "bob", cwd=sub)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "alice" in r.stdout + r.stderr and REASON in r.stdout + r.stderr
    assert cli("check", "x.c", "--agent", "bob", cwd=sub).returncode == 0


def test_root_given_and_cwd_outside_resolves_from_the_root(project, held, tmp_path):
    r = cli("--root", project, "check", "src/auth/login.py", "--agent", "bob", cwd=str(tmp_path))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "alice" in r.stdout + r.stderr


def test_stray_git_entries_are_no_boundary(tmp_path):
    from pi_mesh_plugin.projects import governing_roots, repo_top

    top = tmp_path / "p"
    (top / "a" / "b").mkdir(parents=True)
    git(str(top), "init", "-q")
    (top / "a" / ".git").write_text("")
    (top / "a" / "b" / ".git").mkdir()
    assert repo_top(str(top / "a" / "b")) == str(top)
    assert governing_roots(str(top / "a" / "b" / "f")) == [str(top)]
    assert repo_top(str(tmp_path / "nowhere")) is None
