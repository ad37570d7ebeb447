"""Parsing a command with bashlex, and the retry for the constructs bashlex lacks.

:func:`parse` returns bashlex's syntax trees, or raises :class:`Unparsable`
with the reason the conservative reading (:mod:`.fallback`) puts in its note.
``bashlex`` is imported on first use only (never on the per-call path of a
tool that is not ``bash``), and patched once so that a quoted heredoc
delimiter (``<<'EOF'``) ends its heredoc.
"""

from __future__ import annotations

from .words import unquote

_bashlex = None


class Unparsable(Exception):
    """bashlex cannot parse the command (or is not installed); ``str()`` is the reason."""


def parse(text: str) -> tuple[list, str]:
    """bashlex's trees for ``text``, and the text they index into (``text`` itself, or
    :func:`simplify`'s version when only that one parses)."""
    bashlex = _load()  # type: ignore[no-untyped-call]
    if bashlex is None:
        raise Unparsable("the shell parser bashlex is not installed")
    try:
        return bashlex.parse(text), text
    except Exception as e:  # noqa: BLE001 - bashlex raises ParsingError, NotImplementedError, others
        simpler = simplify(text)
        if simpler != text:
            try:
                return bashlex.parse(simpler), simpler
            except Exception:  # noqa: BLE001, S110 - the first attempt's reason is the one to report
                pass
        raise Unparsable(_reason(e)) from None


def _load():  # type: ignore[no-untyped-def]  # -> the bashlex module, patched, or None
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
                redirnode.output.word = unquote(redirnode.output.word)
                return original(tokenizer, redirnode, lineno, killleading)

            makeheredoc._pi_mesh = True  # type: ignore[attr-defined]
            hd.makeheredoc = makeheredoc
        _bashlex = bashlex
    return _bashlex or None


def _reason(e: Exception) -> str:
    msg = str(e).split("\n")[0]
    if isinstance(e, NotImplementedError):
        return f"unsupported syntax: {msg[:80]}"
    return f"{msg[:100]}"


_STARTERS = ("then", "do", "else", "elif", "if", "while", "until", "!", "time")


def simplify(text: str) -> str:
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
            j = _arithmetic_end(text, i + 3)
            if j is None:
                return text
            i = _blank(out, i, j, "0")
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
            delim = unquote(text[k:m])
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
                j = _arithmetic_end(text, i + 2)
                if j is None:
                    return text
                i = _blank(out, i, j, "true")
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
            i = _blank(out, i, j, "")
            continue  # still at the start of the timed command
        if at_start and word == "[[":
            j = _test_end(text, i)
            if j is None:
                return text
            i = _blank(out, i, j, "true")
            at_start = False
            continue
        at_start = word in _STARTERS
        i = j if j > i else i + 1
    return "".join(out)


def _blank(out: list[str], i: int, j: int, word: str) -> int:
    """Replace ``out[i:j]`` by ``word`` padded with blanks (offsets stay valid); returns ``j``."""
    out[i:j] = list(word.ljust(j - i))
    return j


def _arithmetic_end(text: str, start: int) -> int | None:
    """The index past the ``))`` of a ``((``/``$((`` whose body starts at ``start``, if it substitutes nothing."""
    j = _closing(text, start, 2)
    return None if j is None or _substitutes(text[start:j]) else j


def _test_end(text: str, i: int) -> int | None:
    """The index past the ``]]`` of the ``[[`` at ``i``, if it substitutes nothing."""
    n = len(text)
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
        return None
    return k + 2


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
