"""What git says about a working tree: its top level, its changes, its index, its linked worktrees.

One ``git status --porcelain=v2 -z --untracked-files=all`` gives, for each
changed path, the blob ids in HEAD and in the index (``hH``, ``hI``): enough
to tell whether a ledger entry's content is committed, staged or only in the
working tree.  Paths are as git prints them, relative to the top level.
"""

from __future__ import annotations

import os
import subprocess

ZERO = "0" * 40


class GitError(Exception):
    """A git command failed; the text is one line."""


def git(args: list[str], cwd: str, env: dict | None = None, check: bool = True) -> bytes:
    try:
        p = subprocess.run(["git", "--literal-pathspecs", *args], cwd=cwd, capture_output=True, check=False,
                           env=env)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if check and p.returncode != 0:
        msg = " ".join(p.stderr.decode("utf-8", "replace").split()) or f"exit {p.returncode}"
        raise GitError(f"git {' '.join(args)}: {msg}")
    return p.stdout


def toplevel(cwd: str) -> str | None:
    try:
        return os.fsdecode(git(["rev-parse", "--show-toplevel"], cwd).strip())
    except GitError:
        return None


class Change:
    """One path ``git status`` reports: ``xy`` (index, worktree letters; ``??`` untracked, ``!!`` ignored),
    the HEAD and index blob ids (``None`` when absent), and for a rename the original path."""

    __slots__ = ("path", "xy", "head", "index", "orig")

    def __init__(self, path: str, xy: str, head: str | None = None, index: str | None = None,
                 orig: str | None = None) -> None:
        self.path, self.xy, self.head, self.index, self.orig = path, xy, head, index, orig

    @property
    def untracked(self) -> bool:
        return self.xy == "??"

    @property
    def ignored(self) -> bool:
        return self.xy == "!!"

    @property
    def unstaged(self) -> bool:
        """The working tree differs from the index (or the file is not in the index at all)."""
        return self.xy[1:] not in ("", ".") or self.xy in ("??", "!!")

    @property
    def staged(self) -> bool:
        return self.xy[:1] not in (".", "?", "!")

    def __repr__(self) -> str:
        return f"Change({self.path!r}, {self.xy!r})"


def _blob(h: str) -> str | None:
    return None if not h or set(h) == {"0"} else h


def status(top: str, ignored: bool = False, env: dict | None = None, paths: list[str] | None = None) -> list[Change]:
    """Every changed, untracked (and, if asked, ignored) path of the working tree at ``top`` (under ``paths``,
    relative to ``top``, if given)."""
    args = ["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames"]
    if ignored:
        args.append("--ignored=matching")
    if paths:
        args += ["--", *paths]
    fields = git(args, top, env).split(b"\0")
    out: list[Change] = []
    i = 0
    while i < len(fields):
        f = fields[i]
        i += 1
        if not f:
            continue
        kind = f[:1]
        if kind == b"1":  # 1 XY sub mH mI mW hH hI path
            parts = f.split(b" ", 8)
            out.append(Change(os.fsdecode(parts[8]), parts[1].decode(), _blob(parts[6].decode()),
                              _blob(parts[7].decode())))
        elif kind == b"2":  # 2 XY sub mH mI mW hH hI Xscore path, then the original path
            parts = f.split(b" ", 9)
            orig = os.fsdecode(fields[i]) if i < len(fields) else None
            i += 1
            out.append(Change(os.fsdecode(parts[9]), parts[1].decode(), _blob(parts[6].decode()),
                              _blob(parts[7].decode()), orig))
        elif kind == b"u":  # u XY sub m1 m2 m3 mW h1 h2 h3 path
            parts = f.split(b" ", 10)
            out.append(Change(os.fsdecode(parts[10]), parts[1].decode(), _blob(parts[7].decode()), None))
        elif kind == b"?":
            out.append(Change(os.fsdecode(f[2:]), "??"))
        elif kind == b"!":
            out.append(Change(os.fsdecode(f[2:]), "!!"))
    return out


def staged_blobs(top: str) -> dict[str, str | None]:
    """Path -> the blob id the next commit would record (``None``: deleted), for every path the index
    changes against HEAD (an unborn HEAD: every path in the index).  Honours ``$GIT_INDEX_FILE``."""
    head = git(["rev-parse", "-q", "--verify", "HEAD"], top, check=False).strip()
    base = "HEAD" if head else git(["hash-object", "-t", "tree", "/dev/null"], top).decode().strip()
    raw = git(["diff-index", "--cached", "--raw", "-z", "--no-abbrev", "--no-renames", base], top)
    fields = raw.split(b"\0")
    out: dict[str, str | None] = {}
    i = 0
    while i + 1 < len(fields) and fields[i]:
        meta = fields[i].decode().split()
        out[os.fsdecode(fields[i + 1])] = _blob(meta[3]) if meta[4] != "D" else None
        i += 2
    return out


def last_commit_time(top: str, path: str) -> tuple[float, bool] | None:
    """When the last commit that touched ``path`` was made (``None``: never committed), and whether that time
    is exact.

    A commit's recorded time is whole seconds.  When the commit object is still a loose file written within
    two seconds of that time, the file's mtime (nanoseconds) is the exact moment it was made; otherwise (the
    object is packed, or the committer date was set by hand) only the recorded second is known.
    """
    out = git(["log", "-1", "--format=%H %ct", "--", path], top, check=False).split()
    if len(out) != 2 or not out[1].isdigit():
        return None
    sha, ct = os.fsdecode(out[0]), float(out[1])
    try:
        obj = os.fsdecode(git(["rev-parse", "--git-path", f"objects/{sha[:2]}/{sha[2:]}"], top).strip())
        mtime = os.stat(obj if os.path.isabs(obj) else os.path.join(top, obj)).st_mtime
    except (GitError, OSError):
        return ct, False
    return (mtime, True) if 0 <= mtime - ct < 2 else (ct, False)


def worktrees(top: str) -> list[dict]:
    """The linked worktrees of the repository (the main one first): ``{path, head, branch}``."""
    raw = git(["worktree", "list", "--porcelain", "-z"], top).split(b"\0")
    out: list[dict] = []
    cur: dict = {}
    for f in raw:
        if not f:
            if cur:
                out.append(cur)
                cur = {}
            continue
        k, _, v = f.partition(b" ")
        if k == b"worktree":
            cur["path"] = os.fsdecode(v)
        elif k == b"HEAD":
            cur["head"] = v.decode()
        elif k == b"branch":
            cur["branch"] = v.decode()
        elif k in (b"bare", b"prunable"):
            cur[k.decode()] = True
    if cur:
        out.append(cur)
    return out
