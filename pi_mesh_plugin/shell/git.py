"""The rules for ``git``: the commands that write paths, and those that rewrite the whole working tree.

``checkout [REV] -- PATH``, ``restore`` (not ``--staged`` alone), ``mv``,
``rm`` (not ``--cached``) and ``clean`` write their paths; ``reset --hard``,
``stash``, ``switch``, ``merge``, ``rebase``, ``pull``, ``cherry-pick``,
``revert``, ``am`` and ``apply`` write the project (``.``).  ``git -C DIR``
is followed.
"""

from __future__ import annotations

from .fileops import copy_like
from .options import has, parse_opts, vals
from .words import DIR, State, W

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (the per-call guard path)
    from .walk import Walker


def git(wk: Walker, args: list[W], st: State, depth: int) -> None:
    i = 0
    here = st
    while i < len(args):
        t = args[i].text
        if args[i].dyn:
            return
        if t in ("-C",) and i + 1 < len(args):
            if args[i + 1].dyn:
                return
            here = here.copy()
            here.cwd = here.path(args[i + 1].text)
            i += 2
        elif t in ("-c", "--git-dir", "--work-tree", "--namespace", "--exec-path", "--config-env") \
                and i + 1 < len(args):
            i += 2
        elif t.startswith("-"):
            i += 1
        else:
            break
    if i >= len(args):
        return
    sub, rest = args[i].text, args[i + 1:]
    handler = _GIT.get(sub)
    if handler is not None:
        handler(wk, rest, here)


def _git_checkout(wk: Walker, args: list[W], st: State) -> None:
    opts, ops, after = parse_opts(args, short_arg="bBU", long_arg=("--orphan", "--conflict",
                                                                   "--pathspec-from-file"))
    if has(opts, "--pathspec-from-file"):
        wk.emit_path(".", DIR, st)
        return
    if has(opts, "-f", "--force", "-m", "--merge") and not after:
        wk.emit_path(".", DIR, st)  # a forced switch rewrites the working tree
        return
    if after:
        paths = after
    elif has(opts, "-b", "-B", "--orphan"):
        return
    else:
        paths = ops
    wk.emit_all(paths, DIR, st)


def _git_restore(wk: Walker, args: list[W], st: State) -> None:
    opts, ops, after = parse_opts(args, short_arg="sU", long_arg=("--source", "--conflict",
                                                                  "--pathspec-from-file"))
    if has(opts, "-S", "--staged") and not has(opts, "-W", "--worktree"):
        return
    if has(opts, "--pathspec-from-file"):
        wk.emit_path(".", DIR, st)
    wk.emit_all(ops + after, DIR, st)


def _git_tree(wk: Walker, args: list[W], st: State) -> None:
    """Commands that rewrite the working tree as a whole."""
    opts, _, _ = parse_opts(args)
    if has(opts, "--help", "-h"):
        return
    wk.emit_path(".", DIR, st)


def _git_reset(wk: Walker, args: list[W], st: State) -> None:
    opts, _, _ = parse_opts(args)
    if has(opts, "--hard", "--merge", "--keep"):
        wk.emit_path(".", DIR, st)


def _git_stash(wk: Walker, args: list[W], st: State) -> None:
    sub = args[0].text if args and not args[0].startswith("-") else "push"
    rest = args[1:] if args and not args[0].startswith("-") else args
    if sub in ("push", "save"):
        _, ops, after = parse_opts(rest, short_arg="m", long_arg=("--message", "--pathspec-from-file"))
        paths = after or (ops if sub == "push" else [])
        if paths:
            wk.emit_all(paths, DIR, st)
        else:
            wk.emit_path(".", DIR, st)
    elif sub in ("pop", "apply", "branch"):
        wk.emit_path(".", DIR, st)


def _git_clean(wk: Walker, args: list[W], st: State) -> None:
    opts, ops, after = parse_opts(args, short_arg="e", long_arg=("--exclude",))
    if has(opts, "-n", "--dry-run"):
        return
    wk.emit_all((ops + after) or [W(".")], DIR, st)


def _git_switch(wk: Walker, args: list[W], st: State) -> None:
    opts, ops, _ = parse_opts(args, short_arg="cC", long_arg=("--create", "--force-create", "--orphan",
                                                                  "--conflict"))
    if has(opts, "-c", "-C", "--create", "--force-create") and not ops:
        return
    if has(opts, "--help", "-h"):
        return
    wk.emit_path(".", DIR, st)


def _git_rm(wk: Walker, args: list[W], st: State) -> None:
    opts, ops, after = parse_opts(args, long_arg=("--pathspec-from-file",))
    if has(opts, "--cached", "-n", "--dry-run"):
        return
    wk.emit_all(ops + after, DIR, st)


_mv = copy_like(True, "", ())


def _git_mv(wk: Walker, args: list[W], st: State) -> None:
    _mv(wk, [a for a in args if a.text not in ("-k",)], st, 0)


def _git_apply(wk: Walker, args: list[W], st: State) -> None:
    opts, _, _ = parse_opts(args, short_arg="pC", long_arg=("--directory", "--exclude", "--include"))
    if has(opts, "--cached", "--check", "--stat", "--numstat", "--summary") and not has(opts, "--apply",
                                                                                          "--index"):
        return
    wk.emit_path(".", DIR, st)


def _git_worktree(wk: Walker, args: list[W], st: State) -> None:
    if not args or args[0].text != "add":
        return
    _, ops, after = parse_opts(args[1:], short_arg="bB", long_arg=("--reason",))
    wk.emit_all((ops + after)[:1], DIR, st)


def _git_clone(wk: Walker, args: list[W], st: State) -> None:
    opts, ops, after = parse_opts(args, short_arg="obcuj", long_arg=(
        "--origin", "--branch", "--config", "--upload-pack", "--depth", "--reference", "--separate-git-dir",
        "--template", "--jobs", "--filter", "--shallow-since", "--shallow-exclude", "--server-option",
        "--bundle-uri", "--ref-format", "--reference-if-able"))
    ops = ops + after
    wk.emit_all(vals(opts, "--separate-git-dir"), DIR, st)
    if len(ops) >= 2:
        wk.emit(ops[1], DIR, st)
    elif ops and not ops[0].dyn:
        name = ops[0].text.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        name = name[:-4] if name.endswith(".git") else name
        wk.emit(W(name or "."), DIR, st)


def _git_init(wk: Walker, args: list[W], st: State) -> None:
    opts, ops, after = parse_opts(args, short_arg="b", long_arg=("--template", "--separate-git-dir", "--shared",
                                                                  "--initial-branch", "--object-format",
                                                                  "--ref-format"))
    wk.emit_all(vals(opts, "--separate-git-dir"), DIR, st)
    d = (ops + after)[:1]
    if d:
        wk.emit(d[0], DIR, st)
    else:
        wk.emit_path(".git", DIR, st)


def _git_output(flags: tuple[str, ...], kind: str = "file"):  # type: ignore[no-untyped-def]
    """``git archive -o F``, ``git format-patch -o DIR``, ``git diff --output=F`` …"""
    def handler(wk: Walker, args: list[W], st: State) -> None:
        opts, _, _ = parse_opts(args, short_arg="o" if "-o" in flags else "", long_arg=("--output",
                                                                                         "--output-directory"))
        wk.emit_all(vals(opts, *flags), kind, st)
    return handler


def _git_bundle(wk: Walker, args: list[W], st: State) -> None:
    ops = [a for a in args if not a.text.startswith("-")]
    if len(ops) >= 2 and ops[0].text == "create":
        wk.emit(ops[1], "file", st)


def _git_submodule(wk: Walker, args: list[W], st: State) -> None:
    ops = [a for a in args if not a.text.startswith("-")]
    if ops and ops[0].text == "add":
        _git_clone(wk, ops[1:], st)
    elif ops and ops[0].text in ("update", "deinit", "absorbgitdirs"):
        wk.emit_all(ops[1:] or [W(".")], DIR, st)


_GIT = {
    "worktree": _git_worktree, "clone": _git_clone, "init": _git_init, "bundle": _git_bundle,
    "submodule": _git_submodule,
    "archive": _git_output(("-o", "--output")), "format-patch": _git_output(("-o", "--output-directory"), DIR),
    "diff": _git_output(("--output",)), "log": _git_output(("--output",)), "show": _git_output(("--output",)),
    "checkout": _git_checkout, "restore": _git_restore, "reset": _git_reset, "stash": _git_stash,
    "clean": _git_clean, "switch": _git_switch, "rm": _git_rm, "mv": _git_mv, "apply": _git_apply,
    "merge": _git_tree, "rebase": _git_tree, "pull": _git_tree, "cherry-pick": _git_tree, "revert": _git_tree,
    "am": _git_tree,
}
