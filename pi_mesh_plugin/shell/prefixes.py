"""Commands that run another command (``env``, ``sudo``, ``setsid``, ``flock``, ``su -c`` …).

Each rule takes the words after the prefix and returns the command it runs
(``None``: none, or not seen), or ``(command, state)`` when the command runs
in another directory (``env -C DIR``, ``sudo -D DIR``, ``unshare -w DIR``,
``chroot DIR``).  Command strings (``env -S``, ``su -c``, ``runuser -c``,
``script -c``, ``flock -c``, ``watch``) are handed to the walker as scripts,
and the files a prefix writes itself (``time -o``, ``strace -o``,
``script FILE``, ``flock FILE``, ``fakeroot -s``) are emitted on the way.
"""

from __future__ import annotations

from .options import has, parse_opts, vals
from .words import FILE, State, W

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (the per-call guard path)
    from .walk import Walker

def _moved(st: State, where: list[W]) -> State | None:
    """A copy of ``st`` in the directory ``where[-1]`` (unknown if named at run time); ``None`` if no move."""
    if not where:
        return None
    inner = st.copy()
    d = where[-1]
    inner.cwd = None if d.dyn else inner.path(d.text)
    return inner


def _with(ops: list[W], st: State | None):  # type: ignore[no-untyped-def]
    if not ops:
        return None
    return (ops, st) if st is not None else ops


def _env(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
    opts, ops, after = parse_opts(args, short_arg="uCS", long_arg=("--unset", "--chdir", "--split-string"),
                                  stop_at_operand=True)
    inner = _moved(st, vals(opts, "-C", "--chdir"))
    for v in vals(opts, "-S", "--split-string"):
        wk.script(v.text, (inner or st).copy(), 1)
    ops = ops or after
    while ops and "=" in ops[0].text and not ops[0].text.startswith("="):
        ops = ops[1:]
    return _with(ops, inner)


def _command(wk: Walker, args: list[W], st: State) -> list[W] | None:
    opts, ops, after = parse_opts(args, stop_at_operand=True)
    if has(opts, "-v", "-V"):
        return None
    return (ops or after) or None


def _simple_prefix(short_arg: str = "", long_arg: tuple[str, ...] = (), skip: int = 0,  # type: ignore[no-untyped-def]
                   chdir: tuple[str, ...] = (), writes: tuple[str, ...] = (), short_opt: str = "",
                   none_with: tuple[str, ...] = ()):
    """A prefix whose options only need skipping: the command follows its first ``skip`` operands.
    ``chdir``: options naming the directory it runs in; ``writes``: options naming a file it writes;
    ``none_with``: options with which it runs no command (``taskset -p``)."""
    def prefix(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
        opts, ops, after = parse_opts(args, short_arg=short_arg, long_arg=long_arg, short_opt=short_opt,
                                      stop_at_operand=True)
        wk.emit_all(vals(opts, *writes), FILE, st)
        if none_with and has(opts, *none_with):
            return None
        ops = (ops or after)[skip:]
        if ops and ops[0].text == "--":
            ops = ops[1:]
        return _with(ops, _moved(st, vals(opts, *chdir)))
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


def _run_string(wk: Walker, strings: list[W], st: State) -> None:
    for s in strings:
        if s.dyn:
            wk.anywhere(st)  # a command string built at run time: its writes are not seen
        else:
            wk.script(s.text, st.copy(), 1)


def _su(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
    """``su [-] [USER] -c STRING``, ``runuser -l USER -c STRING``, ``runuser -u USER -- CMD…``, ``sg GROUP -c``."""
    opts, ops, after = parse_opts(args, short_arg="cgGswu", long_arg=(
        "--command", "--group", "--supp-group", "--shell", "--whitelist-environment", "--user",
        "--session-command"))
    _run_string(wk, vals(opts, "-c", "--command", "--session-command"), st)
    if vals(opts, "-u", "--user"):  # runuser -u USER [--] COMMAND…: run directly
        return (ops + after) or None
    return None


def _flock(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
    """``flock [opts] FILE CMD…``, ``flock FILE -c STRING``; ``flock FD`` runs nothing. FILE is created."""
    opts, ops, after = parse_opts(args, short_arg="wEc", long_arg=("--timeout", "--wait", "--conflict-exit-code",
                                                                   "--command"), stop_at_operand=True)
    ops = ops or after
    if not ops:
        return None
    lock = ops[0]
    if not lock.text.isdigit():
        wk.emit(lock, FILE, st)
    rest = ops[1:]
    if rest and not rest[0].dyn and rest[0].text in ("-c", "--command"):
        _run_string(wk, rest[1:2], st)
        return None
    _run_string(wk, vals(opts, "-c", "--command"), st)
    return rest or None


def _script(wk: Walker, args: list[W], st: State) -> None:
    """``script [-q] [-c STRING] [FILE]``: runs STRING, records into FILE (``typescript`` by default)."""
    opts, ops, after = parse_opts(args, short_arg="cEIOBTt", long_arg=(
        "--command", "--echo", "--log-in", "--log-out", "--log-io", "--log-timing", "--timing",
        "--logging-format", "--output-limit"), short_opt="")
    _run_string(wk, vals(opts, "-c", "--command"), st)
    wk.emit_all(vals(opts, "-I", "-O", "-B", "-T", "--log-in", "--log-out", "--log-io", "--log-timing"), FILE, st)
    files = ops + after
    wk.emit_all(files[:1] or [W("typescript")], FILE, st)
    return None


def _watch(wk: Walker, args: list[W], st: State) -> None:
    """``watch [opts] CMD…``: the words joined, run by ``sh -c`` (``-x``: run directly)."""
    opts, ops, after = parse_opts(args, short_arg="nqd", long_arg=("--interval", "--differences", "--equexit"),
                                  short_opt="", stop_at_operand=True)
    ops = ops or after
    if not ops:
        return None
    if has(opts, "-x", "--exec"):
        wk.simple(ops, st.copy(), 1, [], "")
    elif any(o.dyn for o in ops):
        wk.anywhere(st)
    else:
        wk.script(" ".join(o.text for o in ops), st.copy(), 1)
    return None


def _chroot(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
    """``chroot [opts] NEWROOT [CMD…]``: absolute paths under NEWROOT, the directory its ``/``."""
    opts, ops, after = parse_opts(args, long_arg=("--userspec", "--groups"), stop_at_operand=True)
    ops = ops or after
    if not ops:
        return None
    root = ops[0]
    inner = st.copy()
    if root.dyn:
        inner.cwd = None
        inner.root = "/nonexistent-chroot"
    else:
        new = st.path(root.text)
        new = None if new is None else st.norm(new)
        if new is None:
            inner.cwd = None
        elif new != "/":
            inner.root = new
        if not has(opts, "--skip-chdir"):
            inner.cwd = (inner.root or "/") if new is not None else None
    return (ops[1:] or [W("sh")], inner)


def _unshare(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
    opts, ops, after = parse_opts(args, short_arg="SGRwt", long_arg=(
        "--setuid", "--setgid", "--root", "--wd", "--map-user", "--map-group", "--propagation", "--setgroups",
        "--map-users", "--map-groups", "--time", "--monotonic", "--boottime"), short_opt="", stop_at_operand=True)
    ops = ops or after
    inner = _moved(st, vals(opts, "-w", "--wd"))
    return _with(ops or [W("sh")], inner)


def _strace(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
    opts, ops, after = parse_opts(args, short_arg="abeIoOpPsSuEXU", long_arg=(
        "--output", "--attach", "--signal", "--trace", "--trace-path", "--string-limit", "--user", "--env",
        "--summary-sort-by", "--decode-fds", "--quiet", "--columns"), stop_at_operand=True)
    wk.emit_all(vals(opts, "-o", "--output"), FILE, st)
    return (ops or after) or None


def _shell_run(wk: Walker, args: list[W], st: State):  # type: ignore[no-untyped-def]
    """``busybox CMD …``, ``nocache CMD``: the operands are the command."""
    return args or None


PREFIXES = {
    "env": _env, "command": _command, "builtin": _command,
    "sudo": _simple_prefix("ugpChDrtUT", ("--user", "--group", "--prompt", "--chdir", "--host", "--role", "--type",
                                          "--other-user", "--close-from"), chdir=("-D", "--chdir")),
    "doas": _simple_prefix("uC"), "exec": _simple_prefix("a"), "nice": _simple_prefix("n", ("--adjustment",)),
    "nohup": _simple_prefix(), "time": _time, "timeout": _timeout,
    "stdbuf": _simple_prefix("ioe", ("--input", "--output", "--error")),
    "ionice": _simple_prefix("cnp", ("--class", "--classdata", "--pid"), none_with=("-p", "--pid")),
    "xargs": _xargs, "unbuffer": _simple_prefix(), "chronic": _simple_prefix(),
    "setsid": _simple_prefix(), "eatmydata": _simple_prefix(), "nocache": _shell_run, "busybox": _shell_run,
    "flock": _flock, "su": _su, "runuser": _su, "sg": _su, "script": _script, "watch": _watch,
    "chroot": _chroot, "unshare": _unshare, "strace": _strace, "ltrace": _strace,
    "taskset": _simple_prefix("", ("--cpu-list",), skip=1, none_with=("-p", "--pid")),
    "chrt": _simple_prefix("TPD", ("--sched-runtime", "--sched-period", "--sched-deadline"), skip=1,
                           none_with=("-p", "--pid", "-m", "--max")),
    "fakeroot": _simple_prefix("lsib", ("--lib", "--faked", "--fd-base"), writes=("-s",)),
    "prlimit": _simple_prefix("p", ("--pid",), short_opt="cdefilmnqrstuvxy", none_with=("-p", "--pid")),
    "setpriv": _simple_prefix("", ("--reuid", "--regid", "--groups", "--inh-caps", "--ambient-caps",
                                   "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label",
                                   "--apparmor-profile", "--landlock-access", "--landlock-rule", "--ruid", "--euid",
                                   "--rgid", "--egid")),
    "nsenter": _simple_prefix("tSGpmunirUCTw", ("--target", "--setuid", "--setgid", "--wd", "--wdns"),
                              chdir=("--wd",)),
    "numactl": _simple_prefix("CNmpi", ("--physcpubind", "--cpunodebind", "--membind", "--preferred",
                                        "--interleave")),
    "faketime": _simple_prefix("", (), skip=1), "pkexec": _simple_prefix("", ("--user",)),
    "catchsegv": _simple_prefix(), "dbus-run-session": _simple_prefix(), "xvfb-run": _simple_prefix("nsef", (
        "--server-num", "--server-args", "--error-file", "--auth-file")),
    "valgrind": _simple_prefix("", (), writes=("--log-file",)),
    "systemd-run": _simple_prefix("pEuM", ("--property", "--setenv", "--unit", "--machine", "--uid", "--gid",
                                           "--working-directory", "--description", "--slice"),
                                  chdir=("--working-directory",)),
}
