"""The PostgreSQL store's project id: never from the caller's cwd, never shared by two unrelated projects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytest.importorskip("psycopg")

SHOW = "import sys; from pi_mesh_plugin.store.postgres.project import derive_project_id as d; print(d(sys.argv[1]))"


def project_id(root: str, cwd: str) -> str:
    """The id a process started in ``cwd`` derives for ``root`` (a real process, its own cwd)."""
    r = subprocess.run([sys.executable, "-c", SHOW, root], cwd=cwd, capture_output=True, text=True, timeout=60,
                       check=False, env={**os.environ, "PYTHONPATH": REPO})
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def test_a_relative_remote_is_resolved_against_the_repository_not_the_cwd(tmp_path):
    up, work = tmp_path / "up", tmp_path / "work"
    git("init", "-q", "--bare", str(up))
    git("init", "-q", str(work))
    git("-C", str(work), "remote", "add", "origin", "../up")
    (work / "src" / "deep").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / "a" / "b"
    elsewhere.mkdir(parents=True)
    ids = {project_id(str(work), str(cwd)) for cwd in (work, work / "src" / "deep", elsewhere, tmp_path)}
    assert ids == {os.path.realpath(up)}, ids
    # a second checkout of the same upstream, anywhere, meets the first
    other = tmp_path / "x" / "clone"
    git("clone", "-q", str(up), str(other))
    assert project_id(str(other), "/") == os.path.realpath(up)


def test_without_a_remote_an_id_is_made_once_and_stored_with_the_repository(tmp_path):
    from pi_mesh_plugin.store.postgres.project import ID_FILE

    repo = tmp_path / "repo"
    git("init", "-q", str(repo))
    (repo / "sub").mkdir()
    first = project_id(str(repo), str(repo))
    assert first.startswith("local/") and len(first) == len("local/") + 32
    assert (repo / ".git" / ID_FILE).read_text().strip() == first
    assert project_id(str(repo), str(repo / "sub")) == project_id(str(repo), "/") == first
    git("-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x")
    linked = tmp_path / "linked"
    git("-C", str(repo), "worktree", "add", "-q", str(linked))
    assert project_id(str(linked), str(linked)) == first  # a linked worktree is the same project
    # an unrelated project at the same path (another machine, or the folder made again) is another project
    shutil.rmtree(repo)
    git("init", "-q", str(repo))
    assert project_id(str(repo), str(repo)) not in (first, "")


def test_processes_making_the_id_at_once_agree(tmp_path):
    repo = tmp_path / "repo"
    git("init", "-q", str(repo))
    procs = [subprocess.Popen([sys.executable, "-c", SHOW, str(repo)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": REPO}) for _ in range(6)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and next(iter(ids)).startswith("local/"), ids


def test_outside_git_the_id_lives_in_dot_pi_and_a_bad_place_asks_for_project_id(tmp_path):
    from pi_mesh_plugin.errors import ConfigError
    from pi_mesh_plugin.store.postgres.project import derive_project_id

    plain = tmp_path / "plain"
    plain.mkdir()
    pid = project_id(str(plain), "/")
    assert (plain / ".pi" / "project-id").read_text().strip() == pid
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / ".pi").write_text("a file where the folder should be\n")
    with pytest.raises(ConfigError, match=r"set \[store\] project_id"):
        derive_project_id(str(blocked))
    (plain / ".pi" / "project-id").write_text("../../etc\n")
    with pytest.raises(ConfigError, match="does not hold a project id"):
        derive_project_id(str(plain))


def test_two_projects_without_remotes_do_not_share_claims(pg_url, tmp_path, monkeypatch):
    from pi_mesh_plugin.mesh import Mesh

    monkeypatch.setenv("PI_MESH_STORE", pg_url)
    roots = []
    for name in ("one", "two"):
        root = tmp_path / name
        git("init", "-q", str(root))
        roots.append(str(root))
    a, b = Mesh(roots[0], "alice"), Mesh(roots[1], "bob")
    a.join()
    b.join()
    a.reserve(["src/"], "mine")
    assert b.check("src/x.py") is None and a.store.project != b.store.project
    with Mesh(roots[0], "carol") as c:
        assert c.check("src/x.py") is not None
    a.close()
    b.close()
