"""Authorship in a real git repository, with agents as real processes.

Each agent is registered with a live owner process of its own (a ``sleep``);
its writes go through the real Claude Code post-call hook (``pi-mesh hook
claude-code`` with a PostToolUse event), its commands through the real
``pi-mesh`` CLI and ``git`` with ``$PI_MESH_AGENT`` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.authorship_helpers import (
    agent_runs,
    agent_writes,
    bash_guard,
    claude_event,
    clean_env,
    cli,
    git,
    join,
    write,
)
from tests.conftest import PI_MESH

# A stand-in harness process: it runs the PreToolUse hook as its child, as Claude Code does.
HARNESS = f"""
import subprocess, sys
r = subprocess.run({PI_MESH!r} + ["hook", "claude-code"], input=sys.stdin.buffer.read(), capture_output=True)
sys.stdout.buffer.write(r.stdout)
"""


@pytest.fixture
def owners():
    """Live owner processes, one per agent name; killing one makes that agent dead."""
    procs: dict[str, subprocess.Popen] = {}

    def owner(name: str) -> subprocess.Popen:
        procs[name] = subprocess.Popen(["sleep", "300"])
        return procs[name]

    owner.procs = procs  # type: ignore[attr-defined]
    yield owner
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def repo(project, owners):
    """A repository with one commit, the pre-commit hook installed, and alice, bob and carol live."""
    write(project, "lib/util.py", "def util():\n    return 0\n")
    write(project, "README.md", "# project\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    r = cli(project, "install", "git-hook")
    assert r.returncode == 0, r.stderr
    for name in ("alice", "bob", "carol"):
        join(project, name, owners(name).pid)
    return project


def whose(root: str, *paths: str) -> dict[str, dict]:
    r = cli(root, "--json", "whose", *paths)
    assert r.returncode == 0, r.stderr
    return {row["path"]: row for row in json.loads(r.stdout)}


def committed_files(root: str, rev: str = "HEAD") -> list[str]:
    return git(root, "show", "--name-only", "--format=", rev).stdout.split()


# -- the ledger and `pi-mesh whose` -------------------------------------------------------------------

def test_the_ledger_records_each_agents_writes_and_whose_reports_them(repo):
    agent_writes(repo, "alice", "src/auth/login.py", "def login():\n    return 'alice'\n")
    agent_writes(repo, "bob", "lib/util.py", "def util():\n    return 'bob'\n")
    agent_runs(repo, "carol", "echo notes > NOTES.md && rm README.md")
    write(repo, "stray.txt", "a person's file\n")
    rows = whose(repo)
    assert {p: (r["agent"], r["matches"], r["live"]) for p, r in rows.items()} == {
        "src/auth/login.py": ("alice", True, True), "lib/util.py": ("bob", True, True),
        "NOTES.md": ("carol", True, True), "README.md": ("carol", True, True), "stray.txt": (None, False, False)}
    # a ledger file per path, plain JSON with the git blob id of what the write left
    [tree] = os.listdir(os.path.join(repo, ".pi", "mesh", "ledger"))
    with open(os.path.join(repo, ".pi", "mesh", "ledger", tree, "lib%2Futil.py.json")) as f:
        entry = json.load(f)
    blob = git(repo, "hash-object", "lib/util.py").stdout.strip()
    assert (entry["agent"], entry["blob"], entry["tool"]) == ("bob", blob, "write")

    write(repo, "lib/util.py", "def util():\n    return 'edited by a person'\n")
    text = cli(repo, "whose").stdout
    assert "changed outside any agent since bob (live) wrote it" in text
    assert "stray.txt" in text and "src/auth/login.py  alice (live)" in text
    assert list(whose(repo, "src/")) == ["src/auth/login.py"]


def test_a_second_hook_seeing_the_same_content_does_not_steal_authorship(repo):
    agent_writes(repo, "alice", "src/a.py", "x = 1\n")
    agent_writes(repo, "bob", "src/a.py", "x = 1\n")  # same content: bob changed nothing
    assert whose(repo)["src/a.py"]["agent"] == "alice"
    agent_writes(repo, "bob", "src/a.py", "x = 2\n")
    assert whose(repo)["src/a.py"]["agent"] == "bob"


# -- commits carry only your own work -----------------------------------------------------------------

def test_a_commit_including_a_live_peers_file_is_refused_naming_the_peer(repo):
    agent_writes(repo, "alice", "src/auth/login.py", "def login():\n    return 'alice'\n")
    agent_writes(repo, "bob", "lib/util.py", "def util():\n    return 'bob'\n")
    before = git(repo, "rev-parse", "HEAD").stdout
    git(repo, "add", "-A")
    p = git(repo, "commit", "-q", "-m", "bob sweeps everything", agent="bob", check=False)
    assert p.returncode == 1
    assert "alice last wrote src/auth/login.py" in p.stderr and "lib/util.py" not in p.stderr.split("Commit only")[0]
    assert "pi-mesh commit" in p.stderr and "PI_MESH_OVERRIDE=1" in p.stderr and "Traceback" not in p.stderr
    assert git(repo, "rev-parse", "HEAD").stdout == before
    # bob's own file alone passes
    git(repo, "reset", "-q")
    git(repo, "add", "lib/util.py")
    assert git(repo, "commit", "-q", "-m", "bob's", agent="bob", check=False).returncode == 0
    assert committed_files(repo) == ["lib/util.py"]


def test_a_commit_by_no_agent_is_refused_until_a_person_overrides(repo):
    agent_writes(repo, "alice", "src/a.py", "a\n")
    git(repo, "add", "-A")
    p = git(repo, "commit", "-q", "-m", "who am i", check=False)
    assert p.returncode == 1 and "no mesh agent" in p.stderr and "alice last wrote src/a.py" in p.stderr
    p = git(repo, "commit", "-q", "-m", "a person decides", check=False, PI_MESH_OVERRIDE="1")
    assert p.returncode == 0, p.stderr
    feed = cli(repo, "--json", "feed").stdout
    assert '"override"' in feed


def test_a_peers_work_changed_since_or_of_a_dead_agent_is_not_protected(repo, owners):
    agent_writes(repo, "alice", "src/a.py", "a\n")
    agent_writes(repo, "carol", "src/c.py", "c\n")
    agent_writes(repo, "alice", "src/d.py", "d\n")
    write(repo, "src/a.py", "a, then bob's own fix\n")  # changed after alice: not alice's content any more
    git(repo, "add", "-A")
    p = git(repo, "commit", "-q", "-m", "x", agent="bob", check=False)
    assert p.returncode == 1 and "carol last wrote src/c.py" in p.stderr and "alice last wrote src/d.py" in p.stderr
    assert "src/a.py" not in p.stderr
    carol = owners.procs["carol"]
    carol.kill()
    carol.wait()  # carol is gone: her leftovers are nobody's to protect
    git(repo, "rm", "-q", "--cached", "src/d.py")
    assert git(repo, "commit", "-q", "-m", "x", agent="bob", check=False).returncode == 0
    assert sorted(committed_files(repo)) == ["src/a.py", "src/c.py"]


def test_handover_lets_the_receiver_commit(repo):
    agent_writes(repo, "alice", "src/a.py", "a\n")
    agent_writes(repo, "alice", "src/b.py", "b\n")
    r = cli(repo, "handover", "src/a.py", "--to", "bob", agent="bob")
    assert r.returncode == 2 and "you last wrote" in r.stderr and "alice" in r.stderr
    r = cli(repo, "handover", "src/a.py", "--to", "bob", agent="alice")
    assert r.returncode == 0, r.stderr
    assert whose(repo)["src/a.py"]["handed_over_by"] == "alice"
    git(repo, "add", "src/a.py")
    assert git(repo, "commit", "-q", "-m", "bob commits a", agent="bob", check=False).returncode == 0
    git(repo, "add", "src/b.py")
    assert git(repo, "commit", "-q", "-m", "but not b", agent="bob", check=False).returncode == 1


def test_pi_mesh_commit_commits_exactly_the_callers_files(repo):
    agent_writes(repo, "alice", "src/a.py", "a\n")
    agent_writes(repo, "bob", "lib/util.py", "def util():\n    return 'bob'\n")
    agent_runs(repo, "bob", "echo b > src/b.py")
    agent_writes(repo, "carol", "src/c.py", "c\n")
    git(repo, "add", "src/c.py")  # carol's staged work sits in the shared index
    agent_writes(repo, "bob", "docs/later.md", "x\n")
    write(repo, "docs/later.md", "changed by someone else\n")
    r = cli(repo, "commit", "-m", "bob's work", agent="bob")
    assert r.returncode == 0, r.stderr
    assert "not committed (changed since you wrote them): docs/later.md" in r.stdout
    assert sorted(committed_files(repo)) == ["lib/util.py", "src/b.py"]
    status = git(repo, "status", "--porcelain").stdout
    assert "A  src/c.py" in status and "?? src/a.py" in status  # carol's stays staged, alice's untouched
    r = cli(repo, "commit", "-m", "again", agent="bob")
    assert r.returncode == 2 and "nothing of yours to commit" in r.stderr and "docs/later.md" in r.stderr
    r = cli(repo, "commit", "-m", "carol's", agent="carol")
    assert r.returncode == 0 and committed_files(repo) == ["src/c.py"]


# -- destructive git commands through the shell guard --------------------------------------------------

@pytest.fixture
def dirty(repo):
    """alice changed lib/util.py and created src/new.py; bob changed README.md."""
    agent_writes(repo, "alice", "lib/util.py", "def util():\n    return 'alice'\n")
    agent_writes(repo, "alice", "src/new.py", "new = 1\n")
    agent_writes(repo, "bob", "README.md", "# bob's readme\n")
    return repo


@pytest.mark.parametrize("command", [
    "git stash", "git stash push", "git stash save wip", "git stash -u", "git stash --include-untracked",
    "git stash -a", "git stash push -- lib", "git checkout .", "git checkout -- lib/util.py",
    "git checkout HEAD -- lib/", "git checkout lib/util.py", "git checkout -f", "git checkout -f HEAD",
    "git restore .", "git restore --worktree lib/util.py", "git restore --source=HEAD --staged --worktree lib",
    "git reset --hard", "git reset --hard HEAD", "git checkout-index -f -a", "git checkout-index -f lib/util.py",
    "git read-tree -u --reset HEAD", "git switch --discard-changes main", "git switch -f main",
    "git clean -fd", "git clean -f src", "git -C lib checkout .", "cd lib && git checkout util.py",
    "true && git stash", "bash -c 'git reset --hard'", "git stash; echo done",
])
def test_a_command_that_would_discard_a_peers_work_is_refused(dirty, command):
    deny = bash_guard(dirty, "bob", command)
    assert deny is not None and deny["permissionDecision"] == "deny", command
    reason = deny["permissionDecisionReason"]
    assert "alice" in reason and "pi-mesh whose" in reason and 'send_message(to="alice"' in reason
    assert "lib/util.py" in reason or "src/new.py" in reason
    assert "bob:" not in reason  # bob's own change is not a loss to report


@pytest.mark.parametrize("command", [
    "git stash -- README.md", "git checkout -- README.md", "git restore README.md", "git checkout README.md",
    "git status", "git diff", "git stash list", "git stash show", "git clean -n", "git clean -fn",
    "git restore --staged lib/util.py", "git reset", "git reset -- lib/util.py", "git checkout -b topic",
    "git switch -c topic", "git log --oneline", "git add -A", "echo digit",
])
def test_commands_touching_only_the_callers_own_changes_pass(dirty, command):
    assert bash_guard(dirty, "bob", command) is None, command


def test_the_git_stash_refusal_names_every_peer_and_file(dirty):
    agent_writes(dirty, "carol", "docs/c.md", "carol\n")
    git(dirty, "add", "docs/c.md")
    reason = bash_guard(dirty, "bob", "git stash")["permissionDecisionReason"]
    assert "alice: lib/util.py" in reason and "carol: docs/c.md" in reason
    assert "src/new.py" not in reason  # untracked: a plain stash leaves it
    assert "src/new.py" in bash_guard(dirty, "bob", "git stash -u")["permissionDecisionReason"]
    # the peer itself may stash its own work only when nobody else's is caught
    assert bash_guard(dirty, "alice", "git stash push -- lib/util.py") is None
    assert bash_guard(dirty, "alice", "git stash") is not None  # would take bob's README.md too
    # nothing lost: the files are untouched
    with open(os.path.join(dirty, "lib", "util.py")) as f:
        assert "alice" in f.read()


def test_committed_or_dead_agents_work_does_not_block(dirty, owners):
    git(dirty, "add", "lib/util.py")
    assert git(dirty, "commit", "-q", "-m", "alice's", agent="alice", check=False).returncode == 0
    assert "src/new.py" in bash_guard(dirty, "bob", "git clean -f")["permissionDecisionReason"]
    assert bash_guard(dirty, "bob", "git reset --hard") is None  # lib/util.py is committed now
    owners.procs["alice"].kill()
    owners.procs["alice"].wait()
    assert bash_guard(dirty, "bob", "git clean -f") is None


def test_a_branch_switch_that_would_overwrite_a_peers_file_is_refused(dirty):
    git(dirty, "stash", "-q", "--", "lib/util.py")  # (as a person: set alice's change aside for a moment)
    git(dirty, "checkout", "-q", "-b", "other")
    write(dirty, "lib/util.py", "def util():\n    return 'other branch'\n")
    git(dirty, "commit", "-q", "-am", "other", agent="bob", PI_MESH_OVERRIDE="1")
    git(dirty, "checkout", "-q", "-")
    git(dirty, "stash", "pop", "-q")
    deny = bash_guard(dirty, "bob", "git checkout other")
    assert deny is not None and "alice: lib/util.py" in deny["permissionDecisionReason"]
    assert bash_guard(dirty, "bob", "git switch other") is not None
    assert bash_guard(dirty, "bob", "git merge other") is not None
    assert bash_guard(dirty, "bob", "git rebase --autostash other") is not None
    git(dirty, "config", "merge.autoStash", "true")
    assert "README.md" not in bash_guard(dirty, "bob", "git merge other")["permissionDecisionReason"]


def test_the_guard_identifies_an_unnamed_caller_by_its_owner_process(dirty):
    """A Claude Code session's hook knows no name; its agent is the one its harness process owns."""
    harness = subprocess.Popen([sys.executable, "-c", HARNESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env=clean_env(), cwd=dirty)
    try:
        join(dirty, "claude-9", harness.pid)
        agent_runs_as = json.dumps(claude_event(dirty, "PreToolUse", "Bash", {"command": "git stash -u"}))
        out, _ = harness.communicate(agent_runs_as.encode(), timeout=60)
    finally:
        if harness.poll() is None:
            harness.kill()
    reason = json.loads(out)["hookSpecificOutput"]["permissionDecisionReason"]
    assert "alice: lib/util.py, src/new.py" in reason and "bob: README.md" in reason


def test_a_file_a_peer_edited_before_the_caller_is_still_the_peers_work(dirty):
    agent_writes(dirty, "bob", "lib/util.py", "def util():\n    return 'alice, then bob'\n")
    assert whose(dirty)["lib/util.py"]["agent"] == "bob"
    deny = bash_guard(dirty, "bob", "git checkout -- lib/util.py")
    assert deny is not None and "alice: lib/util.py" in deny["permissionDecisionReason"]
    git(dirty, "add", "lib/util.py")
    assert git(dirty, "commit", "-q", "-m", "both", agent="bob", check=False).returncode == 0
    agent_writes(dirty, "bob", "lib/util.py", "def util():\n    return 'bob alone now'\n")
    assert bash_guard(dirty, "bob", "git checkout -- lib/util.py") is None  # alice's part is committed


def start_of_a_second() -> None:
    import time

    time.sleep(1.0 - time.time() % 1.0 + 0.01)


def test_writes_in_the_same_second_as_a_commit_are_judged_by_the_commits_exact_time(repo):
    """Commit times are whole seconds: a peer's write made just after a commit, in the commit's own second,
    is still the peer's uncommitted work; a write the commit took in is not."""
    start_of_a_second()
    write(repo, "lib/util.py", "def util():\n    return 'committed'\n")
    git(repo, "commit", "-q", "-am", "same second")
    agent_writes(repo, "alice", "lib/util.py", "def util():\n    return 'alice'\n")
    agent_writes(repo, "bob", "lib/util.py", "def util():\n    return 'alice, then bob'\n")
    deny = bash_guard(repo, "bob", "git checkout -- lib/util.py")
    assert deny is not None and "alice: lib/util.py" in deny["permissionDecisionReason"]
    start_of_a_second()
    git(repo, "commit", "-q", "-am", "both", agent="bob")
    agent_writes(repo, "bob", "lib/util.py", "def util():\n    return 'bob alone'\n")
    assert bash_guard(repo, "bob", "git checkout -- lib/util.py") is None


# -- the conflict radar ------------------------------------------------------------------------------

@pytest.fixture
def linked(repo, tmp_path, owners):
    """The repository plus a linked worktree on branch topic, where carol works (with a mesh of its own)."""
    wt = str(tmp_path / "wt-topic")
    git(repo, "worktree", "add", "-q", wt, "-b", "topic")
    join(wt, "carol", owners("carol-wt").pid)
    return repo, wt


def radar(root: str) -> dict:
    r = cli(root, "--json", "radar")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_radar_predicts_a_merge_conflict_across_worktrees_before_the_merge(linked):
    main, wt = linked
    agent_writes(main, "alice", "lib/util.py", "def util():\n    return 'alice in main'\n")
    agent_writes(wt, "carol", "lib/util.py", "def util():\n    return 'carol on topic'\n")
    agent_writes(wt, "carol", "docs/topic.md", "no conflict here\n")
    agent_writes(main, "bob", "README.md", "# bob\n")
    found = radar(main)
    [w] = found["worktrees"]
    assert os.path.realpath(w["path"]) == os.path.realpath(wt) and w["branch"] == "topic"
    assert w["conflicts"] == [{"path": "lib/util.py", "agent": "carol"}]
    assert {u["path"] for u in w["uncommitted"]} == {"lib/util.py", "docs/topic.md"}
    text = cli(main, "radar").stdout
    assert "lib/util.py: would CONFLICT at merge with worktree" in text and "carol" in text
    assert "conflict" in cli(main, "agents").stdout  # the line in `pi-mesh agents`
    # nothing was touched: both sides still have their uncommitted work, nothing new is staged
    assert git(main, "status", "--porcelain").stdout.split("\n")[0].startswith((" M", "??"))
    assert git(wt, "diff", "--cached", "--name-only").stdout == ""
    # and the prediction holds: commit both sides, merge, and git reports the conflict
    git(main, "commit", "-q", "-am", "main side", agent="alice", PI_MESH_OVERRIDE="1")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "topic side", agent="carol")
    merged = git(main, "merge", "topic", check=False)
    assert merged.returncode != 0 and "CONFLICT" in merged.stdout and "lib/util.py" in merged.stdout


def test_radar_lists_files_two_agents_changed(repo):
    agent_writes(repo, "alice", "src/x.py", "alice\n")
    agent_writes(repo, "bob", "src/x.py", "alice and bob\n")
    agent_writes(repo, "bob", "src/y.py", "bob alone\n")
    assert radar(repo)["shared"] == [{"path": "src/x.py", "agents": ["bob", "alice"]}]
    assert "src/x.py: uncommitted changes by bob and alice" in cli(repo, "radar").stdout


def test_editing_a_file_another_worktree_changed_is_warned(linked):
    from pi_mesh_plugin.authorship.radar import edit_warning
    from pi_mesh_plugin.mesh import Mesh

    main, wt = linked
    agent_writes(wt, "carol", "lib/util.py", "def util():\n    return 'carol on topic'\n")
    with Mesh(main, "alice", cwd=main) as m:
        warning = edit_warning(m, "lib/util.py")
        assert warning is not None and "wt-topic (branch topic), by carol" in warning and "radar" in warning
        assert edit_warning(m, os.path.join(main, "README.md")) is None
