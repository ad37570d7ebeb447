"""The values of the parts of a word that are known before the command runs.

:func:`part_values` gives the alternatives of one part of a word (``None``:
not known): a parameter expansion (``$X``, ``${X:?}``, ``${X:-default}``,
``${X:+alt}``, ``$PWD``, ``$OLDPWD``, ``$HOME``, ``$1``, ``$@``) or a
command substitution whose output follows from the directory alone:
``$(pwd)``, ``$(git rev-parse --show-toplevel)`` / ``--show-cdup``,
``$(realpath X)``, ``$(readlink -f X)``, ``$(dirname X)``, ``$(basename X)``,
``$(echo X)`` and ``$(mktemp …)`` (a new name under ``$TMPDIR`` or the
template's directory).  Anything else is ``None``, and the word counts as its
literal prefix (:mod:`.words`).
"""

from __future__ import annotations

import os
import posixpath

from .words import State, W, expand, unquote

_OPS = (":?", ":-", ":=", ":+", "?", "-", "=", "+")


def part_values(p, st: State, src: str) -> list[str | None]:  # type: ignore[no-untyped-def]
    if p.kind == "parameter":
        value = getattr(p, "value", None)
        if not value:  # a lone "$": $'…' / $"…" quoting, or a literal dollar
            return [src[p.pos[0]:p.pos[1]]]
        return param(value, st)
    if p.kind == "commandsubstitution":
        return substitution(p.command, st, src)
    return [None]


def lookup(name: str, st: State) -> list[str] | None:
    """The values the parameter ``name`` can have, or ``None`` when not known."""
    if name in st.vars:
        return st.vars[name]
    if name == "PWD":
        pwd = st.pwd()
        return None if pwd is None else [pwd]
    if name == "OLDPWD":
        return None if st.oldcwd is None else [st.pwd_of(st.oldcwd)]
    if name == "HOME":
        return ["~"]
    if name.isdigit() or name in ("@", "*", "#"):
        if st.args is None or name == "0":
            return None
        if name == "#":
            return [str(len(st.args))]
        if name in ("@", "*"):
            return list(st.args) or [""]
        i = int(name)
        return [st.args[i - 1] if i <= len(st.args) else ""]
    return None


def param(value: str, st: State) -> list[str | None]:
    """The alternatives of ``${value}``."""
    if value.startswith(("#", "!")):
        return [None]
    name = value
    op = rest = ""
    for i, c in enumerate(value):
        if not (c.isalnum() or c == "_" or (i == 0 and c in "@*#?$!-")):
            name, tail = value[:i], value[i:]
            op = next((o for o in _OPS if tail.startswith(o)), "")
            if not op:
                return [None]  # ${X%suffix}, ${X/a/b}, ${X:1:2} …
            rest = tail[len(op):]
            break
    known = lookup(name, st)
    if not op or op.endswith("?"):
        return list(known) if known is not None else [None]
    alt: str | None = None if ("$" in rest or "`" in rest) else unquote(rest)
    if op.endswith("+"):
        return [alt] if known is not None and all(known) else [alt, ""]
    if known is not None and all(known):
        return list(known)
    # ${X:-default}: the default, or X's own value
    return [alt] + ([k for k in known if k] if known is not None else [None])


def substitution(n, st: State, src: str) -> list[str | None]:  # type: ignore[no-untyped-def]
    """The output of the command substitution ``$(n)`` when it follows from the directory alone."""
    if n.kind != "command" or any(p.kind not in ("word",) for p in n.parts):
        return [None]
    words: list[W] = []
    for p in n.parts:
        w = expand(p, st, src)
        if len(w) != 1 or w[0].dyn:
            return [None]
        words.append(w[0])
    argv = [w.text for w in words]
    name, args = posixpath.basename(argv[0]), argv[1:]
    opts = [a for a in args if a.startswith("-")]
    ops = [a for a in args if not a.startswith("-")]
    pwd = st.pwd()
    if name == "pwd" and not ops:
        return [pwd]
    if name == "git" and args in (["rev-parse", "--show-toplevel"], ["rev-parse", "--show-cdup"]):
        top = _top(st)
        if top is None:
            return [None]
        if args[1] == "--show-toplevel":
            return [top]
        here = st.norm(pwd or ".")
        rel = posixpath.relpath(top, here)
        return ["" if rel == "." else rel + "/"]
    if name in ("realpath", "readlink") and len(ops) == 1 and (name == "realpath" or opts in (["-f"], ["-e"],
                                                                                                ["-m"])):
        p = st.path(ops[0])
        return [None] if p is None else [st.norm(p)]
    if name == "dirname" and len(ops) == 1 and not opts:
        return [posixpath.dirname(ops[0].rstrip("/")) or "."]
    if name == "basename" and 1 <= len(ops) <= 2 and not opts:
        b = posixpath.basename(ops[0].rstrip("/"))
        return [b[:-len(ops[1])] if len(ops) == 2 and b.endswith(ops[1]) and b != ops[1] else b]
    if name == "echo" and all(o in ("-n", "-E") for o in opts):
        return [" ".join(ops)]
    if name == "mktemp":
        return [mktemp(args, st)]
    return [None]


def mktemp(args: list[str], st: State) -> str | None:
    """Where ``mktemp ARGS`` creates its file or directory (a name under the directory, ``X`` left as is)."""
    tmpdir = os.environ.get("TMPDIR") or "/tmp"
    i = 0
    template = None
    where: str | None = None
    local = False
    while i < len(args):
        a = args[i]
        if a in ("-p", "--tmpdir") and i + 1 < len(args):
            where = args[i + 1]
            i += 2
            continue
        if a.startswith("--tmpdir="):
            where = a.split("=", 1)[1] or tmpdir
        elif a.startswith("-p") and len(a) > 2:
            where = a[2:]
        elif a == "-t":
            where = where or tmpdir
        elif a.startswith("--suffix="):
            pass
        elif not a.startswith("-"):
            template = a
        elif a == "--":
            pass
        i += 1
    if template is None:
        return posixpath.join(where or tmpdir, "tmp.XXXXXXXXXX")
    if where is None and "/" not in template:
        local = True
    if where is not None and "/" not in template:
        return posixpath.join(where, template)
    if local or not template.startswith("/"):
        p = st.path(template)
        return None if p is None else st.norm(p)
    return template


def _top(st: State) -> str | None:
    if st.start is None:
        return None
    pwd = st.pwd()
    if pwd is None or pwd.startswith("~"):
        return None
    from ..projects import repo_top

    return repo_top(st.norm(pwd))
