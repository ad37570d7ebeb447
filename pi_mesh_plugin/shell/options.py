"""GNU-style option parsing of a command's words, for the writer and prefix rules."""

from __future__ import annotations

from .words import W


def parse_opts(args: list[W], short_arg: str = "", long_arg: tuple[str, ...] = (), short_opt: str = "",
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


def has(opts: list[tuple[str, object]], *names: str) -> bool:
    """Is one of the options ``names`` given?"""
    return any(o[0] in names for o in opts)


def vals(opts: list[tuple[str, object]], *names: str) -> list[W]:
    """The arguments given to the options ``names``, in order."""
    return [v for o, v in opts if o in names and isinstance(v, W)]
