"""The table of writer commands: which rule reads which command's arguments.

The file commands' rules are in :mod:`.fileops`, git's in :mod:`.git`; the
in-place formatters and the package managers that rewrite a manifest, its lock
file and install tree are here.  A command not in :data:`WRITERS` writes
nothing the walk can see (redirections aside).
"""

from __future__ import annotations

from . import fileops, tools
from .fileops import copy_like, every_operand
from .git import git
from .options import has, parse_opts
from .words import DIR, FILE, State, W

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (the per-call guard path)
    from .walk import Walker


def _formatter(flags: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """Tools that rewrite files in place: always, or only with one of ``flags``; the operands (default: .)."""
    def handler(wk: Walker, args: list[W], st: State, depth: int) -> None:
        opts, ops, after = parse_opts(args)
        if flags and not has(opts, *flags):
            return
        if not flags and has(opts, "--check", "--diff", "-h", "--help", "--version"):
            return
        wk.emit_all((ops + after) or [W(".")], DIR, st)
    return handler


def _ruff(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, ops, after = parse_opts(args, long_arg=("--config", "--select", "--ignore", "--line-length"))
    if not ops or ops[0].dyn:
        return
    sub = ops[0].text
    if sub == "format" and not has(opts, "--check", "--diff") or sub == "check" and has(opts, "--fix"):
        wk.emit_all((ops[1:] + after) or [W(".")], DIR, st)


_MANIFESTS = {
    # command: ({subcommands that rewrite the project's manifest / lock / install tree}, files, bare command too)
    "npm": ({"install", "i", "add", "uninstall", "remove", "rm", "un", "update", "up", "upgrade", "ci", "dedupe",
             "prune", "link"}, ("package.json", "package-lock.json", "node_modules/"), False),
    "yarn": ({"add", "remove", "install", "upgrade", "up", "dedupe"},
             ("package.json", "yarn.lock", "node_modules/"), True),
    "pnpm": ({"add", "install", "i", "remove", "rm", "uninstall", "update", "up", "dedupe", "prune"},
             ("package.json", "pnpm-lock.yaml", "node_modules/"), False),
    "bun": ({"add", "install", "i", "remove", "rm", "update"},
            ("package.json", "bun.lockb", "bun.lock", "node_modules/"), False),
    "poetry": ({"add", "remove", "lock", "update", "install"}, ("pyproject.toml", "poetry.lock"), False),
    "uv": ({"add", "remove", "lock", "sync"}, ("pyproject.toml", "uv.lock", ".venv/"), False),
    "cargo": ({"add", "remove", "rm", "update", "generate-lockfile"}, ("Cargo.toml", "Cargo.lock"), False),
    "go": ({"get", "mod"}, ("go.mod", "go.sum"), False),
}


def _manifest(name: str):  # type: ignore[no-untyped-def]
    """A package manager: the subcommands in :data:`_MANIFESTS` write its manifest, lock file and install tree."""
    subs, files, bare = _MANIFESTS[name]

    def handler(wk: Walker, args: list[W], st: State, depth: int) -> None:
        ops = [a for a in args if not a.text.startswith("-")]
        if ops and ops[0].dyn:
            return
        if (ops and ops[0].text in subs and not (name == "go" and ops[0].text == "mod" and ops[1:2]
                                                 and ops[1].text not in ("tidy", "edit", "init", "vendor"))) \
                or (bare and not ops):
            for f in files:
                wk.emit_path(f, DIR if f.endswith("/") else FILE, st)
    return handler


WRITERS = {
    "tee": every_operand(FILE, long_arg=("--output-error",)), "sed": fileops.sed, "gsed": fileops.sed,
    "perl": fileops.perl,
    "mv": copy_like(True), "cp": copy_like(False), "ln": copy_like(False, link=True), "install": fileops.install,
    "rm": every_operand(FILE, recursive="-r -R --recursive"), "rmdir": every_operand(DIR),
    "unlink": every_operand(FILE),
    "shred": every_operand(FILE, short_arg="nsx", long_arg=("--iterations", "--size")),
    "touch": every_operand(FILE, short_arg="dtr", long_arg=("--date", "--reference", "--time")),
    "truncate": every_operand(FILE, short_arg="sr", long_arg=("--size", "--reference")),
    "mkdir": every_operand(FILE, short_arg="m", long_arg=("--mode", "--context")),
    "chmod": fileops.mode_change, "chown": fileops.mode_change, "chgrp": fileops.mode_change,
    "dd": fileops.dd, "sort": fileops.sort, "uniq": fileops.uniq, "curl": fileops.curl, "wget": fileops.wget,
    "tar": fileops.tar, "unzip": fileops.unzip, "patch": fileops.patch, "find": fileops.find, "git": git,
    "black": _formatter(), "isort": _formatter(), "rustfmt": _formatter(), "autopep8": _formatter(("-i", "--in-place")),
    "yapf": _formatter(("-i", "--in-place")), "gofmt": _formatter(("-w",)), "goimports": _formatter(("-w",)),
    "clang-format": _formatter(("-i",)), "prettier": _formatter(("-w", "--write")),
    "eslint": _formatter(("--fix",)),
    "ruff": _ruff, "rsync": fileops.rsync, "sponge": every_operand(FILE), "ed": every_operand(FILE, short_arg="p"),
    "ex": every_operand(FILE),
    **{name: _manifest(name) for name in _MANIFESTS},
    **{name: tools.compressor(name) for name in tools._SUFFIX},
    "split": tools.split,
    "mktemp": tools.mktemp, "mkfifo": every_operand(FILE, short_arg="mZ", long_arg=("--mode", "--context")),
    "mknod": fileops.first_operand, "zip": tools.zip_, "openssl": tools.openssl, "sqlite3": tools.sqlite3,
    "vim": tools.vim, "vi": tools.vim, "nvim": tools.vim, "gvim": tools.vim, "vimdiff": tools.vim,
    "awk": tools.awk, "gawk": tools.awk, "mawk": tools.awk, "nawk": tools.awk,
}
