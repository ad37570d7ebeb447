"""Words of a shell command and what they expand to: quote removal, literal variables, globs.

:class:`State` is what the walk knows at a point of the script (directory,
variables); :func:`expand` turns a bashlex word node into the values it can
have, substituting the variables known to hold literal values.
"""

from __future__ import annotations

import posixpath

FILE = "file"
DIR = "dir"
MAX_VARIANTS = 64    # combinations of known variable values per command
GLOB = "*?["


class State:
    """What the walk knows at a point of the script: the directory and literal variables."""

    __slots__ = ("cwd", "stack", "vars")

    def __init__(self) -> None:
        self.cwd = ""  # relative to the starting directory ("" = it), or absolute, or ~…
        self.stack: list[str] = []
        self.vars: dict[str, list[str] | None] = {}  # None: known to be unknown

    def copy(self) -> State:
        s = State()
        s.cwd, s.stack, s.vars = self.cwd, list(self.stack), dict(self.vars)
        return s

    def path(self, p: str) -> str:
        if not self.cwd or p.startswith(("/", "~")):
            return p
        return posixpath.join(self.cwd, p)


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


def unquote(raw: str) -> str:
    """Shell quote removal of a literal word (``'a b'``, ``"a\\"b"``, ``a\\ b``)."""
    out = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "'":
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
    """The possible values of a word node (literal variables substituted)."""
    parts = [p for p in (getattr(n, "parts", None) or []) if p.kind != "tilde"]
    raw = src[n.pos[0]:n.pos[1]]
    if not parts:
        # quote removal from the source text: bashlex's own mangles adjacent quoted pieces ('a'"'"'b')
        return [W(unquote(raw) if raw else n.word)]
    base = n.pos[0]
    unknown = [p for p in parts if p.kind != "parameter" or st.vars.get(p.value) is None]
    end = min(p.pos[0] for p in unknown) - base if unknown else len(raw)
    known = sorted((p for p in parts if p.pos[0] - base < end), key=lambda p: p.pos[0], reverse=True)
    # splice each known value in as a marker that quote removal leaves alone, then put the values back
    values: list[str] = []
    variants = [raw[:end]]
    for p in known:
        s, e = p.pos[0] - base, p.pos[1] - base
        marks = []
        for v in st.vars[p.value] or []:
            values.append(v)
            marks.append(f"\ue000{len(values) - 1}\ue001")
        variants = [x[:s] + m + x[e:] for x in variants for m in marks]
        if len(variants) > MAX_VARIANTS:
            return [W(unquote(raw[:min(q.pos[0] for q in parts) - base]), True)]
    out = []
    for x in variants:
        text = unquote(x)
        while "\ue000" in text:
            i = text.index("\ue000")
            j = text.index("\ue001", i)
            text = text[:i] + values[int(text[i + 1:j])] + text[j + 1:]
        out.append(W(text, bool(unknown)))
    return out


def assign(a, st: State, src: str) -> None:  # type: ignore[no-untyped-def]
    """``NAME=value`` on its own: later ``$NAME`` is that value (unknown if it is not literal)."""
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
