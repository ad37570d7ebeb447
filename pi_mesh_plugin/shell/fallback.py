"""The conservative reading of a command bashlex cannot parse.

Every word the text contains counts as a directory it may write (see the
package docstring for why), and the text is cut into rough commands at its
unquoted operators for activity tracking.
"""

from __future__ import annotations

import posixpath

from .words import W


def note(reason: str) -> str:
    """The note the guard appends to a block caused by an unparsable command."""
    return (f"(pi-mesh could not parse this shell command - {reason} - so every path it mentions counts as "
            f"written. Use simpler shell syntax, or the edit/write tools.)")


def rough_paths(text: str) -> list[W]:
    """The words of unparsable ``text`` that could be paths (a word with ``$`` or a backquote as its literal prefix)."""
    out = []
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
        out.append(W(word, dyn))
    return out


def _pieces(text: str) -> list[str]:
    """The text cut at every blank, quote, operator, ``$``, backquote and ``=`` (quoted commands included)."""
    for c in "'\"$`;&|()<>=\\{}":
        text = text.replace(c, " ")
    return text.split()


def rough_commands(text: str) -> list[list[str]]:
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
