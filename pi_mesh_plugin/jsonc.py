"""JSON through the interpreter's C accelerator alone: the same text in and out as :mod:`json`, without
importing it.

``import json`` costs a per-call hook about 5 ms on these machines, most of it ``re`` and ``enum`` (its
decoder compiles three regular expressions at import).  Everything the guard path parses and writes goes
through the C scanner and encoder that :mod:`json` itself uses (``_json``), configured exactly as
``json.loads`` and ``json.dumps`` configure them, so the output is byte for byte the same (a hypothesis test
compares the two).  What the accelerator does not do - ``indent``, a non-UTF-8 byte string, reporting a
syntax error - goes to :mod:`json`, imported then.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # the per-call hook path: ``typing`` is imported for the type checker only
if TYPE_CHECKING:
    from typing import Any

encode_basestring = _json.encode_basestring              # json.encoder.encode_basestring (ensure_ascii=False)
encode_basestring_ascii = _json.encode_basestring_ascii  # json.encoder.encode_basestring_ascii
_WS = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """What ``_json.make_scanner`` reads from a decoder: ``json.JSONDecoder()``'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # typeshed wants a make_scanner; any decoder-like object does


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads(data)``: the same value, the same exceptions (``json.JSONDecodeError``, ``RecursionError``)."""
    if not isinstance(data, str):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            import json  # UTF-16/32 detection, and json's own errors

            return json.loads(data)
        if text.startswith("\ufeff"):
            text = text[1:]  # json.loads decodes UTF-8 bytes with a BOM as utf-8-sig
    else:
        text = data
        if text.startswith("\ufeff"):
            import json

            return json.loads(text)  # "Unexpected UTF-8 BOM"
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = _scan(text, start)
    except (StopIteration, SystemError):
        # StopIteration: no value at all.  SystemError: the scanner words its errors with
        # json.decoder.JSONDecodeError, which it looks up in sys.modules only - before json is imported it
        # fails without an exception set.  Either way json itself parses the text again and raises its error.
        end = -1
    if end < 0 or text[end:].strip(_WS):
        import json

        return json.loads(text)  # raises json's error, with its message, line and column
    return value


def _default(o: object) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj: Any, *, ensure_ascii: bool = True, separators: tuple[str, str] | None = None,
          sort_keys: bool = False, indent: int | str | None = None, default: Any = None) -> str:
    """``json.dumps(obj, ...)`` for these options (``indent`` goes to :mod:`json` itself)."""
    if indent is not None:
        import json

        return json.dumps(obj, ensure_ascii=ensure_ascii, separators=separators, sort_keys=sort_keys,
                          indent=indent, default=default)
    if type(obj) is str:
        return (encode_basestring_ascii if ensure_ascii else encode_basestring)(obj)
    item_sep, key_sep = separators or (", ", ": ")
    # a new encoder each call, as json.dumps makes one: its markers dict (circular references) starts empty
    enc = _json.make_encoder({}, default or _default, encode_basestring_ascii if ensure_ascii else encode_basestring,
                             None, key_sep, item_sep, sort_keys, False, True)
    return "".join(enc(obj, 0))
