"""Words of a shell command and what they expand to: quote removal, variables, globs.

:class:`State` is what the walk knows at a point of the script: the
directory (relative to the start, absolute, or unknown), the variables known
to hold literal values, the positional parameters, the functions defined and
the links made earlier in the same command.  :func:`expand` turns a bashlex
word node into the values it can have; the values of parameter expansions and
of the few command substitutions whose output is known before the command
runs (``$(pwd)``, ``$(git rev-parse --show-toplevel)``, ``$(mktemp)`` …) come
from :mod:`.values`.
"""

from __future__ import annotations

import posixpath

FILE = "file"
DIR = "dir"
MAX_VARIANTS = 64    # combinations of known variable values per command
MAX_LINKS = 8        # links followed through, one after another
GLOB = "*?["
_PROC_CWD = ("/proc/self/cwd", "/proc/thread-self/cwd")


class State:
    """What the walk knows at a point of the script.

    ``start`` is the absolute directory the command starts in (the event's
    cwd; ``None`` when not given).  ``cwd`` is relative to it (``""`` = it),
    absolute, ``~…``, or ``None`` once a ``cd`` went somewhere not known before
    the command runs.  ``vars`` maps a name to its possible values (``None``:
    known to be unknown); ``args`` are the positional parameters (``None``:
    unknown); ``links`` maps a link made by the command (normalised) to what it
    points at (``None``: unknown); ``funcs`` holds the functions defined."""

    __slots__ = ("args", "cwd", "funcs", "links", "oldcwd", "root", "stack", "start", "vars")

    def __init__(self, start: str | None = None) -> None:
        self.start = start
        self.cwd: str | None = ""
        self.oldcwd: str | None = None
        self.root = ""  # a chroot's new root, prefixed to absolute paths
        self.stack: list[str | None] = []
        self.vars: dict[str, list[str] | None] = {}
        self.args: list[str] | None = []
        self.links: dict[str, str | None] = {}
        self.funcs: dict[str, tuple] = {}

    def copy(self) -> State:
        s = State(self.start)
        s.cwd, s.oldcwd, s.root, s.stack = self.cwd, self.oldcwd, self.root, list(self.stack)
        s.vars, s.args, s.links, s.funcs = dict(self.vars), self.args, dict(self.links), dict(self.funcs)
        return s

    def pwd(self) -> str | None:
        """The value of ``$PWD``: absolute when the start is known, else relative to it (``.``)."""
        return None if self.cwd is None else self.pwd_of(self.cwd)

    def pwd_of(self, cwd: str) -> str:
        if self.start is not None and not cwd.startswith("~"):
            return posixpath.normpath(posixpath.join(self.start, cwd))
        return cwd or "."

    def path(self, p: str) -> str | None:
        """Where ``p`` lands: relative to the start or absolute; ``None`` when that is not known."""
        for proc in _PROC_CWD:
            if p == proc or p.startswith(proc + "/"):
                base = self.pwd()
                return None if base is None else self._linked(base + p[len(proc):])
        if p[:2] in ("~+", "~-") and (len(p) == 2 or p[2] == "/"):
            base = self.pwd() if p[1] == "+" else self.oldcwd
            return None if base is None else self._linked(posixpath.join(base, p[3:]) if p[3:] else base)
        if p.startswith("/"):
            return self._linked(self.root + p if self.root else p)
        if p.startswith("~"):
            return p
        if self.cwd is None:
            return None
        return self._linked(posixpath.join(self.cwd, p) if self.cwd else p)

    def norm(self, p: str) -> str:
        """``p`` (a result of :meth:`path`) normalised, absolute when the start is known (to compare links)."""
        if self.start is not None and not p.startswith(("/", "~")):
            p = posixpath.join(self.start, p)
        return posixpath.normpath(p)

    def _linked(self, p: str) -> str | None:
        """``p`` with the links made earlier in the command followed (``None``: through a link to somewhere
        unknown)."""
        if not self.links:
            return p
        for _ in range(MAX_LINKS):
            n = self.norm(p)
            for link, target in self.links.items():
                if n == link or n.startswith(link + "/"):
                    if target is None:
                        return None
                    p = target + n[len(link):]
                    break
            else:
                return p
        return p


class W:
    """A word of a command: its literal text, or - when it depends on run-time values - the literal prefix."""

    __slots__ = ("dyn", "text")

    def __init__(self, text: str, dyn: bool = False) -> None:
        self.text, self.dyn = text, dyn

    def __repr__(self) -> str:
        return f"W({self.text!r}{', dyn' if self.dyn else ''})"

    def startswith(self, s: str) -> bool:
        return self.text.startswith(s)

    def after(self, n: int) -> W:
        return W(self.text[n:], self.dyn)


_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
            "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def _ansi_c(raw: str, i: int) -> tuple[str, int]:
    """The value of the ``$'…'`` string whose text starts at ``raw[i]`` (after the quote), and the index past it."""
    out = []
    n = len(raw)
    while i < n and raw[i] != "'":
        c = raw[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = raw[i + 1]
        i += 2
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
        elif e in "xuU" or e in "01234567":
            base, width = (8, 3) if e in "01234567" else (16, {"x": 2, "u": 4, "U": 8}[e])
            j = i - 1 if base == 8 else i
            k = j
            digits = "01234567" if base == 8 else "0123456789abcdefABCDEF"
            while k < n and k - j < width and raw[k] in digits:
                k += 1
            if k == j:
                out.append("\\" + e)
            else:
                try:
                    out.append(chr(int(raw[j:k], base)))
                except (ValueError, OverflowError):
                    out.append("?")
                i = k
        elif e == "c" and i < n:
            out.append(chr(ord(raw[i]) & 0x1F))
            i += 1
        else:
            out.append("\\" + e)
    return "".join(out), i + 1


def unquote(raw: str) -> str:
    """Shell quote removal of a literal word (``'a b'``, ``"a\\"b"``, ``a\\ b``, ``$'a\\x2fb'``, ``$"…"``)."""
    out = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "$" and i + 1 < n and raw[i + 1] == "'":
            text, i = _ansi_c(raw, i + 2)
            out.append(text)
        elif c == "$" and i + 1 < n and raw[i + 1] == '"':
            i += 1
        elif c == "'":
            j = raw.find("'", i + 1)
            j = n if j == -1 else j
            out.append(raw[i + 1:j])
            i = j + 1
        elif c == '"':
            i += 1
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n and raw[i + 1] in '"\\$`\n':
                    i += 1
                out.append(raw[i])
                i += 1
            i += 1
        elif c == "\\" and i + 1 < n:
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def braces(text: str) -> bool:
    """Does ``text`` hold a brace expansion (``{a,b}``, ``{1..3}``)?"""
    i = text.find("{")
    return i != -1 and text.find("}", i) != -1 and ("," in text[i:] or ".." in text[i:])


def expands(w: W) -> bool:
    """Is the value of ``w`` known only at run time (a variable, a glob, a brace expansion)?"""
    return w.dyn or any(c in w.text for c in GLOB) or braces(w.text)


def expand(n, st: State, src: str) -> list[W]:  # type: ignore[no-untyped-def]
    """The possible values of a word node (known variables and substitutions put in)."""
    from .values import part_values

    # a lone "$" (bashlex's reading of $'…' and $"…") is quoting, left to unquote
    parts = [p for p in (getattr(n, "parts", None) or []) if p.kind != "tilde"
             and not (p.kind == "parameter" and not getattr(p, "value", None))]
    raw = src[n.pos[0]:n.pos[1]]
    if not parts:
        # quote removal from the source text: bashlex's own mangles adjacent quoted pieces ('a'"'"'b')
        return [W(unquote(raw) if raw else n.word)]
    base = n.pos[0]
    # each part's alternatives (None: not known before the command runs); a variant is cut at its first None
    alts = [(p.pos[0] - base, p.pos[1] - base, part_values(p, st, src)) for p in sorted(parts, key=lambda p: p.pos[0])]
    variants: list[list[str | None]] = [[]]
    for _, _, values in alts:
        variants = [v + [x] for v in variants for x in values]
        if len(variants) > MAX_VARIANTS:
            return [W(unquote(raw[:alts[0][0]]), True)]
    out: list[W] = []
    seen: set[tuple[str, bool]] = set()
    for v in variants:
        # splice each value in as a marker that quote removal leaves alone, then put the values back
        text, pos, dyn = [], 0, False
        values: list[str] = []
        for (s, e, _), x in zip(alts, v):
            text.append(raw[pos:s])
            if x is None:
                dyn = True
                pos = len(raw)
                break
            values.append(x)
            text.append(f"\ue000{len(values) - 1}\ue001")
            pos = e
        text.append(raw[pos:])
        word = unquote("".join(text))
        while "\ue000" in word:
            i = word.index("\ue000")
            j = word.index("\ue001", i)
            word = word[:i] + values[int(word[i + 1:j])] + word[j + 1:]
        if (word, dyn) not in seen:
            seen.add((word, dyn))
            out.append(W(word, dyn))
    return out


def assign(a, st: State, src: str) -> None:  # type: ignore[no-untyped-def]
    """``NAME=value`` on its own: later ``$NAME`` is that value (unknown if it is not known)."""
    name, _, _ = a.word.partition("=")
    if not name.isidentifier():
        return
    raw = src[a.pos[0]:a.pos[1]]
    value = raw.partition("=")[2]
    parts = [p for p in (getattr(a, "parts", None) or []) if p.kind != "tilde"]
    if parts:
        w = expand(a, st, src)
        st.vars[name] = None if any(x.dyn for x in w) else [x.text.partition("=")[2] for x in w]
    else:
        st.vars[name] = [unquote(value)]
