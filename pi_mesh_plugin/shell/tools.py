"""Rules for more writers: compressors, ``split``, ``mktemp``, ``zip``, ``openssl``, ``sqlite3``, vim,
and the files a ``sed`` or ``awk`` program writes itself.

``gzip``/``bzip2``/``xz``/``lzma``/``zstd``/``lz4``/``compress``/``pigz``
FILE replace FILE by FILE.gz (or the reverse with ``-d``/``gunzip``): both
are written unless the output goes to stdout (``-c``, ``-t``, ``-l``).
``sed`` scripts' ``w FILE`` / ``s///w FILE`` commands and awk programs'
``print > "FILE"`` (and ``gawk -i inplace``) write FILE; their ``e`` command
and ``system("…")``/``| "…"`` run shell text, parsed again.
"""

from __future__ import annotations

import posixpath

from .options import has, parse_opts, vals
from .words import DIR, FILE, State, W

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (the per-call guard path)
    from .walk import Walker

_SUFFIX = {"gzip": ".gz", "pigz": ".gz", "gunzip": ".gz", "bzip2": ".bz2", "bunzip2": ".bz2", "xz": ".xz",
           "unxz": ".xz", "lzma": ".lzma", "unlzma": ".lzma", "zstd": ".zst", "unzstd": ".zst", "lz4": ".lz4",
           "compress": ".Z", "uncompress": ".Z", "zstdmt": ".zst", "pzstd": ".zst"}
_DECOMPRESS = {"gunzip", "bunzip2", "unxz", "unlzma", "unzstd", "uncompress"}


def compressor(name: str):  # type: ignore[no-untyped-def]
    suffix = _SUFFIX[name]

    def handler(wk: Walker, args: list[W], st: State, depth: int) -> None:
        opts, ops, after = parse_opts(args, short_arg="oSbT" if name.startswith(("zstd", "unzstd", "pzstd"))
                                      else "S", long_arg=("--suffix", "--output", "--threads"))
        if has(opts, "-c", "--stdout", "--to-stdout", "-t", "--test", "-l", "--list"):
            return
        outs = vals(opts, "-o", "--output")
        wk.emit_all(outs, FILE, st)
        files = ops + after
        if name in ("lz4",) and len(files) == 2 and not has(opts, "-m", "--multiple"):
            wk.emit(files[1], FILE, st)
            files = files[:1]
        kind = DIR if has(opts, "-r", "--recursive") else FILE
        back = name in _DECOMPRESS or has(opts, "-d", "--decompress", "--uncompress")
        for f in files:
            wk.emit(f, kind, st)  # removed (zstd and lz4 keep it, but -o / --rm are common enough)
            if not outs and not f.dyn and kind == FILE:
                t = f.text
                other = t[:-len(suffix)] if back and t.endswith(suffix) else t if back else t + suffix
                if other != t:
                    wk.emit(W(other), FILE, st)
    return handler


def split(wk: Walker, args: list[W], st: State, depth: int) -> None:
    """``split [opts] [FILE [PREFIX]]``: PREFIXaa, PREFIXab … (PREFIX ``x`` by default)."""
    _, ops, after = parse_opts(args, short_arg="abClnt", long_arg=(
        "--suffix-length", "--additional-suffix", "--bytes", "--line-bytes", "--lines", "--number",
        "--separator", "--filter", "--numeric-suffixes", "--hex-suffixes"))
    ops = ops + after
    prefix = ops[1] if len(ops) >= 2 else W("x")
    wk.emit(W(prefix.text + "aa", prefix.dyn), FILE, st)


def mktemp(wk: Walker, args: list[W], st: State, depth: int) -> None:
    if any(a.dyn for a in args):
        return
    texts = [a.text for a in args]
    if "-u" in texts or "--dry-run" in texts:
        return
    from .values import mktemp as where

    p = where(texts, st)
    if p is None:
        wk.anywhere(st)
    else:
        wk.emit(W(p), DIR if "-d" in texts or "--directory" in texts else FILE, st)


def zip_(wk: Walker, args: list[W], st: State, depth: int) -> None:
    """``zip [opts] ZIPFILE FILES…``: ZIPFILE (``.zip`` added) is written; ``-m`` removes FILES."""
    opts, ops, after = parse_opts(args, short_arg="bnOtP", long_arg=("--temp-path", "--suffixes", "--output-file",
                                                                      "--from-date", "--password"))
    ops = ops + after
    outs = vals(opts, "-O", "--output-file")
    if not ops:
        return
    archive = ops[0]
    wk.emit(archive, FILE, st)
    if not archive.dyn and "." not in posixpath.basename(archive.text):
        wk.emit(W(archive.text + ".zip"), FILE, st)
    wk.emit_all(outs, FILE, st)
    if has(opts, "-m", "--move"):
        wk.emit_all(ops[1:], DIR if has(opts, "-r", "--recurse-paths") else FILE, st)


def openssl(wk: Walker, args: list[W], st: State, depth: int) -> None:
    """``openssl SUB … -out FILE`` (also ``-keyout``, ``-certout``, ``-signature``? no: read)."""
    for i, a in enumerate(args[:-1]):
        if a.text in ("-out", "-keyout", "-certout", "-CAserial", "-sigout", "-rand_out", "-writerand"):
            wk.emit(args[i + 1], FILE, st)
    for a in args:
        if a.text.startswith(("-out=", "-keyout=")):
            wk.emit(a.after(a.text.index("=") + 1), FILE, st)


_SQLITE_READONLY = ("-readonly", "--readonly", "-safe", "--safe", "-version", "--version", "-help", "--help")
_SQLITE_ARG = ("-cmd", "--cmd", "-init", "--init", "-separator", "-newline", "-nullvalue", "-mmap", "-vfs",
               "-pagecache", "-lookaside", "-maxsize", "-A", "-heap", "-zipfile")
_SQLITE_DOT = (".output", ".once", ".save", ".backup", ".clone", ".excel")


def sqlite3(wk: Walker, args: list[W], st: State, depth: int) -> None:
    """``sqlite3 [opts] FILE [SQL…]``: FILE is opened read-write (and ``.output F``/``.save F`` write F)."""
    i = 0
    ops: list[W] = []
    cmds: list[W] = []
    readonly = False
    while i < len(args):
        t = args[i].text
        if t in _SQLITE_READONLY:
            readonly = True
        elif t in _SQLITE_ARG:
            if t in ("-cmd", "--cmd") and i + 1 < len(args):
                cmds.append(args[i + 1])
            i += 1
        elif t.startswith("-") and not args[i].dyn and len(t) > 1:
            pass
        else:
            ops.append(args[i])
        i += 1
    if ops and ops[0].text not in ("", ":memory:") and not readonly:
        wk.emit(ops[0], FILE, st)
    for sql in cmds + ops[1:]:
        words = sql.text.split()
        for j, w in enumerate(words[:-1]):
            if w in _SQLITE_DOT:
                nxt = [x for x in words[j + 1:] if not x.startswith("-")]
                if nxt:
                    wk.emit(W(nxt[0].strip("'\"")), FILE, st)
        low = sql.text.lower()
        if "vacuum into" in low or "attach" in low:
            for piece in sql.text.split("'")[1::2]:
                wk.emit(W(piece), FILE, st)


def vim(wk: Walker, args: list[W], st: State, depth: int) -> None:
    """``vim``/``vi``/``nvim``/``ex`` FILE…: the files are edited (scripted with ``-es``, ``-c``, ``+cmd``)
    unless read-only (``-R``, ``view``); ``-w FILE`` records keys into FILE."""
    opts, ops, after = parse_opts(args, short_arg="cSuUiTtqrwW", long_arg=("--cmd", "--servername"))
    if has(opts, "-R", "-M", "-h", "--help", "--version", "-y"):
        return
    wk.emit_all(vals(opts, "-w", "-W"), FILE, st)
    files = [o for o in ops + after if not o.text.startswith("+") and o.text != "-"]
    commands = vals(opts, "-c", "--cmd") + [W(o.text[1:], o.dyn) for o in ops + after if o.text.startswith("+")]
    saves = not commands  # commands from stdin or a person: the files may be saved
    for c in commands:
        for piece in c.text.split("|"):
            words = piece.split()
            if words and words[0].rstrip("!") in _VIM_WRITES:
                if len(words) >= 2:
                    wk.emit(W(words[-1], c.dyn), FILE, st)
                else:
                    saves = True
            elif c.dyn:
                saves = True
    if saves:
        wk.emit_all(files, FILE, st)


_VIM_WRITES = {"w", "write", "sav", "saveas", "wq", "x", "xit", "exit", "up", "update", "wn", "wnext", "wall", "wa"}


# -- programs in sed and awk ------------------------------------------------------------------------
def sed_writes(wk: Walker, script: str, st: State, depth: int) -> None:
    """The files a sed script writes (``w FILE``, ``W FILE``, ``s/a/b/w FILE``) and its ``e COMMAND`` runs."""
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        if c in " \t\n;{}!":
            i += 1
            continue
        if c.isdigit() or c in "$,~+":
            i += 1
            continue
        if c in "/\\":  # an address /re/ or \cREc
            delim = "/" if c == "/" else (script[i + 1] if i + 1 < n else "/")
            i = _skip_delimited(script, i + (1 if c == "/" else 2), delim)
            while i < n and script[i] in "IM":
                i += 1
            continue
        if c in "sy":
            if i + 1 >= n:
                return
            delim = script[i + 1]
            i = _skip_delimited(script, i + 2, delim)
            i = _skip_delimited(script, i, delim)
            if c == "s":
                while i < n and script[i] not in ";\n}":
                    if script[i] in "wW":
                        name, i = _to_eol(script, i + 1)
                        _sed_file(wk, name, st)
                        break
                    if script[i] == "e":
                        wk.anywhere(st)  # the pattern space is run as a command
                    i += 1
            continue
        if c in "wW":
            name, i = _to_eol(script, i + 1)
            _sed_file(wk, name, st)
            continue
        if c == "e":
            cmd, i = _to_eol(script, i + 1)
            if cmd:
                wk.script(cmd, st.copy(), depth + 1)
            else:
                wk.anywhere(st)
            continue
        if c in "aicrR:btTvlqQLF=zdDgGhHnNpPx#":
            if c in "aicrR:#" or c in "btTv":
                _, i = _to_eol(script, i + 1, stop_semicolon=c in "btTv")
            else:
                i += 1
            continue
        i += 1


def _sed_file(wk: Walker, name: str, st: State) -> None:
    if name and name not in ("/dev/stdout", "/dev/stderr"):
        wk.emit(W(name), FILE, st)


def _skip_delimited(s: str, i: int, delim: str) -> int:
    n = len(s)
    while i < n and s[i] != delim:
        i += 2 if s[i] == "\\" else 1
    return i + 1


def _to_eol(s: str, i: int, stop_semicolon: bool = False) -> tuple[str, int]:
    n = len(s)
    while i < n and s[i] in " \t":
        i += 1
    j = i
    while j < n and s[j] != "\n" and not (stop_semicolon and s[j] in ";}"):
        j += 1
    return s[i:j].rstrip(), j + 1


def awk(wk: Walker, args: list[W], st: State, depth: int) -> None:
    """``awk [opts] PROGRAM FILE…``: ``gawk -i inplace`` writes the files; the program's
    ``> "FILE"``/``>> "FILE"`` write FILE, its ``system("…")`` and ``| "…"`` run shell text."""
    opts, ops, after = parse_opts(args, short_arg="fvFiElW", long_arg=(
        "--file", "--assign", "--field-separator", "--include", "--exec", "--load"))
    ops = ops + after
    inplace = any(v.text in ("inplace", "inplace.awk") for v in vals(opts, "-i", "--include"))
    programs = [v.text for v in vals(opts, "-e", "--source") if not v.dyn]
    if not has(opts, "-f", "--file", "-E", "--exec") and ops:
        if not ops[0].dyn:
            programs.append(ops[0].text)
        ops = ops[1:]
    for prog in programs:
        _awk_program(wk, prog, st, depth)
    if inplace:
        wk.emit_all([o for o in ops if "=" not in o.text], FILE, st)


def _awk_program(wk: Walker, prog: str, st: State, depth: int) -> None:
    i, n = 0, len(prog)
    while i < n:
        c = prog[i]
        if c == '"':
            j = i + 1
            while j < n and prog[j] != '"':
                j += 2 if prog[j] == "\\" else 1
            literal = prog[i + 1:j].replace('\\"', '"').replace("\\\\", "\\")
            before = prog[:i].rstrip()
            if before.endswith(("system(", "system (")) or before.endswith("|") and not before.endswith("||"):
                wk.script(literal, st.copy(), depth + 1)
            elif before.endswith(">") and not before.endswith(("<>", ">=")):
                _sed_file(wk, literal, st)
            elif prog[j + 1:].lstrip().startswith("|") and not prog[j + 1:].lstrip().startswith("||"):
                wk.script(literal, st.copy(), depth + 1)  # "cmd" | getline
            i = j + 1
            continue
        i += 1
