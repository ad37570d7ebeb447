"""The paths a shell command would write, for guarding ``bash`` calls.

With ``guard = ["edit", "write", "bash"]`` in hooks.toml the guard asks
:func:`shell_write_targets` which paths a ``bash`` call's command would
write, and blocks the call when one of them lies inside another agent's live
claim - with the same message as for ``edit``.  The command is parsed with
``bashlex`` (a port of bash's own grammar; imported only when a ``bash`` call
is guarded), never matched with regular expressions, and the syntax tree is
walked:

* redirections ``>``, ``>>``, ``>|``, ``&>``, ``&>>``, ``>&FILE``, ``<>``
  (not ``2>&1``, not ``<``), on simple commands, groups and loops, including
  a heredoc feeding a file (``cat > f <<'EOF'``);
* writers: ``tee [-a]``, ``sed -i``/``--in-place`` (``-i.bak``, ``-Ei``),
  ``perl -i``/``-pi``, ``mv`` (sources and destination), ``cp``, ``ln``,
  ``install`` (destination, ``-t DIR``, a destination directory receives
  ``DIR/basename(source)``), ``rm`` (``-r`` makes it a directory),
  ``rmdir``, ``unlink``, ``touch``, ``truncate``, ``mkdir``, ``chmod``/
  ``chown``/``chgrp``, ``dd of=``, ``sort -o``, ``uniq IN OUT``,
  ``curl -o``, ``wget -O``, ``tar x``/``tar cf``, ``unzip``, ``patch``,
  ``shred``, ``sponge``, ``ed``/``ex``, ``rsync`` (local destination),
  ``find … -delete``/``-exec WRITER {}``/``-fprint``, the in-place
  formatters (``black``, ``isort``, ``ruff format``/``--fix``,
  ``prettier --write``, ``gofmt -w``, ``clang-format -i``, ``rustfmt``,
  ``eslint --fix`` …) and the package managers that rewrite a manifest, its
  lock file and install tree (``npm install``, ``yarn add``, ``pnpm add``,
  ``bun add``, ``poetry add``, ``uv add``/``sync``, ``cargo add``,
  ``go get``/``go mod tidy``);
* git: ``checkout [REV] -- PATH`` (and ``checkout PATH``), ``restore``
  (not ``--staged`` alone), ``mv``, ``rm`` (not ``--cached``), ``clean``;
  and the commands that rewrite the whole working tree - ``reset --hard``,
  ``stash`` (push/pop/apply), ``switch``, ``merge``, ``rebase``, ``pull``,
  ``cherry-pick``, ``revert``, ``am``, ``apply`` - count as writing the
  project (``git -C DIR`` is followed);
* structure: ``;``, ``&&``, ``||``, ``|``, ``&``, ``( … )``, ``{ …; }``,
  ``if``/``for``/``while``/functions, ``$( … )`` and ``<( … )``/``>( … )``,
  ``bash -c '…'``/``sh -c``/``eval '…'`` (parsed again, recursively),
  ``bash <<'EOF'`` (the heredoc is parsed as the script), the prefixes
  ``env``, ``sudo``, ``doas``, ``command``, ``exec``, ``nice``, ``nohup``,
  ``time``, ``timeout``, ``stdbuf``, ``ionice``, ``xargs``, and ``cd``/
  ``pushd``/``popd`` (later relative paths follow the directory).
* shell variables assigned a literal value earlier in the same command
  (``F=src/a.py; sed -i … "$F"``) and ``for`` loop variables over literal
  words are substituted.

What cannot be seen (and is therefore not blocked):

* the value of a variable set outside the command or from a substitution
  (``"$FILE"``, ``$(git ls-files)``); a target whose *literal* part names a
  directory (``src/auth/$name.py``) counts as that whole directory;
* ``eval``/``bash -c`` of a computed string, ``source`` of a file, a command
  piped into a shell (``echo … | sh``);
* programs that write files themselves: scripts (``./build.sh``,
  ``python script.py``), ``python -c``, ``node -e``, ``make``, package
  managers, compilers (``-o`` of arbitrary tools) …;
* paths a writer reads from stdin (``… | xargs sed -i …``): for ``xargs`` the
  unseen items are taken as "anything in the current directory", so such a
  command counts as writing that directory;
* ``git checkout NAME`` without ``--`` is read as a path named NAME; the
  branch switch it may be is not seen (``git switch`` is).

Globs expand at run time: a glob (``*``, ``?``, ``[``, ``{a,b}``) counts as
its literal directory prefix, a directory claim-wise (``rm src/*.pyc`` writes
``src/``).

``bashlex`` lacks a few constructs that write nothing - the ``time`` keyword,
``[[ … ]]``, ``(( … ))``, ``$(( … ))`` - so a command it rejects is parsed
again with them blanked out.  A command it still cannot parse (``case``,
``select``, arrays, unbalanced quotes, a substitution inside ``[[ … ]]`` …) is
not waved through and not blocked outright either: every word it contains is taken as a directory
it may write, so it is blocked exactly when it mentions a path inside (or
above) another agent's claim, with a note saying why.  Blocking every
unparsable command would refuse harmless commands in a mesh where nobody
claims anything; letting them pass would make ``guard = bash`` trivially
evadable.  (With ``on_store_error = "allow"`` the guard ignores those guessed
paths and checks only what was parsed.)
"""

from __future__ import annotations

import posixpath

FILE = "file"
DIR = "dir"
MAX_DEPTH = 8        # nested bash -c / eval / heredoc scripts
MAX_VARIANTS = 64    # combinations of known variable values per command


class Targets(list):
    """``(path, kind)`` pairs; ``note`` is set when (part of) the command could not be parsed, and
    ``rough`` holds the pairs that were only guessed from such a part's words."""

    note: str | None = None
    rough: frozenset = frozenset()


def shell_commands(command: str) -> list[list[str]]:
    """The simple commands ``command`` runs, as argument lists (command name first, without its
    directory; ``env``/``sudo``/``nice``… prefixes removed; ``bash -c``/``eval`` strings followed).
    A word that depends on run-time values appears as its literal prefix.  For activity tracking."""
    w = _Walker(Targets())
    w.script(command, _State(), 0)
    out: list[list[str]] = []
    for c in w.commands:
        if c not in out:
            out.append(c)
    return out


def shell_write_targets(command: str) -> Targets:
    """The ``(path, kind)`` pairs the shell ``command`` would write; kind is ``"file"`` or ``"dir"``.

    Paths are as written in the command, relative to the shell's starting
    directory unless absolute (``cd`` is followed).  See the module docstring
    for what is and is not seen.
    """
    out = Targets()
    _Walker(out).script(command, _State(), 0)
    seen: set = set()
    uniq = Targets(t for t in out if not (t in seen or seen.add(t)))  # type: ignore[func-returns-value]
    uniq.note, uniq.rough = out.note, out.rough
    return uniq


# -- parsing -------------------------------------------------------------------
_bashlex = None


def _parser():  # -> the bashlex module, patched, or None
    global _bashlex
    if _bashlex is None:
        try:
            import bashlex
            import bashlex.heredoc as hd
        except ImportError:
            _bashlex = False
            return None
        original = hd.makeheredoc
        if not getattr(original, "_pi_mesh", False):
            def makeheredoc(tokenizer, redirnode, lineno, killleading):  # type: ignore[no-untyped-def]
                # bashlex compares the delimiter with its quotes (<<'EOF' never ends): remove them first
                redirnode.output.word = _unquote(redirnode.output.word)
                return original(tokenizer, redirnode, lineno, killleading)

            makeheredoc._pi_mesh = True  # type: ignore[attr-defined]
            hd.makeheredoc = makeheredoc
        _bashlex = bashlex
    return _bashlex or None


def _unquote(raw: str) -> str:
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


class _State:
    """What the walk knows at a point of the script: the directory and literal variables."""

    __slots__ = ("cwd", "stack", "vars")

    def __init__(self) -> None:
        self.cwd = ""  # relative to the starting directory ("" = it), or absolute, or ~…
        self.stack: list[str] = []
        self.vars: dict[str, list[str] | None] = {}  # None: known to be unknown

    def copy(self) -> _State:
        s = _State()
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


_GLOB = "*?["


class _Walker:
    def __init__(self, out: Targets) -> None:
        self.out = out
        self.commands: list[list[str]] = []  # every simple command run, prefixes (env, sudo …) stripped

    # -- entry points ---------------------------------------------------------
    def script(self, text: str, st: _State, depth: int) -> None:
        if not text.strip():
            return
        if depth > MAX_DEPTH:
            self.fallback(text, st, "nested too deep")
            return
        bashlex = _parser()
        if bashlex is None:
            self.fallback(text, st, "the shell parser bashlex is not installed")
            return
        try:
            trees = bashlex.parse(text)
        except Exception as e:  # noqa: BLE001 - bashlex raises ParsingError, NotImplementedError, others
            simpler = _simplify(text)
            try:
                if simpler == text:
                    raise
                trees = bashlex.parse(simpler)
                text = simpler
            except Exception:  # noqa: BLE001
                self.fallback(text, st, _reason(e))
                return
        try:
            for tree in trees:
                self.node(tree, st, text, depth)
        except Exception as e:  # noqa: BLE001 - a tree this walker does not expect: be conservative, not wrong
            self.fallback(text, st, f"unexpected syntax tree ({type(e).__name__})")

    def fallback(self, text: str, st: _State, reason: str) -> None:
        """Unparsable: every word the text contains counts as a directory it may write."""
        note = (f"(pi-mesh could not parse this shell command - {reason} - so every path it mentions counts as "
                f"written. Use simpler shell syntax, or the edit/write tools.)")
        self.out.note = self.out.note or note
        self.commands.extend(_rough_commands(text))
        start = len(self.out)
        for word in _rough_words(text) + _pieces(text):
            if not any(c.isalnum() for c in word):
                continue  # [[, ]], {, !, =, ;; …
            if word.startswith("-"):
                if "=" not in word:
                    continue
                word = word.split("=", 1)[1]
            dyn = "$" in word or "`" in word
            if dyn:
                word = word[:min(i for i in (word.find("$"), word.find("`")) if i != -1)]
            self.emit(W(word, dyn), DIR, st)
        self.out.rough = self.out.rough | frozenset(self.out[start:])

    # -- targets ---------------------------------------------------------------
    def emit(self, w: W, kind: str, st: _State) -> None:
        text = w.text
        if not w.dyn and not any(c in text for c in _GLOB) and not _braces(text):
            if text and text != "-" and not text.startswith("/dev/"):
                self.out.append((st.path(text), kind))
            return
        # run-time expansion: the literal directory prefix, as a directory
        cut = len(text)
        for i, c in enumerate(text):
            if c in _GLOB or c == "{":
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
            self.out.append((st.path(d), DIR))

    def emit_path(self, text: str, kind: str, st: _State) -> None:
        self.emit(W(text), kind, st)

    # -- tree ------------------------------------------------------------------
    def node(self, n, st: _State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        k = n.kind
        if k == "command":
            self.command(n, st, src, depth)
        elif k == "list":
            for p in n.parts:
                if p.kind != "operator":
                    self.node(p, st, src, depth)
        elif k == "pipeline":
            elems = [p for p in n.parts if p.kind not in ("pipe", "reservedword")]
            for i, p in enumerate(elems):
                # every element of a pipeline runs in a subshell; the last feeds nothing
                self.node(p, st.copy() if len(elems) > 1 else st, src, depth)
                if i + 1 < len(elems):
                    self.stdin_into(p, elems[i + 1], st, src, depth)
        elif k == "compound":
            inner = st
            if n.list and n.list[0].kind == "reservedword" and n.list[0].word == "(":
                inner = st.copy()
            for p in n.list:
                if p.kind != "reservedword":
                    self.node(p, inner, src, depth)
            for r in getattr(n, "redirects", None) or []:
                self.redirect(r, st, src, depth)
        elif k in ("if", "while", "until"):
            for p in n.parts:
                if p.kind not in ("reservedword",):
                    self.node(p, st, src, depth)
            for r in getattr(n, "redirects", None) or []:
                self.redirect(r, st, src, depth)
        elif k == "for":
            self.for_loop(n, st, src, depth)
        elif k == "function":
            for p in n.parts:
                if p.kind not in ("reservedword", "word"):
                    self.node(p, st.copy(), src, depth)
        elif k == "redirect":
            self.redirect(n, st, src, depth)
        elif k in ("word", "assignment"):
            self.substitutions(n, st, src, depth)
        elif k in ("commandsubstitution", "processsubstitution"):
            self.node(n.command, st.copy(), src, depth)

    def substitutions(self, n, st: _State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        """Commands inside a word: ``$(…)``, backquotes, ``<(…)``, ``>(…)``."""
        for p in getattr(n, "parts", None) or []:
            if p.kind in ("commandsubstitution", "processsubstitution"):
                self.node(p.command, st.copy(), src, depth)
            elif p.kind in ("word", "assignment"):
                self.substitutions(p, st, src, depth)

    def for_loop(self, n, st: _State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        parts = n.parts
        var = parts[1].word if len(parts) > 1 and parts[1].kind == "word" else None
        values: list[str] | None = []
        i = 2
        if i < len(parts) and parts[i].kind == "reservedword" and parts[i].word == "in":
            i += 1
            while i < len(parts) and parts[i].kind == "word":
                self.substitutions(parts[i], st, src, depth)
                expanded = self.expand(parts[i], st, src)
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
        for r in getattr(n, "redirects", None) or []:
            self.redirect(r, st, src, depth)

    def redirect(self, r, st: _State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        t = r.type
        out = r.output
        if t in (">", ">>", ">|", "&>", "&>>", "<>") or (t == ">&" and not isinstance(out, (int, str))):
            if hasattr(out, "kind") and out.kind == "word":
                self.substitutions(out, st, src, depth)
                for w in self.expand(out, st, src):
                    self.emit(w, FILE, st)
        elif hasattr(out, "kind") and out.kind == "word":
            self.substitutions(out, st, src, depth)

    def stdin_into(self, producer, consumer, st: _State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        """``echo 'sed -i …' | sh`` is not followed (documented); nothing to do for now."""

    # -- words -----------------------------------------------------------------
    def expand(self, n, st: _State, src: str) -> list[W]:  # type: ignore[no-untyped-def]
        """The possible values of a word node (literal variables substituted)."""
        parts = [p for p in (getattr(n, "parts", None) or []) if p.kind != "tilde"]
        raw = src[n.pos[0]:n.pos[1]]
        if not parts:
            # quote removal from the source text: bashlex's own mangles adjacent quoted pieces ('a'"'"'b')
            return [W(_unquote(raw) if raw else n.word)]
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
                return [W(_unquote(raw[:min(q.pos[0] for q in parts) - base]), True)]
        out = []
        for x in variants:
            text = _unquote(x)
            while "\ue000" in text:
                i = text.index("\ue000")
                j = text.index("\ue001", i)
                text = text[:i] + values[int(text[i + 1:j])] + text[j + 1:]
            out.append(W(text, bool(unknown)))
        return out

    # -- commands --------------------------------------------------------------
    def command(self, n, st: _State, src: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        words, redirects, assigns = [], [], []
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
                self.assign(a, st, src)
            return
        expanded = [self.expand(w, st, src) for w in words]
        variants: list[list[W]] = [[]]
        for options in expanded:
            variants = [v + [o] for v in variants for o in options][:MAX_VARIANTS]
        for argv in variants:
            self.simple(argv, st, depth, redirects, src)

    def assign(self, a, st: _State, src: str) -> None:  # type: ignore[no-untyped-def]
        name, _, _ = a.word.partition("=")
        if not name.isidentifier():
            return
        raw = src[a.pos[0]:a.pos[1]]
        value = raw.partition("=")[2]
        parts = [p for p in (getattr(a, "parts", None) or []) if p.kind != "tilde"]
        if parts:
            w = self.expand(a, st, src)
            st.vars[name] = None if any(x.dyn for x in w) else [x.text.partition("=")[2] for x in w]
        else:
            st.vars[name] = [_unquote(value)]

    def simple(self, argv: list[W], st: _State, depth: int, redirects: list, src: str) -> None:
        """One simple command, its words known (as far as they can be)."""
        while argv:
            head = argv[0]
            if head.dyn:
                return  # "$CMD …": not seen
            name = posixpath.basename(head.text)
            args = argv[1:]
            if name in _PREFIXES:
                rest = _PREFIXES[name](self, args, st)
                if rest is None:
                    return
                argv = rest
                continue
            self.commands.append([name] + [a.text for a in args])
            if name in ("cd", "pushd", "popd"):
                self.chdir(name, args, st)
                return
            if name in _SHELLS:
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
            handler = _WRITERS.get(name)
            if handler is not None:
                handler(self, args, st, depth)
            return

    def chdir(self, name: str, args: list[W], st: _State) -> None:
        ops = [a for a in args if not (a.text.startswith("-") and len(a.text) > 1 and not a.dyn)]
        if name == "popd":
            st.cwd = st.stack.pop() if st.stack else st.cwd
            return
        if name == "pushd":
            st.stack.append(st.cwd)
        if not ops:
            st.cwd = "~" if name == "cd" else st.cwd
            return
        target = ops[0]
        if target.dyn or target.text == "-":
            return  # unknown directory: later relative paths stay relative to the last known one
        st.cwd = st.path(target.text)

    def shell(self, args: list[W], st: _State, depth: int, redirects: list, src: str) -> None:
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
                self.script(args[i].text, st.copy(), depth + 1)
            return
        if i < len(args):
            return  # a script file: not seen
        for r in redirects:  # the script on stdin: a heredoc or a here-string
            if r.type in ("<<", "<<-") and getattr(r, "heredoc", None) is not None:
                body = r.heredoc.value
                body = body[:body.rfind("\n") + 1] if "\n" in body else ""
                self.script(body, st.copy(), depth + 1)
            elif r.type == "<<<" and hasattr(r.output, "word"):
                w = self.expand(r.output, st, src)
                if w and not w[0].dyn:
                    self.script(w[0].text, st.copy(), depth + 1)


def _braces(text: str) -> bool:
    i = text.find("{")
    return i != -1 and text.find("}", i) != -1 and ("," in text[i:] or ".." in text[i:])


def _reason(e: Exception) -> str:
    msg = str(e).split("\n")[0]
    if isinstance(e, NotImplementedError):
        return f"unsupported syntax: {msg[:80]}"
    return f"{msg[:100]}"


_STARTERS = ("then", "do", "else", "elif", "if", "while", "until", "!", "time")


def _simplify(text: str) -> str:
    """``text`` with the constructs bashlex does not implement, and that write nothing, blanked out:
    the ``time`` keyword, ``[[ … ]]`` and ``(( … ))`` tests (→ ``true``) and ``$(( … ))`` (→ ``0``).

    Used only to retry a command bashlex rejected; here-document bodies are
    skipped.  A construct with a command substitution inside is left alone (it
    could write), and the retry then fails as the first attempt did.
    """
    out = list(text)
    n = len(text)
    i = 0
    quote = None
    at_start = True  # at the position of a command word
    heredocs: list[tuple[str, bool]] = []  # pending here-documents: (delimiter, <<- strips tabs)
    depth = 0  # parentheses open inside the current $( … )
    outer: list[tuple[str | None, int]] = []  # (quote, depth) around each open $( … )
    while i < n:
        c = text[i]
        if quote != "'" and c == "$" and text.startswith("$(", i) and not text.startswith("$((", i):
            outer.append((quote, depth))  # a command substitution: commands again, even inside "…"
            quote, depth, at_start = None, 0, True
            i += 2
            continue
        if quote is None and c == ")" and depth == 0 and outer:
            quote, depth = outer.pop()
            at_start = False
            i += 1
            continue
        if quote == "'":
            quote = None if c == "'" else quote
            i += 1
            continue
        if c == "\\":
            i += 2
            at_start = False
            continue
        if quote == '"' and c == '"':
            quote = None
            i += 1
            continue
        if c == "$" and text.startswith("$((", i):
            j = _closing(text, i + 3, 2)
            if j is None or _substitutes(text[i + 3:j]):
                return text
            out[i:j] = list("0".ljust(j - i))
            i = j
            at_start = False
            continue
        if quote == '"':
            i += 1
            continue
        if c in "'\"":
            quote = c
            at_start = False
            i += 1
            continue
        if c == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
            k = i + 2
            strip = text.startswith("-", k)
            k += 1 if strip else 0
            while k < n and text[k] in " \t":
                k += 1
            m = k
            while m < n and not text[m].isspace() and text[m] not in ";&|()<>":
                m += 1
            delim = _unquote(text[k:m])
            if not delim:
                return text
            heredocs.append((delim, strip))
            i = m
            at_start = False
            continue
        if c == "\n" and heredocs:
            i += 1
            for delim, strip in heredocs:  # skip the bodies, in order
                while i < n:
                    end = text.find("\n", i)
                    line = text[i:n if end == -1 else end]
                    i = n if end == -1 else end + 1
                    if (line.lstrip("\t") if strip else line) == delim:
                        break
            heredocs = []
            at_start = True
            continue
        if c in ";&|(){\n":
            if at_start and c == "(" and text.startswith("((", i):
                j = _closing(text, i + 2, 2)
                if j is None or _substitutes(text[i + 2:j]):
                    return text
                out[i:j] = list("true".ljust(j - i))
                i = j
                at_start = False
                continue
            depth += 1 if c == "(" else -1 if c == ")" else 0
            at_start = c != ")"
            i += 1
            continue
        if c.isspace():
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in ";&|()<>'\"\\":
            j += 1
        word = text[i:j] if j > i else text[i]
        if at_start and word == "time":
            k = j
            while k < n and text[k] in " \t":
                k += 1
            if text.startswith("-p", k) and (k + 2 == n or text[k + 2].isspace()):
                j = k + 2
            out[i:j] = list(" " * (j - i))
            i = j
            continue  # still at the start of the timed command
        if at_start and word == "[[":
            k = i + 2
            q = None
            while k < n:
                ch = text[k]
                if q:
                    if ch == "\\" and q == '"':
                        k += 1
                    elif ch == q:
                        q = None
                elif ch in "'\"":
                    q = ch
                elif ch == "\\":
                    k += 1
                elif text.startswith("]]", k) and text[k - 1].isspace() and (k + 2 == n or text[k + 2] in " \t\n;&|)"):
                    break
                k += 1
            if k >= n or _substitutes(text[i:k]):
                return text
            out[i:k + 2] = list("true".ljust(k + 2 - i))
            i = k + 2
            at_start = False
            continue
        at_start = word in _STARTERS
        i = j if j > i else i + 1
    return "".join(out)


def _substitutes(segment: str) -> bool:
    """Does ``segment`` hold a command or process substitution (``$(…)`` but not ``$((…))``, backquotes)?"""
    if "`" in segment or "<(" in segment or ">(" in segment:
        return True
    i = segment.find("$(")
    while i != -1:
        if not segment.startswith("$((", i):
            return True
        i = segment.find("$(", i + 3)
    return False


def _closing(text: str, i: int, depth: int) -> int | None:
    """The index just past the ``))`` closing a ``((`` / ``$((`` opened before ``i`` (``depth`` open)."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1 if text[i - 1] == ")" else None
        elif c in "'\"":
            return None
        i += 1
    return None


def _pieces(text: str) -> list[str]:
    """The text cut at every blank, quote, operator, ``$``, backquote and ``=`` (quoted commands included)."""
    for c in "'\"$`;&|()<>=\\{}":
        text = text.replace(c, " ")
    return text.split()


def _rough_commands(text: str) -> list[list[str]]:
    """Unparsable text cut into commands at unquoted ``;``, ``&``, ``|``, parentheses and newlines."""
    out: list[list[str]] = []
    cur: list[str] = []
    quote = None
    for c in text:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in ";&|()\n":
            out.append(_rough_words("".join(cur)))
            cur = []
            continue
        cur.append(c)
    out.append(_rough_words("".join(cur)))
    cmds = []
    for words in out:
        while words and (words[0] in ("time", "!", "{", "}", "then", "do", "else", "elif", "if", "while")
                         or ("=" in words[0] and words[0].split("=", 1)[0].isidentifier())):
            words = words[1:]
        if words:
            cmds.append([posixpath.basename(words[0])] + words[1:])
    return cmds


def _rough_words(text: str) -> list[str]:
    """Words of a command that could not be parsed: split at blanks and operators, quotes removed."""
    words, cur = [], []
    quote = None
    i, n = 0, len(text)
    have = False
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = None
            elif c == "\\" and quote == '"' and i + 1 < n:
                i += 1
                cur.append(text[i])
            else:
                cur.append(c)
        elif c in "'\"":
            quote, have = c, True
        elif c == "\\" and i + 1 < n:
            i += 1
            cur.append(text[i])
        elif c.isspace() or c in ";&|()<>":
            if cur or have:
                words.append("".join(cur))
            cur, have = [], False
        else:
            cur.append(c)
        i += 1
    if cur:
        words.append("".join(cur))
    return [w for w in words if w]


# -- option parsing --------------------------------------------------------------
def parse_opts(args: list[W], short_arg: str = "", long_arg: tuple = (), short_opt: str = "",
               stop_at_operand: bool = False) -> tuple[list[tuple[str, object]], list[W], list[W]]:
    """GNU-style options: ``(options, operands, after_dashdash)``.

    ``short_arg``: short options that take an argument (attached or the next
    word); ``short_opt``: those whose argument can only be attached
    (``sed -i.bak``); ``long_arg``: long options taking an argument (``=``
    or the next word).  Options may follow operands unless ``stop_at_operand``.
    """
    opts: list[tuple[str, object]] = []
    operands: list[W] = []
    after: list[W] = []
    i = 0
    while i < len(args):
        a = args[i]
        t = a.text
        if a.dyn or t == "-" or not t.startswith("-"):
            operands.append(a)
            i += 1
            if stop_at_operand:
                operands.extend(args[i:])
                break
            continue
        if t == "--":
            after = args[i + 1:]
            break
        if t.startswith("--"):
            name, eq, _ = t.partition("=")
            if eq:
                opts.append((name, a.after(len(name) + 1)))
            elif name in long_arg and i + 1 < len(args):
                i += 1
                opts.append((name, args[i]))
            else:
                opts.append((name, None))
            i += 1
            continue
        j = 1
        while j < len(t):
            c = t[j]
            if c in short_arg:
                if j + 1 < len(t):
                    opts.append(("-" + c, a.after(j + 1)))
                elif i + 1 < len(args):
                    i += 1
                    opts.append(("-" + c, args[i]))
                else:
                    opts.append(("-" + c, None))
                break
            if c in short_opt:
                opts.append(("-" + c, a.after(j + 1) if j + 1 < len(t) else None))
                break
            opts.append(("-" + c, None))
            j += 1
        i += 1
    return opts, operands, after


def _has(opts: list, *names: str) -> bool:
    return any(o[0] in names for o in opts)


def _vals(opts: list, *names: str) -> list[W]:
    return [v for o, v in opts if o in names and isinstance(v, W)]


# -- prefixes: return the command they run ----------------------------------------
def _env(wk: _Walker, args: list[W], st: _State) -> list[W] | None:
    opts, ops, _ = parse_opts(args, short_arg="uCS", long_arg=("--unset", "--chdir", "--split-string"),
                              stop_at_operand=True)
    for v in _vals(opts, "-S", "--split-string"):
        wk.script(v.text, st.copy(), 1)
    while ops and "=" in ops[0].text and not ops[0].text.startswith("="):
        ops = ops[1:]
    return ops or None


def _sudo(wk: _Walker, args: list[W], st: _State) -> list[W] | None:
    _, ops, after = parse_opts(args, short_arg="ugpChDrtUT", long_arg=("--user", "--group", "--prompt",
                                                                          "--chdir", "--host", "--role", "--type",
                                                                          "--other-user", "--close-from"),
                               stop_at_operand=True)
    return (ops or after) or None


def _command(wk: _Walker, args: list[W], st: _State) -> list[W] | None:
    opts, ops, after = parse_opts(args, stop_at_operand=True)
    if _has(opts, "-v", "-V"):
        return None
    return (ops or after) or None


def _simple_prefix(short_arg: str = "", long_arg: tuple = ()):  # type: ignore[no-untyped-def]
    def prefix(wk: _Walker, args: list[W], st: _State) -> list[W] | None:
        _, ops, after = parse_opts(args, short_arg=short_arg, long_arg=long_arg, stop_at_operand=True)
        return (ops or after) or None
    return prefix


def _time(wk: _Walker, args: list[W], st: _State) -> list[W] | None:
    opts, ops, after = parse_opts(args, short_arg="of", long_arg=("--output", "--format"), stop_at_operand=True)
    for v in _vals(opts, "-o", "--output"):
        wk.emit(v, FILE, st)
    return (ops or after) or None


def _timeout(wk: _Walker, args: list[W], st: _State) -> list[W] | None:
    _, ops, after = parse_opts(args, short_arg="sk", long_arg=("--signal", "--kill-after"), stop_at_operand=True)
    ops = ops or after
    return ops[1:] or None  # the duration, then the command


def _xargs(wk: _Walker, args: list[W], st: _State) -> list[W] | None:
    opts, ops, after = parse_opts(args, short_arg="aEdILnPs", long_arg=(
        "--arg-file", "--eof", "--delimiter", "--replace", "--max-lines", "--max-args", "--max-procs",
        "--max-chars", "--process-slot-var"), short_opt="ei", stop_at_operand=True)
    ops = ops or after
    if not ops:
        return None
    # the items come from stdin: unseen, so they stand for "anything in the current directory"
    unseen = W("*")
    repl = [v.text for v in _vals(opts, "-I", "--replace")] + (["{}"] if _has(opts, "-i") else [])
    if repl:
        return [W(a.text.replace(repl[0], "*"), a.dyn) if repl[0] in a.text else a for a in ops]
    return ops + [unseen]


_PREFIXES = {
    "env": _env, "sudo": _sudo, "doas": _simple_prefix("uC"), "command": _command, "builtin": _command,
    "exec": _simple_prefix("a"), "nice": _simple_prefix("n", ("--adjustment",)), "nohup": _simple_prefix(),
    "time": _time, "timeout": _timeout, "stdbuf": _simple_prefix("ioe", ("--input", "--output", "--error")),
    "ionice": _simple_prefix("cnp", ("--class", "--classdata", "--pid")), "xargs": _xargs,
    "unbuffer": _simple_prefix(), "chronic": _simple_prefix(),
}
_SHELLS = {"bash", "sh", "dash", "zsh", "ksh", "ash", "mksh", "busybox-sh"}


# -- writers ---------------------------------------------------------------------
def _all(kind: str, short_arg: str = "", long_arg: tuple = (), recursive: str = ""):  # type: ignore[no-untyped-def]
    """A command whose every operand is written (``touch``, ``rm`` …)."""
    def handler(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
        opts, ops, after = parse_opts(args, short_arg=short_arg, long_arg=long_arg)
        k = DIR if recursive and _has(opts, *recursive.split()) else kind
        for w in ops + after:
            wk.emit(w, k, st)
    return handler


def _tee(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    _, ops, after = parse_opts(args, long_arg=("--output-error",))
    for w in ops + after:
        wk.emit(w, FILE, st)


def _sed(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, ops, after = parse_opts(args, short_arg="efl", long_arg=("--expression", "--file", "--line-length"),
                                  short_opt="i")
    if not _has(opts, "-i", "--in-place"):
        return
    files = ops + after
    if not _has(opts, "-e", "--expression", "-f", "--file"):
        files = files[1:]  # the first operand is the script
    for w in files:
        wk.emit(w, FILE, st)


def _perl(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
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
        for w in files:
            wk.emit(w, FILE, st)


def _copy_like(removes_sources: bool, short_arg: str = "St", long_arg: tuple = ("--suffix", "--target-directory"),
               link: bool = False):  # type: ignore[no-untyped-def]
    """``mv``/``cp``/``ln``/``install``: the destination, ``DEST/basename(SRC)``, and for mv the sources."""
    def handler(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
        opts, ops, after = parse_opts(args, short_arg=short_arg, long_arg=long_arg)
        ops = ops + after
        recursive = not link and (_has(opts, "-r", "-R", "-a", "--recursive", "--archive") or removes_sources)
        kind = DIR if recursive else FILE
        target_dirs = _vals(opts, "-t", "--target-directory")
        if link and not target_dirs and len(ops) == 1:
            target_dirs = [W(".")]
        if target_dirs:
            dests, sources = target_dirs, ops
            into = True
        elif len(ops) >= 2:
            dests, sources = [ops[-1]], ops[:-1]
            into = len(sources) > 1 or ops[-1].text.endswith("/")
            if len(sources) == 1:
                wk.emit(ops[-1], kind, st)  # DEST itself (a file, or a new directory)
        else:
            return
        no_target_dir = _has(opts, "-T", "--no-target-directory")
        for d in dests:
            if d.dyn:
                wk.emit(d, DIR, st)
                continue
            for s in sources:
                if s.dyn or any(c in s.text for c in _GLOB) or _braces(s.text):
                    wk.emit(W(d.text.rstrip("/") + "/*"), DIR, st)  # unknown names: anything in DEST
                elif not no_target_dir or into:
                    base = posixpath.basename(s.text.rstrip("/")) or s.text
                    wk.emit(W(d.text.rstrip("/") + "/" + base), kind, st)
        if removes_sources:
            for s in sources:
                wk.emit(s, DIR, st)
    return handler


def _install(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, ops, after = parse_opts(args, short_arg="mogSt", long_arg=("--mode", "--owner", "--group", "--suffix",
                                                                      "--target-directory"))
    if _has(opts, "-d", "--directory"):
        for w in ops + after:
            wk.emit(w, FILE, st)
        return
    _copy_like(False, "mogSt", ("--mode", "--owner", "--group", "--suffix", "--target-directory"))(
        wk, args, st, depth)


def _mode_change(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, ops, after = parse_opts(args, long_arg=("--reference",))
    ops = ops + after
    if not _has(opts, "--reference"):
        ops = ops[1:]  # the mode / owner
    kind = DIR if _has(opts, "-R", "--recursive") else FILE
    for w in ops:
        wk.emit(w, kind, st)


def _dd(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    for a in args:
        if a.startswith("of="):
            wk.emit(a.after(3), FILE, st)


def _sort(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, _, _ = parse_opts(args, short_arg="ktoSTz", long_arg=("--output", "--key", "--field-separator",
                                                                 "--buffer-size", "--temporary-directory"))
    for v in _vals(opts, "-o", "--output"):
        wk.emit(v, FILE, st)


def _uniq(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    _, ops, after = parse_opts(args, short_arg="fsw", long_arg=("--skip-fields", "--skip-chars", "--check-chars"))
    ops = ops + after
    if len(ops) >= 2:
        wk.emit(ops[1], FILE, st)


def _curl(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, ops, _ = parse_opts(args, short_arg="oXHduAeEbcDFKrTwxyYzC", long_arg=(
        "--output", "--request", "--header", "--data", "--user", "--user-agent", "--referer", "--cookie",
        "--cookie-jar", "--dump-header", "--form", "--config", "--range", "--upload-file", "--write-out",
        "--proxy", "--output-dir", "--max-time", "--connect-timeout", "--retry"))
    for v in _vals(opts, "-o", "--output", "-c", "--cookie-jar", "-D", "--dump-header"):
        wk.emit(v, FILE, st)
    if _has(opts, "-O", "--remote-name", "--remote-name-all"):
        d = (_vals(opts, "--output-dir") or [W("")])[0]
        for u in ops:
            if not u.dyn:
                base = posixpath.basename(u.text.split("?")[0].rstrip("/"))
                if base:
                    wk.emit(W(posixpath.join(d.text, base)), FILE, st)


def _wget(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, ops, _ = parse_opts(args, short_arg="OoaPe", long_arg=("--output-document", "--output-file",
                                                                   "--append-output", "--directory-prefix"))
    outs = _vals(opts, "-O", "--output-document")
    for v in outs + _vals(opts, "-o", "--output-file", "-a", "--append-output"):
        wk.emit(v, FILE, st)
    if not outs:
        prefix = _vals(opts, "-P", "--directory-prefix")
        for u in ops:
            if prefix:
                wk.emit(prefix[0], DIR, st)
            elif not u.dyn:
                base = posixpath.basename(u.text.split("?")[0].rstrip("/"))
                if base:
                    wk.emit(W(base), FILE, st)


def _tar(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    if not args:
        return
    first = args[0]
    if not first.dyn and not first.text.startswith("-"):  # old style: tar xzf FILE
        args = [W("-" + first.text)] + args[1:]
    opts, ops, _ = parse_opts(args, short_arg="fCTXbHIKLNV", long_arg=("--file", "--directory", "--files-from",
                                                                        "--exclude-from", "--use-compress-program",
                                                                        "--to-command"))
    if _has(opts, "-x", "--extract", "--get"):
        dirs = _vals(opts, "-C", "--directory") or [W(".")]
        members = [w for w in ops]
        for d in dirs:
            if members:
                for m in members:
                    wk.emit(W(posixpath.join(d.text, m.text), m.dyn or d.dyn), DIR, st)
            else:
                wk.emit(d, DIR, st)
    elif _has(opts, "-c", "--create", "-r", "--append", "-u", "--update", "-A", "--catenate", "--delete"):
        for v in _vals(opts, "-f", "--file"):
            wk.emit(v, FILE, st)


def _unzip(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, _, _ = parse_opts(args, short_arg="dxP")
    if _has(opts, "-l", "-t", "-v", "-Z", "-p", "-c"):
        return
    for d in _vals(opts, "-d") or [W(".")]:
        wk.emit(d, DIR, st)


def _patch(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, ops, after = parse_opts(args, short_arg="pDdFiBoruVYzgx", long_arg=(
        "--strip", "--directory", "--input", "--output", "--reject-file", "--prefix", "--suffix", "--fuzz"))
    if _has(opts, "--dry-run", "-C", "--check"):
        return
    outs = _vals(opts, "-o", "--output")
    for v in outs + _vals(opts, "-r", "--reject-file"):
        wk.emit(v, FILE, st)
    ops = ops + after
    if ops:
        if not outs:
            wk.emit(ops[0], FILE, st)
    elif not outs:
        # the files are named inside the patch: anything under the directory
        wk.emit((_vals(opts, "-d", "--directory") or [W(".")])[0], DIR, st)


def _find(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
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
                probe = Targets()
                sub = _Walker(probe)
                each = W(r.text.rstrip("/") + "/*", r.dyn)
                sub.simple([each if "{}" in c.text else c for c in cmd], st.copy(), depth + 1, [], "")
                if probe:
                    writes = True
                wk.out.note = wk.out.note or probe.note
            j = k
        j += 1
    if writes:
        for r in roots:
            wk.emit(r, DIR, st)


def _formatter(flags: tuple = ()):  # type: ignore[no-untyped-def]
    """Tools that rewrite files in place: always, or only with one of ``flags``; the operands (default: .)."""
    def handler(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
        opts, ops, after = parse_opts(args)
        if flags and not _has(opts, *flags):
            return
        if not flags and _has(opts, "--check", "--diff", "-h", "--help", "--version"):
            return
        for w in (ops + after) or [W(".")]:
            wk.emit(w, DIR, st)
    return handler


def _ruff(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    opts, ops, after = parse_opts(args, long_arg=("--config", "--select", "--ignore", "--line-length"))
    if not ops or ops[0].dyn:
        return
    sub = ops[0].text
    if sub == "format" and not _has(opts, "--check", "--diff") or sub == "check" and _has(opts, "--fix"):
        for w in (ops[1:] + after) or [W(".")]:
            wk.emit(w, DIR, st)


def _rsync(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
    _, ops, after = parse_opts(args, short_arg="efT", long_arg=("--rsh", "--filter", "--exclude", "--include",
                                                                 "--temp-dir", "--backup-dir", "--partial-dir",
                                                                 "--exclude-from", "--include-from",
                                                                 "--files-from", "--chmod", "--chown"))
    ops = ops + after
    if len(ops) >= 2 and not (":" in ops[-1].text.split("/")[0]):  # a local destination
        wk.emit(ops[-1], DIR, st)


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


def _manifest(wk: _Walker, args: list[W], st: _State, depth: int, name: str = "") -> None:
    subs, files, bare = _MANIFESTS[name]
    ops = [a for a in args if not a.text.startswith("-")]
    if ops and ops[0].dyn:
        return
    if (ops and ops[0].text in subs and not (name == "go" and ops[0].text == "mod" and ops[1:2]
                                             and ops[1].text not in ("tidy", "edit", "init", "vendor"))) \
            or (bare and not ops):
        for f in files:
            wk.emit_path(f, DIR if f.endswith("/") else FILE, st)


def _git(wk: _Walker, args: list[W], st: _State, depth: int) -> None:
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


def _git_checkout(wk: _Walker, args: list[W], st: _State) -> None:
    opts, ops, after = parse_opts(args, short_arg="bBU", long_arg=("--orphan", "--conflict",
                                                                   "--pathspec-from-file"))
    if _has(opts, "--pathspec-from-file"):
        wk.emit_path(".", DIR, st)
        return
    if after:
        paths = after
    elif _has(opts, "-b", "-B", "--orphan"):
        return
    else:
        paths = ops
    for w in paths:
        wk.emit(w, DIR, st)


def _git_restore(wk: _Walker, args: list[W], st: _State) -> None:
    opts, ops, after = parse_opts(args, short_arg="sU", long_arg=("--source", "--conflict",
                                                                  "--pathspec-from-file"))
    if _has(opts, "-S", "--staged") and not _has(opts, "-W", "--worktree"):
        return
    if _has(opts, "--pathspec-from-file"):
        wk.emit_path(".", DIR, st)
    for w in ops + after:
        wk.emit(w, DIR, st)


def _git_tree(wk: _Walker, args: list[W], st: _State) -> None:
    """Commands that rewrite the working tree as a whole."""
    opts, _, _ = parse_opts(args)
    if _has(opts, "--help", "-h"):
        return
    wk.emit_path(".", DIR, st)


def _git_reset(wk: _Walker, args: list[W], st: _State) -> None:
    opts, _, _ = parse_opts(args)
    if _has(opts, "--hard", "--merge", "--keep"):
        wk.emit_path(".", DIR, st)


def _git_stash(wk: _Walker, args: list[W], st: _State) -> None:
    sub = args[0].text if args and not args[0].startswith("-") else "push"
    rest = args[1:] if args and not args[0].startswith("-") else args
    if sub in ("push", "save"):
        _, ops, after = parse_opts(rest, short_arg="m", long_arg=("--message", "--pathspec-from-file"))
        paths = after or (ops if sub == "push" else [])
        if paths:
            for w in paths:
                wk.emit(w, DIR, st)
        else:
            wk.emit_path(".", DIR, st)
    elif sub in ("pop", "apply", "branch"):
        wk.emit_path(".", DIR, st)


def _git_clean(wk: _Walker, args: list[W], st: _State) -> None:
    opts, ops, after = parse_opts(args, short_arg="e", long_arg=("--exclude",))
    if _has(opts, "-n", "--dry-run"):
        return
    for w in (ops + after) or [W(".")]:
        wk.emit(w, DIR, st)


def _git_switch(wk: _Walker, args: list[W], st: _State) -> None:
    opts, ops, _ = parse_opts(args, short_arg="cC", long_arg=("--create", "--force-create", "--orphan",
                                                                  "--conflict"))
    if _has(opts, "-c", "-C", "--create", "--force-create") and not ops:
        return
    if _has(opts, "--help", "-h"):
        return
    wk.emit_path(".", DIR, st)


def _git_rm(wk: _Walker, args: list[W], st: _State) -> None:
    opts, ops, after = parse_opts(args, long_arg=("--pathspec-from-file",))
    if _has(opts, "--cached", "-n", "--dry-run"):
        return
    for w in ops + after:
        wk.emit(w, DIR, st)


def _git_mv(wk: _Walker, args: list[W], st: _State) -> None:
    _copy_like(True, "", ())(wk, [a for a in args if a.text not in ("-k",)], st, 0)


def _git_apply(wk: _Walker, args: list[W], st: _State) -> None:
    opts, _, _ = parse_opts(args, short_arg="pC", long_arg=("--directory", "--exclude", "--include"))
    if _has(opts, "--cached", "--check", "--stat", "--numstat", "--summary") and not _has(opts, "--apply",
                                                                                          "--index"):
        return
    wk.emit_path(".", DIR, st)


_GIT = {
    "checkout": _git_checkout, "restore": _git_restore, "reset": _git_reset, "stash": _git_stash,
    "clean": _git_clean, "switch": _git_switch, "rm": _git_rm, "mv": _git_mv, "apply": _git_apply,
    "merge": _git_tree, "rebase": _git_tree, "pull": _git_tree, "cherry-pick": _git_tree, "revert": _git_tree,
    "am": _git_tree,
}

_WRITERS = {
    "tee": _tee, "sed": _sed, "gsed": _sed, "perl": _perl,
    "mv": _copy_like(True), "cp": _copy_like(False), "ln": _copy_like(False, link=True), "install": _install,
    "rm": _all(FILE, recursive="-r -R --recursive"), "rmdir": _all(DIR), "unlink": _all(FILE),
    "shred": _all(FILE, short_arg="nsx", long_arg=("--iterations", "--size")),
    "touch": _all(FILE, short_arg="dtr", long_arg=("--date", "--reference", "--time")),
    "truncate": _all(FILE, short_arg="sr", long_arg=("--size", "--reference")),
    "mkdir": _all(FILE, short_arg="m", long_arg=("--mode", "--context")),
    "chmod": _mode_change, "chown": _mode_change, "chgrp": _mode_change,
    "dd": _dd, "sort": _sort, "uniq": _uniq, "curl": _curl, "wget": _wget, "tar": _tar, "unzip": _unzip,
    "patch": _patch, "find": _find, "git": _git,
    "black": _formatter(), "isort": _formatter(), "rustfmt": _formatter(), "autopep8": _formatter(("-i", "--in-place")),
    "yapf": _formatter(("-i", "--in-place")), "gofmt": _formatter(("-w",)), "goimports": _formatter(("-w",)),
    "clang-format": _formatter(("-i",)), "prettier": _formatter(("-w", "--write")),
    "eslint": _formatter(("--fix",)),
    "ruff": _ruff, "rsync": _rsync, "sponge": _all(FILE), "ed": _all(FILE, short_arg="p"), "ex": _all(FILE),
    **{n: (lambda wk, a, st, d, _n=n: _manifest(wk, a, st, d, _n)) for n in _MANIFESTS},
}
