"""The walk over bashlex's syntax tree: lists, pipelines, subshells, loops, redirections, nesting.

:class:`Walker` collects the ``(path, kind)`` pairs a command writes into a
:class:`Targets`, and every simple command it runs into ``commands``.  It
follows ``cd``/``pushd``/``popd`` and literal variables (in :class:`.State`),
strips prefixes (:mod:`.prefixes`), parses ``bash -c``/``eval``/heredoc
scripts again, and hands each writer's arguments to its rule
(:mod:`.commands`).  Text it cannot parse gets the conservative reading of
:mod:`.fallback`.
"""

from __future__ import annotations

import posixpath

from . import fallback
from .commands import WRITERS
from .parse import Unparsable, parse
from .prefixes import PREFIXES
from .words import DIR, FILE, MAX_VARIANTS, State, W, assign, expand, expands

UNKNOWN_DIR_NOTE = ("(pi-mesh cannot tell before this command runs which directory some of its writes land in - "
                    "a `cd` or a link to a directory named only at run time - so they count as writes anywhere in "
                    "the project. Name the directory literally, or use the edit/write tools.)")

MAX_DEPTH = 8        # nested bash -c / eval / heredoc scripts
SHELLS = {"bash", "sh", "dash", "zsh", "ksh", "ash", "mksh", "busybox-sh"}
_WRITE_REDIRECTS = (">", ">>", ">|", "&>", "&>>", "<>", ">&")  # >&N (a descriptor) is not a word: not a file


class Targets(list):
    """``(path, kind)`` pairs; ``note`` is set when (part of) the command could not be parsed, and
    ``rough`` holds the pairs that were only guessed from such a part's words."""

    note: str | None = None
    rough: frozenset = frozenset()


class Walker:
    def __init__(self, out: Targets) -> None:
        self.out = out
        self.commands: list[list[str]] = []  # every simple command run, prefixes (env, sudo …) stripped

    # -- entry points ---------------------------------------------------------
    def script(self, text: str, st: State, depth: int) -> None:
        if not text.strip():
            return
        if depth > MAX_DEPTH:
            self.fallback(text, st, "nested too deep")
            return
        try:
            trees, text = parse(text)
        except Unparsable as e:
            self.fallback(text, st, str(e))
            return
        try:
            for tree in trees:
                self.node(tree, st, text, depth)
        except Exception as e:  # noqa: BLE001 - a tree this walker does not expect: be conservative, not wrong
            self.fallback(text, st, f"unexpected syntax tree ({type(e).__name__})")

    def fallback(self, text: str, st: State, reason: str) -> None:
        """Unparsable: every word the text contains counts as a directory it may write."""
        self.out.note = self.out.note or fallback.note(reason)
        self.commands.extend(fallback.rough_commands(text))
        start = len(self.out)
        self.emit_all(fallback.rough_paths(text), DIR, st)
        self.out.rough = self.out.rough | frozenset(self.out[start:])

    def probe(self, argv: list[W], st: State, depth: int) -> Targets:
        """What the simple command ``argv`` would write, without recording it (``find -exec``)."""
        out = Targets()
        Walker(out).simple(argv, st, depth, [], "")
        return out

    # -- targets ---------------------------------------------------------------
    def anywhere(self, st: State) -> None:
        """A write whose directory is not known before the command runs: anywhere in the project."""
        top = st.start
        if top is not None:
            from ..projects import repo_top

            top = repo_top(top) or top
        pair = (top or ".", DIR)
        self.out.append(pair)
        self.out.rough = self.out.rough | {pair}
        self.out.note = self.out.note or UNKNOWN_DIR_NOTE

    def add(self, text: str, kind: str, st: State) -> None:
        p = st.path(text)
        if p is None:
            self.anywhere(st)
        else:
            self.out.append((p, kind))

    def emit(self, w: W, kind: str, st: State) -> None:
        text = w.text
        if not expands(w):
            if text and text != "-" and not text.startswith("/dev/"):
                self.add(text, kind, st)
            return
        # run-time expansion: the literal directory prefix, as a directory
        cut = len(text)
        for i, c in enumerate(text):
            if c in "*?[{":
                cut = i
                break
        lit = text[:cut]
        if "/" in lit:
            d = lit[:lit.rfind("/")] or "/"
        elif w.dyn:
            return  # "$FILE", "x$y": could be anywhere - not seen
        else:
            d = "."
        if not d.startswith("/dev/") and d != "/dev":
            self.add(d, DIR, st)

    def emit_all(self, words: list[W], kind: str, st: State) -> None:
        for w in words:
            self.emit(w, kind, st)

    def emit_path(self, text: str, kind: str, st: State) -> None:
        self.emit(W(text), kind, st)

    # -- tree ------------------------------------------------------------------
    def node(self, n, st: State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        k = n.kind
        if k == "command":
            self.command(n, st, src, depth)
        elif k == "list":
            for p in n.parts:
                if p.kind != "operator":
                    self.node(p, st, src, depth)
        elif k == "pipeline":
            elems = [p for p in n.parts if p.kind not in ("pipe", "reservedword")]
            for p in elems:  # every element of a pipeline runs in a subshell
                self.node(p, st.copy() if len(elems) > 1 else st, src, depth)
        elif k == "compound":
            inner = st
            if n.list and n.list[0].kind == "reservedword" and n.list[0].word == "(":
                inner = st.copy()
            for p in n.list:
                if p.kind != "reservedword":
                    self.node(p, inner, src, depth)
            self.redirects(n, st, src, depth)
        elif k in ("if", "while", "until"):
            for p in n.parts:
                if p.kind not in ("reservedword",):
                    self.node(p, st, src, depth)
            self.redirects(n, st, src, depth)
        elif k == "for":
            self.for_loop(n, st, src, depth)
        elif k == "function":
            name = next((p.word for p in n.parts if p.kind == "word"), None)
            body = [p for p in n.parts if p.kind not in ("reservedword", "word")]
            inner = st.copy()
            inner.args = None  # what the body writes whoever calls it, its parameters unknown
            for p in body:
                self.node(p, inner, src, depth)
            if name:
                st.funcs[name] = (body, src)
        elif k == "redirect":
            self.redirect(n, st, src, depth)
        elif k in ("word", "assignment"):
            self.substitutions(n, st, src, depth)
        elif k in ("commandsubstitution", "processsubstitution"):
            self.node(n.command, st.copy(), src, depth)

    def substitutions(self, n, st: State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        """Commands inside a word: ``$(…)``, backquotes, ``<(…)``, ``>(…)``."""
        for p in getattr(n, "parts", None) or []:
            if p.kind in ("commandsubstitution", "processsubstitution"):
                self.node(p.command, st.copy(), src, depth)
            elif p.kind in ("word", "assignment"):
                self.substitutions(p, st, src, depth)

    def for_loop(self, n, st: State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        parts = n.parts
        var = parts[1].word if len(parts) > 1 and parts[1].kind == "word" else None
        values: list[str] | None = []
        i = 2
        if i < len(parts) and parts[i].kind == "reservedword" and parts[i].word == "in":
            i += 1
            while i < len(parts) and parts[i].kind == "word":
                self.substitutions(parts[i], st, src, depth)
                expanded = expand(parts[i], st, src)
                if values is not None and all(not w.dyn for w in expanded):
                    values.extend(w.text for w in expanded)
                else:
                    values = None
                i += 1
        else:
            values = None  # for VAR; do … (the positional parameters)
        if var:
            st.vars[var] = values
        for p in parts[i:]:
            if p.kind not in ("reservedword", "word"):
                self.node(p, st, src, depth)
        self.redirects(n, st, src, depth)

    def redirects(self, n, st: State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        """The redirections of a compound command (``{ …; } > f``, ``done > f``)."""
        for r in getattr(n, "redirects", None) or []:
            self.redirect(r, st, src, depth)

    def redirect(self, r, st: State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        out = r.output
        if not (hasattr(out, "kind") and out.kind == "word"):
            return  # 2>&1, >&2: a file descriptor
        self.substitutions(out, st, src, depth)
        if r.type in _WRITE_REDIRECTS:
            self.emit_all(expand(out, st, src), FILE, st)

    # -- commands --------------------------------------------------------------
    def command(self, n, st: State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        words, redirects, assigns = [], [], []  # type: ignore[var-annotated]
        for p in n.parts:
            if p.kind == "word":
                words.append(p)
            elif p.kind == "redirect":
                redirects.append(p)
            elif p.kind == "assignment":
                (assigns if not words else words).append(p)
        for p in n.parts:
            if p.kind in ("word", "assignment"):
                self.substitutions(p, st, src, depth)
        for r in redirects:
            self.redirect(r, st, src, depth)
        if not words:
            for a in assigns:  # X=value; later "$X" is that value
                assign(a, st, src)
            return
        expanded = [expand(w, st, src) for w in words]
        variants: list[list[W]] = [[]]
        for options in expanded:
            variants = [v + [o] for v in variants for o in options][:MAX_VARIANTS]
        for argv in variants:
            self.simple(argv, st, depth, redirects, src)

    def simple(self, argv: list[W], st: State, depth: int, redirects: list, src: str) -> None:
        """One simple command, its words known (as far as they can be)."""
        while argv:
            head = argv[0]
            if head.dyn:
                return  # "$CMD …": not seen
            name = posixpath.basename(head.text)
            args = argv[1:]
            if name in PREFIXES:
                rest = PREFIXES[name](self, args, st)
                if rest is None:
                    return
                if isinstance(rest, tuple):  # env -C DIR, chroot DIR …: the command runs elsewhere
                    argv, st = rest
                else:
                    argv = rest
                continue
            self.commands.append([name] + [a.text for a in args])
            if name in st.funcs and head.text == name:
                self.call(name, args, st, depth)
                return
            if name in ("set", "shift"):
                self.positional(name, args, st)
                return
            if name in ("cd", "pushd", "popd"):
                self.chdir(name, args, st)
                return
            if name in SHELLS:
                self.shell(args, st, depth, redirects, src)
                return
            if name == "eval":
                if args and not any(a.dyn for a in args):
                    self.script(" ".join(a.text for a in args), st, depth + 1)
                return
            if name in ("export", "declare", "typeset", "local", "readonly"):
                for a in args:
                    nm, eq, val = a.text.partition("=")
                    if eq and nm.isidentifier():
                        st.vars[nm] = None if a.dyn else [val]
                return
            handler = WRITERS.get(name)
            if handler is not None:
                handler(self, args, st, depth)
            return

    def chdir(self, name: str, args: list[W], st: State) -> None:
        ops = [a for a in args if not (a.text.startswith("-") and len(a.text) > 1 and not a.dyn)]
        before = st.cwd
        if name == "popd":
            st.cwd = st.stack.pop() if st.stack else st.cwd
        elif name == "pushd" and not ops:
            if st.stack:
                st.cwd, st.stack[-1] = st.stack[-1], st.cwd
        else:
            if name == "pushd":
                st.stack.append(st.cwd)
            target = ops[0] if ops else W("~")
            if target.dyn or expands(target):
                st.cwd = None  # a directory named at run time: later relative writes could land anywhere
            elif target.text == "-":
                st.cwd = st.oldcwd
            else:
                st.cwd = st.path(target.text)
        st.oldcwd = before

    def call(self, name: str, args: list[W], st: State, depth: int) -> None:
        """A function defined earlier in the command: its body, with these positional parameters."""
        if depth >= MAX_DEPTH:
            return
        body, src = st.funcs[name]
        saved = st.args
        st.args = None if any(a.dyn for a in args) else [a.text for a in args]
        try:
            for p in body:
                self.node(p, st, src, depth + 1)
        finally:
            st.args = saved

    def positional(self, name: str, args: list[W], st: State) -> None:
        """``set -- ARGS`` / ``set ARGS`` (not options) and ``shift [N]`` change the positional parameters."""
        if name == "shift":
            n = args[0].text if args and not args[0].dyn else "1"
            if st.args is not None:
                st.args = st.args[int(n):] if n.isdigit() else None
            return
        if not args:
            return
        if args[0].text == "--" or not args[0].text.startswith(("-", "+")):
            words = args[1:] if args[0].text == "--" else args
            st.args = None if any(a.dyn for a in words) else [a.text for a in words]

    def shell(self, args: list[W], st: State, depth: int, redirects: list, src: str) -> None:
        """``bash -c STRING``, ``sh -lc STRING``, ``bash <<'EOF'``, ``bash -s``; ``bash script`` is not seen."""
        i = 0
        command_string = False
        while i < len(args):
            a = args[i]
            if a.dyn:
                return
            t = a.text
            if t == "--":
                i += 1
                break
            if t in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
                i += 2
                continue
            if len(t) > 1 and t[0] in "-+" and not t.startswith("--"):
                if "c" in t[1:]:
                    command_string = True
                i += 1
                continue
            if t.startswith("--"):
                i += 1
                continue
            break
        if command_string:
            if i < len(args) and not args[i].dyn:
                inner = st.copy()
                rest = args[i + 2:]  # bash -c STRING $0 $1 …
                inner.args = None if any(a.dyn for a in rest) else [a.text for a in rest]
                self.script(args[i].text, inner, depth + 1)
            return
        if i < len(args):
            return  # a script file: not seen
        for r in redirects:  # the script on stdin: a heredoc or a here-string
            if r.type in ("<<", "<<-") and getattr(r, "heredoc", None) is not None:
                body = r.heredoc.value
                body = body[:body.rfind("\n") + 1] if "\n" in body else ""
                self.script(body, st.copy(), depth + 1)
            elif r.type == "<<<" and hasattr(r.output, "word"):
                w = expand(r.output, st, src)
                if w and not w[0].dyn:
                    self.script(w[0].text, st.copy(), depth + 1)
