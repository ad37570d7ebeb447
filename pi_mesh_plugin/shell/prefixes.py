"""Commands that run another command (``env``, ``sudo``, ``nice``, ``timeout``, ``xargs`` …).

Each rule takes the words after the prefix and returns the command it runs
(``None``: none, or not seen); ``env -S`` strings and ``time -o`` files are
handed to the walker on the way.
"""

from __future__ import annotations

from .options import has, parse_opts, vals
from .words import FILE, State, W

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (the per-call guard path)
    from .walk import Walker


def _env(wk: Walker, args: list[W], st: State) -> list[W] | None:
    opts, ops, _ = parse_opts(args, short_arg="uCS", long_arg=("--unset", "--chdir", "--split-string"),
                              stop_at_operand=True)
    for v in vals(opts, "-S", "--split-string"):
        wk.script(v.text, st.copy(), 1)
    while ops and "=" in ops[0].text and not ops[0].text.startswith("="):
        ops = ops[1:]
    return ops or None


def _command(wk: Walker, args: list[W], st: State) -> list[W] | None:
    opts, ops, after = parse_opts(args, stop_at_operand=True)
    if has(opts, "-v", "-V"):
        return None
    return (ops or after) or None


def _simple_prefix(short_arg: str = "", long_arg: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """A prefix whose options only need skipping: the command is its first operand."""
    def prefix(wk: Walker, args: list[W], st: State) -> list[W] | None:
        _, ops, after = parse_opts(args, short_arg=short_arg, long_arg=long_arg, stop_at_operand=True)
        return (ops or after) or None
    return prefix


def _time(wk: Walker, args: list[W], st: State) -> list[W] | None:
    opts, ops, after = parse_opts(args, short_arg="of", long_arg=("--output", "--format"), stop_at_operand=True)
    for v in vals(opts, "-o", "--output"):
        wk.emit(v, FILE, st)
    return (ops or after) or None


def _timeout(wk: Walker, args: list[W], st: State) -> list[W] | None:
    _, ops, after = parse_opts(args, short_arg="sk", long_arg=("--signal", "--kill-after"), stop_at_operand=True)
    ops = ops or after
    return ops[1:] or None  # the duration, then the command


def _xargs(wk: Walker, args: list[W], st: State) -> list[W] | None:
    opts, ops, after = parse_opts(args, short_arg="aEdILnPs", long_arg=(
        "--arg-file", "--eof", "--delimiter", "--replace", "--max-lines", "--max-args", "--max-procs",
        "--max-chars", "--process-slot-var"), short_opt="ei", stop_at_operand=True)
    ops = ops or after
    if not ops:
        return None
    # the items come from stdin: unseen, so they stand for "anything in the current directory"
    unseen = W("*")
    repl = [v.text for v in vals(opts, "-I", "--replace")] + (["{}"] if has(opts, "-i") else [])
    if repl:
        return [W(a.text.replace(repl[0], "*"), a.dyn) if repl[0] in a.text else a for a in ops]
    return ops + [unseen]


PREFIXES = {
    "env": _env, "command": _command, "builtin": _command,
    "sudo": _simple_prefix("ugpChDrtUT", ("--user", "--group", "--prompt", "--chdir", "--host", "--role", "--type",
                                          "--other-user", "--close-from")),
    "doas": _simple_prefix("uC"), "exec": _simple_prefix("a"), "nice": _simple_prefix("n", ("--adjustment",)),
    "nohup": _simple_prefix(), "time": _time, "timeout": _timeout,
    "stdbuf": _simple_prefix("ioe", ("--input", "--output", "--error")),
    "ionice": _simple_prefix("cnp", ("--class", "--classdata", "--pid")), "xargs": _xargs,
    "unbuffer": _simple_prefix(), "chronic": _simple_prefix(),
}
