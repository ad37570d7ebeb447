"""Rules for the commands that write the files named in their arguments.

``touch``/``rm``/… (every operand), ``tee``, ``sed -i``, ``perl -i``,
``mv``/``cp``/``ln``/``install``, ``chmod``/``chown``, ``dd of=``,
``sort -o``, ``uniq IN OUT``, ``curl -o``, ``wget -O``, ``tar``, ``unzip``,
``patch``, ``find -delete``/``-exec``, ``rsync``.  A rule is called with the
walker, the words after the command name, the walk's state and the nesting
depth, and emits the paths written through the walker.
"""

from __future__ import annotations

import posixpath

from .options import has, parse_opts, vals
from .words import DIR, FILE, State, W, expands

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (the per-call guard path)
    from .walk import Walker


def every_operand(kind: str, short_arg: str = "", long_arg: tuple[str, ...] = (),  # type: ignore[no-untyped-def]
                  recursive: str = ""):
    """A command whose every operand is written (``touch``, ``rm``, ``tee`` …); ``recursive``: the
    options that make them directories."""
    def handler(wk: Walker, args: list[W], st: State, depth: int) -> None:
        opts, ops, after = parse_opts(args, short_arg=short_arg, long_arg=long_arg)
        k = DIR if recursive and has(opts, *recursive.split()) else kind
        wk.emit_all(ops + after, k, st)
    return handler


def sed(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, ops, after = parse_opts(args, short_arg="efl", long_arg=("--expression", "--file", "--line-length"),
                                  short_opt="i")
    files = ops + after
    scripts = vals(opts, "-e", "--expression")
    if not has(opts, "-e", "--expression", "-f", "--file"):
        scripts, files = files[:1], files[1:]  # the first operand is the script
    from .tools import sed_writes

    for s in scripts:
        if not s.dyn:
            sed_writes(wk, s.text, st, depth)
    if has(opts, "-i", "--in-place"):
        wk.emit_all(files, FILE, st)


def perl(wk: Walker, args: list[W], st: State, depth: int) -> None:
    inplace = script = False
    files: list[W] = []
    i = 0
    while i < len(args):
        a = args[i]
        t = a.text
        if a.dyn or not t.startswith("-") or t == "-":
            break
        i += 1
        if t == "--":
            break
        j = 1
        while j < len(t):
            c = t[j]
            if c == "i":
                inplace = True
                break
            if c in "eE":
                script = True
                if j + 1 == len(t):
                    i += 1  # the program is the next word
                break
            if c in "0l":  # -0[octal|xHEX], -l[octal]: optional digits, then more switches
                j += 1
                if c == "0" and j < len(t) and t[j] in "xX":
                    j += 1
                    while j < len(t) and t[j] in "0123456789abcdefABCDEF":
                        j += 1
                while j < len(t) and t[j].isdigit():
                    j += 1
                continue
            if c in "MmIxFdDCV":
                break  # the rest of the cluster is this switch's argument
            j += 1
    files = args[i:]
    if not script:
        files = files[1:]  # the program file
    if inplace:
        wk.emit_all(files, FILE, st)


def is_dir(w: W, st: State) -> bool:
    """Is the destination ``w`` a directory: written as one (``dir/``, ``.``, ``..``) or one on disk?"""
    t = w.text
    if t.endswith("/") or t in (".", "..") or t.endswith(("/.", "/..")):
        return True
    p = st.path(t)
    if p is None or p.startswith("~") or (st.start is None and not p.startswith("/")):
        return False
    import os

    return os.path.isdir(st.norm(p))


def copy_like(removes_sources: bool, short_arg: str = "St",  # type: ignore[no-untyped-def]
              long_arg: tuple[str, ...] = ("--suffix", "--target-directory"), link: bool = False):
    """``mv``/``cp``/``ln``/``install``: ``DEST/basename(SRC)`` when DEST is a directory, else DEST itself
    (and, when it may be a directory made earlier in the command, ``DEST/basename(SRC)`` too); for mv the
    sources.  A source of cp is only read.  ``ln`` records the links it makes, so later paths through them
    are followed (:meth:`.State.path`)."""
    def handler(wk: Walker, args: list[W], st: State, depth: int) -> None:
        opts, ops, after = parse_opts(args, short_arg=short_arg, long_arg=long_arg)
        ops = ops + after
        recursive = not link and (has(opts, "-r", "-R", "-a", "--recursive", "--archive") or removes_sources)
        kind = DIR if recursive else FILE
        target_dirs = vals(opts, "-t", "--target-directory")
        no_target_dir = has(opts, "-T", "--no-target-directory")
        if link and not target_dirs and len(ops) == 1:
            target_dirs = [W(".")]
        made: list[tuple[W, str | None]] = []  # (source, where it lands) for ln
        if target_dirs:
            dests, sources = target_dirs, ops
            into = True
        elif len(ops) >= 2:
            dests, sources = [ops[-1]], ops[:-1]
            into = len(sources) > 1 or (not no_target_dir and is_dir(ops[-1], st))
            if not into:
                wk.emit(ops[-1], kind, st)  # DEST itself (a file, or a new directory)
                made.append((sources[0], None if ops[-1].dyn else ops[-1].text))
        else:
            return
        for d in dests:
            if d.dyn:
                wk.emit(d, DIR, st)
                continue
            for s in sources:
                if expands(s):
                    wk.emit(W(d.text.rstrip("/") + "/*"), DIR, st)  # unknown names: anything in DEST
                elif into or not no_target_dir:
                    base = posixpath.basename(s.text.rstrip("/")) or s.text
                    wk.emit(W(d.text.rstrip("/") + "/" + base), kind, st)
                    if into:
                        made.append((s, d.text.rstrip("/") + "/" + base))
        if removes_sources:
            wk.emit_all(sources, DIR, st)
        if link:
            symbolic = has(opts, "-s", "--symbolic")
            for s, where in made:
                _record_link(st, s, where, symbolic)
    return handler


def _record_link(st: State, source: W, where: str | None, symbolic: bool) -> None:
    """``where`` now leads to ``source`` (a symbolic link's text is relative to the link's directory)."""
    if where is None:
        return
    at = st.path(where)
    if at is None:
        return
    target: str | None = None
    if not expands(source):
        if symbolic and not source.text.startswith(("/", "~")):
            target = st.norm(posixpath.join(posixpath.dirname(st.norm(at)), source.text))
        else:
            p = st.path(source.text)
            target = None if p is None else st.norm(p)
    st.links[st.norm(at)] = target


_INSTALL = ("mogSt", ("--mode", "--owner", "--group", "--suffix", "--target-directory"))
_install_dirs = every_operand(FILE, *_INSTALL)
_install_files = copy_like(False, *_INSTALL)


def install(wk: Walker, args: list[W], st: State, depth: int) -> None:
    """``install -d DIR…`` creates every operand; otherwise it copies like ``cp``."""
    opts, _, _ = parse_opts(args, *_INSTALL)
    (_install_dirs if has(opts, "-d", "--directory") else _install_files)(wk, args, st, depth)


def mode_change(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, ops, after = parse_opts(args, long_arg=("--reference",))
    ops = ops + after
    if not has(opts, "--reference"):
        ops = ops[1:]  # the mode / owner
    kind = DIR if has(opts, "-R", "--recursive") else FILE
    wk.emit_all(ops, kind, st)


def first_operand(wk: Walker, args: list[W], st: State, depth: int) -> None:
    _, ops, after = parse_opts(args, short_arg="mZ", long_arg=("--mode", "--context"))
    wk.emit_all((ops + after)[:1], FILE, st)


def dd(wk: Walker, args: list[W], st: State, depth: int) -> None:
    for a in args:
        if a.startswith("of="):
            wk.emit(a.after(3), FILE, st)


def sort(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, _, _ = parse_opts(args, short_arg="ktoSTz", long_arg=("--output", "--key", "--field-separator",
                                                                 "--buffer-size", "--temporary-directory"))
    wk.emit_all(vals(opts, "-o", "--output"), FILE, st)


def uniq(wk: Walker, args: list[W], st: State, depth: int) -> None:
    _, ops, after = parse_opts(args, short_arg="fsw", long_arg=("--skip-fields", "--skip-chars", "--check-chars"))
    ops = ops + after
    if len(ops) >= 2:
        wk.emit(ops[1], FILE, st)


def curl(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, ops, _ = parse_opts(args, short_arg="oXHduAeEbcDFKrTwxyYzC", long_arg=(
        "--output", "--request", "--header", "--data", "--user", "--user-agent", "--referer", "--cookie",
        "--cookie-jar", "--dump-header", "--form", "--config", "--range", "--upload-file", "--write-out",
        "--proxy", "--output-dir", "--max-time", "--connect-timeout", "--retry"))
    wk.emit_all(vals(opts, "-o", "--output", "-c", "--cookie-jar", "-D", "--dump-header"), FILE, st)
    if has(opts, "-O", "--remote-name", "--remote-name-all"):
        d = (vals(opts, "--output-dir") or [W("")])[0]
        for u in ops:
            base = _url_name(u)
            if base:
                wk.emit(W(posixpath.join(d.text, base)), FILE, st)


def wget(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, ops, _ = parse_opts(args, short_arg="OoaPe", long_arg=("--output-document", "--output-file",
                                                                   "--append-output", "--directory-prefix"))
    outs = vals(opts, "-O", "--output-document")
    wk.emit_all(outs + vals(opts, "-o", "--output-file", "-a", "--append-output"), FILE, st)
    if not outs:
        prefix = vals(opts, "-P", "--directory-prefix")
        for u in ops:
            if prefix:
                wk.emit(prefix[0], DIR, st)
            elif _url_name(u):
                wk.emit(W(_url_name(u)), FILE, st)


def _url_name(u: W) -> str:
    """The file name a download of the URL ``u`` is saved as ("" when unknown)."""
    return "" if u.dyn else posixpath.basename(u.text.split("?")[0].rstrip("/"))


def tar(wk: Walker, args: list[W], st: State, depth: int) -> None:
    if not args:
        return
    first = args[0]
    if not first.dyn and not first.text.startswith("-"):  # old style: tar xzf FILE
        args = [W("-" + first.text)] + args[1:]
    opts, ops, _ = parse_opts(args, short_arg="fCTXbHIKLNV", long_arg=("--file", "--directory", "--files-from",
                                                                        "--exclude-from", "--use-compress-program",
                                                                        "--to-command"))
    if has(opts, "-x", "--extract", "--get"):
        dirs = vals(opts, "-C", "--directory") or [W(".")]
        members = [w for w in ops]
        for d in dirs:
            if members:
                for m in members:
                    wk.emit(W(posixpath.join(d.text, m.text), m.dyn or d.dyn), DIR, st)
            else:
                wk.emit(d, DIR, st)
    elif has(opts, "-c", "--create", "-r", "--append", "-u", "--update", "-A", "--catenate", "--delete"):
        wk.emit_all(vals(opts, "-f", "--file"), FILE, st)


def unzip(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, _, _ = parse_opts(args, short_arg="dxP")
    if has(opts, "-l", "-t", "-v", "-Z", "-p", "-c"):
        return
    wk.emit_all(vals(opts, "-d") or [W(".")], DIR, st)


def patch(wk: Walker, args: list[W], st: State, depth: int) -> None:
    opts, ops, after = parse_opts(args, short_arg="pDdFiBoruVYzgx", long_arg=(
        "--strip", "--directory", "--input", "--output", "--reject-file", "--prefix", "--suffix", "--fuzz"))
    if has(opts, "--dry-run", "-C", "--check"):
        return
    outs = vals(opts, "-o", "--output")
    wk.emit_all(outs + vals(opts, "-r", "--reject-file"), FILE, st)
    ops = ops + after
    if ops:
        if not outs:
            wk.emit(ops[0], FILE, st)
    elif not outs:
        # the files are named inside the patch: anything under the directory
        wk.emit((vals(opts, "-d", "--directory") or [W(".")])[0], DIR, st)


def find(wk: Walker, args: list[W], st: State, depth: int) -> None:
    i = 0
    while i < len(args) and args[i].text in ("-H", "-L", "-P") or (i < len(args) and args[i].text.startswith("-O")):
        i += 1
    if i < len(args) and args[i].text == "-D":
        i += 2
    roots = []
    while i < len(args) and (args[i].dyn or not (args[i].text.startswith("-") or args[i].text in ("(", "!", ")"))):
        roots.append(args[i])
        i += 1
    roots = roots or [W(".")]
    expr = args[i:]
    writes = False
    j = 0
    while j < len(expr):
        t = expr[j].text
        if t == "-delete":
            writes = True
        elif t in ("-fprint", "-fprint0", "-fls", "-fprintf") and j + 1 < len(expr):
            wk.emit(expr[j + 1], FILE, st)
        elif t in ("-exec", "-execdir", "-ok", "-okdir"):
            k = j + 1
            cmd = []
            while k < len(expr) and expr[k].text not in (";", "+"):
                cmd.append(expr[k])
                k += 1
            for r in roots:
                each = W(r.text.rstrip("/") + "/*", r.dyn)
                probe = wk.probe([each if "{}" in c.text else c for c in cmd], st.copy(), depth + 1)
                if probe:
                    writes = True
                wk.out.note = wk.out.note or probe.note
            j = k
        j += 1
    if writes:
        wk.emit_all(roots, DIR, st)


def rsync(wk: Walker, args: list[W], st: State, depth: int) -> None:
    _, ops, after = parse_opts(args, short_arg="efT", long_arg=("--rsh", "--filter", "--exclude", "--include",
                                                                 "--temp-dir", "--backup-dir", "--partial-dir",
                                                                 "--exclude-from", "--include-from",
                                                                 "--files-from", "--chmod", "--chown"))
    ops = ops + after
    if len(ops) >= 2 and ":" not in ops[-1].text.split("/")[0]:  # a local destination
        wk.emit(ops[-1], DIR, st)

