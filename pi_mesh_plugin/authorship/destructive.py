"""Git commands that would discard another live agent's uncommitted changes are refused.

:func:`destructive_git_block` reads one git command line and works out which
changed files (``git status``) it would throw away:

* ``checkout [REV] [--] PATH…`` / ``checkout .``, ``restore PATH…`` (not
  ``--staged`` alone), ``checkout-index -f``: those paths' unstaged changes
  (from a REV or ``--source``: their staged changes too);
* ``checkout -f``, ``switch -f``/``--discard-changes``, ``reset --hard``,
  ``read-tree -u --reset``: every change to a tracked file;
* ``stash`` (``push``, ``save``, no subcommand; ``-u`` adds untracked files,
  ``-a`` ignored ones too; a pathspec narrows it), and ``merge``/``pull``/
  ``rebase`` with ``--autostash`` (or ``merge.autoStash``/``rebase.autoStash``);
* ``clean -f`` (not ``-n``): what ``git clean -n`` with the same options lists;
* a branch switch (``checkout BRANCH``, ``switch``), ``merge``, ``rebase`` or
  ``pull``: the changed files the target commit changes (``git diff HEAD…T``) -
  git itself refuses most of those, but the agent is told whose work it is.

Of those files, the ones whose last recorded write (the ledger) is another
*live* agent's and not yet committed are that agent's work - and so is a file
another live agent wrote earlier, after the file's last commit, even if the
caller wrote it last; if there are any,
the call is refused with a message naming the agents and their files and
suggesting ``pi-mesh whose`` and a message to them.  Commands that touch only
the caller's own changes - or changes no agent wrote - pass.

:func:`shell_block` finds the git commands of a shell command line (the
parser of :mod:`pi_mesh_plugin.shell`, following ``cd``, ``git -C``,
``bash -c`` …) and checks each.  The guard calls it for every ``bash`` call
whose command mentions ``git``, guarded or not (:func:`pi_mesh_plugin.host.decide`, which records the
block in the feed).
"""

from __future__ import annotations

import fnmatch
import os

from ..records import Block
from ..shell.options import has, parse_opts, vals
from ..shell.words import W
from .gitstate import Change, git, status, toplevel
from .owners import owned_changes

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..mesh import Mesh
    from ..records import ToolCall

    Rule = Callable[["Repo", list[W]], "Plan | None"]

_GLOBAL_ARG = ("-c", "--namespace", "--exec-path", "--config-env", "--super-prefix")
_SKIP = ("--abort", "--quit", "--continue", "--skip", "--edit-todo", "--show-current-patch", "-h", "--help")


class Plan:
    """What a git command would discard: the changes, and whether their staged content goes too
    (``source="head"``) or only what differs from the index (``"index"``)."""

    __slots__ = ("changes", "source")

    def __init__(self, changes: list[Change], source: str) -> None:
        self.changes, self.source = changes, source


class Repo:
    """One working tree, with ``git status`` read once and on demand."""

    def __init__(self, top: str, cwd: str, pre: list[str]) -> None:
        self.top, self.cwd, self.pre = top, cwd, pre
        self._status: dict[bool, list[Change]] = {}

    def git(self, args: list[str], check: bool = False) -> bytes:
        return git([*self.pre, *args], self.cwd, check=check)

    def changes(self, ignored: bool = False) -> list[Change]:
        if ignored not in self._status:
            self._status[ignored] = status(self.top, ignored=ignored)
        return self._status[ignored]

    def tracked(self) -> list[Change]:
        return [c for c in self.changes() if not (c.untracked or c.ignored)]

    def specs(self, words: list[W]) -> list[str]:
        """Pathspecs relative to the top level (``.`` relative to the cwd is the cwd)."""
        out = []
        for w in words:
            t = w.text
            if t.startswith(":"):  # pathspec magic (:/, :(top)…): the whole tree, to be safe
                out.append("*")
                continue
            full = os.path.normpath(os.path.join(self.cwd, os.path.expanduser(t)))
            rel = os.path.relpath(full, self.top)
            out.append("*" if rel == "." else rel)
        return out

    def matching(self, changes: list[Change], specs: list[str]) -> list[Change]:
        def hit(p: str) -> bool:
            return any(s == "*" or p == s or p.startswith(s.rstrip("/") + "/") or fnmatch.fnmatchcase(p, s)
                       for s in specs)

        return [c for c in changes if hit(c.path)]

    def is_commit(self, name: str) -> bool:
        return bool(self.git(["rev-parse", "-q", "--verify", "--end-of-options", name + "^{commit}"]).strip())

    def config_true(self, key: str) -> bool:
        return self.git(["config", "--type=bool", "--get", key]).strip() == b"true"

    def overwritten(self, target: str, three_dot: bool = False) -> Plan:
        """Changed files (tracked or not) that moving to ``target`` would rewrite."""
        rng = f"HEAD...{target}" if three_dot else target
        out = self.git(["diff", "--name-only", "-z", "--no-renames", rng, "--"] if three_dot
                       else ["diff", "--name-only", "-z", "--no-renames", "HEAD", rng, "--"])
        names = {os.fsdecode(n) for n in out.split(b"\0") if n}
        return Plan([c for c in self.changes() if c.path in names], "head")


def plan(argv: list[str], cwd: str) -> tuple[Repo, Plan] | None:
    """The files the git command ``argv`` (``["git", …]``) run in ``cwd`` would discard, or ``None``."""
    args = list(argv[1:])
    pre: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a == "-C" and i + 1 < len(args):
            cwd = os.path.join(cwd, os.path.expanduser(args[i + 1]))
            i += 2
        elif a in ("--git-dir", "--work-tree") and i + 1 < len(args):
            pre += [a, args[i + 1]]
            i += 2
        elif a.startswith(("--git-dir=", "--work-tree=")):
            pre.append(a)
            i += 1
        elif a in _GLOBAL_ARG and i + 1 < len(args):
            i += 2
        else:
            i += 1
    if i >= len(args) or not os.path.isdir(cwd):
        return None
    sub, rest = args[i], [W(a) for a in args[i + 1:]]
    rule = _RULES.get(sub)
    if rule is None or any(a.text in _SKIP for a in rest):
        return None
    top = os.fsdecode(git([*pre, "rev-parse", "--show-toplevel"], cwd, check=False).strip()) if pre \
        else toplevel(cwd)
    if not top:
        return None
    repo = Repo(top, cwd, pre)
    p = rule(repo, rest)
    return (repo, p) if p is not None and p.changes else None


def _checkout(repo: Repo, args: list[W]) -> Plan | None:
    opts, ops, after = parse_opts(args, short_arg="bB", long_arg=("--orphan", "--conflict", "--pathspec-from-file"))
    force = has(opts, "-f", "--force")
    if has(opts, "-m", "--merge"):
        return None  # local changes are merged into the switch, not thrown away
    if has(opts, "--pathspec-from-file"):
        return Plan(repo.tracked(), "head")
    if after:  # checkout [REV] -- PATH…
        return Plan(repo.matching(repo.tracked(), repo.specs(after)), "head" if ops else "index")
    if has(opts, "-b", "-B", "--orphan"):  # a new branch at ops[0] (default HEAD: nothing changes)
        if force:
            return Plan(repo.tracked(), "head")
        return repo.overwritten(ops[0].text) if ops else None
    if ops:
        if repo.is_commit(ops[0].text):
            if len(ops) > 1:  # checkout REV PATH…
                return Plan(repo.matching(repo.tracked(), repo.specs(ops[1:])), "head")
            return Plan(repo.tracked(), "head") if force else repo.overwritten(ops[0].text)
        return Plan(repo.matching(repo.tracked(), repo.specs(ops)), "index")  # checkout PATH… / checkout .
    return Plan(repo.tracked(), "head") if force else None


def _switch(repo: Repo, args: list[W]) -> Plan | None:
    opts, ops, _ = parse_opts(args, short_arg="cC", long_arg=("--create", "--force-create", "--orphan", "--conflict"))
    if has(opts, "-f", "--force", "--discard-changes"):
        return Plan(repo.tracked(), "head")
    if has(opts, "-m", "--merge", "--orphan"):
        return None
    creating = has(opts, "-c", "-C", "--create", "--force-create")
    target = ops[0].text if ops else None
    if creating:
        return None if not ops else repo.overwritten(ops[0].text)
    return repo.overwritten(target) if target and target != "-" else None


def _restore(repo: Repo, args: list[W]) -> Plan | None:
    opts, ops, after = parse_opts(args, short_arg="s", long_arg=("--source", "--conflict", "--pathspec-from-file"))
    staged, worktree = has(opts, "-S", "--staged"), has(opts, "-W", "--worktree")
    if staged and not worktree:
        return None
    source = "head" if (vals(opts, "-s", "--source") or staged) else "index"
    if has(opts, "--pathspec-from-file"):
        return Plan(repo.tracked(), source)
    paths = ops + after
    return Plan(repo.matching(repo.tracked(), repo.specs(paths)), source) if paths else None


def _reset(repo: Repo, args: list[W]) -> Plan | None:
    opts, _, _ = parse_opts(args)
    return Plan(repo.tracked(), "head") if has(opts, "--hard") else None


def _stash(repo: Repo, args: list[W]) -> Plan | None:
    sub = "push"
    if args and not args[0].text.startswith("-"):
        sub, args = args[0].text, args[1:]
    if sub not in ("push", "save"):
        return None
    opts, ops, after = parse_opts(args, short_arg="m", long_arg=("--message", "--pathspec-from-file"))
    every = has(opts, "-a", "--all")
    untracked = every or has(opts, "-u", "--include-untracked")
    changes = [c for c in repo.changes(ignored=every)
               if not (c.untracked and not untracked) and not (c.ignored and not every)]
    if has(opts, "-S", "--staged"):
        changes = [c for c in changes if c.staged]
    paths = after or (ops if sub == "push" else [])
    if paths:
        changes = repo.matching(changes, repo.specs(paths))
    return Plan(changes, "index" if has(opts, "-k", "--keep-index") else "head")


def _clean(repo: Repo, args: list[W]) -> Plan | None:
    opts, ops, after = parse_opts(args, short_arg="e", long_arg=("--exclude",))
    if has(opts, "-n", "--dry-run"):
        return None
    if not has(opts, "-f", "--force", "-i", "--interactive") and repo.git(
            ["config", "--type=bool", "--get", "clean.requireForce"]).strip() != b"false":
        return None  # git refuses to clean without -f
    dry = ["-c", "core.quotePath=false", "clean", "-n"]
    for name, val in opts:
        if name in ("-d", "-x", "-X"):
            dry.append(name)
        elif name in ("-e", "--exclude") and isinstance(val, W):
            dry += ["-e", val.text]
        elif name in ("-f", "--force"):
            dry.append("-f")  # -ff also removes nested repositories
    out = repo.git([*dry, "--", *[w.text for w in ops + after]]).decode("utf-8", "surrogateescape")
    gone = []
    for line in out.splitlines():
        if line.startswith("Would remove "):
            rel = os.path.relpath(os.path.normpath(os.path.join(repo.cwd, line[len("Would remove "):])), repo.top)
            gone.append(rel + ("/" if line.endswith("/") else ""))
    if not gone:
        return None
    loose = [c for c in repo.changes(ignored=has(opts, "-x", "-X")) if c.untracked or c.ignored]
    hit = [c for c in loose if any(c.path == g or (g.endswith("/") and c.path.startswith(g)) for g in gone)]
    return Plan(hit, "head")


def _checkout_index(repo: Repo, args: list[W]) -> Plan | None:
    opts, ops, after = parse_opts(args, long_arg=("--prefix", "--stage"))
    if not has(opts, "-f", "--force") or any(o[0] == "--prefix" for o in opts):
        return None
    if has(opts, "-a", "--all", "--stdin"):
        return Plan(repo.tracked(), "index")
    paths = ops + after
    return Plan(repo.matching(repo.tracked(), repo.specs(paths)), "index") if paths else None


def _read_tree(repo: Repo, args: list[W]) -> Plan | None:
    opts, _, _ = parse_opts(args, long_arg=("--prefix", "--index-output", "--exclude-per-directory"))
    return Plan(repo.tracked(), "head") if has(opts, "-u") and has(opts, "--reset") else None


def _integrate(sub: str) -> Rule:
    def rule(repo: Repo, args: list[W]) -> Plan | None:
        opts, ops, _ = parse_opts(args, short_arg="sXmFx" if sub != "rebase" else "sXx",
                                  long_arg=("--strategy", "--strategy-option", "--onto", "--exec", "-m",
                                            "--message", "--file", "--into-name"))
        autostash = has(opts, "--autostash") or (not has(opts, "--no-autostash") and repo.config_true(
            "rebase.autoStash" if sub == "rebase" or (sub == "pull" and has(opts, "-r", "--rebase"))
            else "merge.autoStash"))
        if autostash:
            return Plan(repo.tracked(), "head")
        if sub == "pull":
            target = "@{upstream}"
        elif sub == "rebase":
            onto = vals(opts, "--onto")
            target = onto[0].text if onto else (ops[0].text if ops else "@{upstream}")
        else:
            target = ops[0].text if ops else "@{upstream}"
        return repo.overwritten(target, three_dot=True)

    return rule


_RULES = {"checkout": _checkout, "switch": _switch, "restore": _restore, "reset": _reset, "stash": _stash,
          "clean": _clean, "checkout-index": _checkout_index, "read-tree": _read_tree,
          "merge": _integrate("merge"), "pull": _integrate("pull"), "rebase": _integrate("rebase")}


def destructive_git_block(mesh: Mesh, argv: list[str], cwd: str, tool: str = "bash") -> Block | None:
    """A :class:`Block` if the git command ``argv`` run in ``cwd`` would discard another live agent's
    uncommitted changes, else ``None`` (see the module docstring)."""
    from .commits import committer

    found = plan(argv, cwd)
    if found is None:
        return None
    repo, p = found
    me = committer(mesh)
    victims: dict[str, list[str]] = {}
    for o in owned_changes(mesh, repo.top, p.changes):
        if o.agent and o.agent != me and o.live and o.pending(p.source):
            victims.setdefault(o.agent, []).append(o.path)
        if o.entry and o.pending(p.source):  # agents that wrote the file earlier, after its last commit
            for a in o.co_writers(repo.top):
                if a != me and o.path not in victims.get(a, []):
                    victims.setdefault(a, []).append(o.path)
    if not victims:
        return None
    shown = " ".join(argv)
    shown = shown if len(shown) <= 120 else shown[:119] + "…"
    lines = [f"BLOCKED: `{shown}` would discard uncommitted work of other live agents:"]
    for agent, paths in sorted(victims.items()):
        lines.append(f"  {agent}: " + ", ".join(paths[:10]) + (f" (+{len(paths) - 10} more)" if len(paths) > 10 else ""))
    peers = sorted(victims)
    lines.append("That work is not yours to throw away. Run `pi-mesh whose` to see who wrote what, and ask "
                 "before touching it: " + "; ".join(f'send_message(to="{a}", text="...")' for a in peers)
                 + f" (or pi-mesh send {peers[0]} \"...\").")
    lines.append("To act on your own changes only, name your files (git stash push -- PATH..., "
                 "git restore PATH...); the author may hand its files over: pi-mesh handover PATH... --to NAME.")
    first = peers[0]
    return Block(tool=tool, path=victims[first][0], canonical=victims[first][0], holder=first,
                 reason="uncommitted work", message="\n".join(lines))


def git_commands(command: str) -> list[tuple[str, list[str]]]:
    """``(directory relative to the start, argv)`` of every git command in the shell ``command``."""
    from ..shell.walk import Targets, Walker
    from ..shell.words import State

    class _Walker(Walker):
        def __init__(self) -> None:
            super().__init__(Targets())
            self.gits: list[tuple[str, list[str]]] = []
            self._seen: set[int] = set()

        def _collect(self, start: int, st: State) -> None:
            for c in self.commands[start:]:
                if c and c[0] == "git" and id(c) not in self._seen:
                    self._seen.add(id(c))
                    self.gits.append((st.cwd or "", c))  # an unknown directory: the start

        def simple(self, argv: list[W], st: State, depth: int, redirects: list, src: str) -> None:
            n = len(self.commands)
            super().simple(argv, st, depth, redirects, src)
            self._collect(n, st)

        def fallback(self, text: str, st: State, reason: str) -> None:
            n = len(self.commands)
            super().fallback(text, st, reason)
            self._collect(n, st)

    w = _Walker()
    w.script(command, State(), 0)
    return w.gits


def shell_block(mesh: Mesh, call: ToolCall) -> Block | None:
    """The first git command of a ``bash`` call that would discard a live peer's work, as a :class:`Block`."""
    command = (call.input or {}).get("command")
    if not isinstance(command, str) or "git" not in command:
        return None
    base = call.cwd or mesh.cwd
    for rel, argv in git_commands(command):
        d = os.path.expanduser(rel) if rel.startswith("~") else rel
        block = destructive_git_block(mesh, argv, os.path.join(base, d) if d else base, call.tool)
        if block is not None:
            return block
    return None
