"""JSON parsing bounded in nesting depth: the one parser for every record, cache, line and request read.

``json.loads`` recurses once per level of nesting: a 2 kB file of 1,000 ``[`` raises
``RecursionError`` (not a ``ValueError``), which no reader expected, and a value a few hundred
levels deep that *does* parse still crashes code that walks it (jsonschema recurses several frames
per level).  :func:`loads` turns both into a ``ValueError`` with a short reason, so a reader's
ordinary "bad record" path (quarantine, skip, a one-line error) meets them.

Cost: no mesh record is nested more than a few levels, so the depth is only measured when the
text holds more than ``MAX_DEPTH`` opening brackets (two ``count`` calls at C speed; brackets
inside strings count too, which only ever sends a record to the exact measure).  The measure
walks the parsed value without recursion.

No import but :mod:`.jsonc` (json's own C parser without importing :mod:`json`): the per-call hook
path uses it.
"""

from __future__ import annotations

from .jsonc import loads as _json_loads

MAX_DEPTH = 32  # our deepest record (an agent's activity) is 3 levels; a request's arguments a few more


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> object:
    """``json.loads(data)``, or ``ValueError`` when it is not JSON, not UTF-8, or nested over ``max_depth``."""
    try:
        opening = (data.count(b"[") + data.count(b"{")) if type(data) is bytes \
            else (data.count("[") + data.count("{"))  # type: ignore[arg-type]
        if opening <= max_depth:
            return _json_loads(data)
        value = _json_loads(data)
    except RecursionError:
        raise ValueError(f"is nested more than {max_depth} levels deep") from None
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8") from None
    if depth(value, max_depth) > max_depth:
        raise ValueError(f"is nested more than {max_depth} levels deep")
    return value


def depth(value: object, limit: int = MAX_DEPTH) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar is 0, ``[]`` is 1); stops counting past ``limit``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        t = type(v)
        if t is dict:
            children = v.values()  # type: ignore[attr-defined]
        elif t is list:
            children = v
        else:
            continue
        if d > deepest:
            deepest = d
            if d > limit:
                return d
        stack.extend((c, d + 1) for c in children if type(c) is dict or type(c) is list)
    return deepest


def describe(e: ValueError) -> str:
    """A one-line reason for a failed :func:`loads` (``json``'s message with line and column)."""
    if type(e).__name__ == "JSONDecodeError":  # json.JSONDecodeError, without importing json to ask
        return f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"  # type: ignore[attr-defined]
    return str(e)
