"""The JSON Schemas in ``schemas/`` and validation against them.

The schema files are the contract for every record on disk (``agent``,
``message``, ``reservation``) and for ``hooks.toml`` (``hooks``).  They ship
inside the wheel (``pi_mesh_plugin/schemas/``); in a source checkout they are
read from the repository's top-level ``schemas/`` - the same files either way.

jsonschema costs tens of milliseconds to import and about 100 µs to check
one record, which the hot read paths (a ``read_inbox`` of 10,000 messages,
``pi-mesh agents``, a hook process rescanning claims) cannot afford.  So each
schema is also compiled once per process into a plain-Python predicate
(:func:`fast_check`) covering the keywords our schemas use.  The predicate is
strictly *conservative*: when it says "valid", jsonschema would say so too
(exact JSON types, the same ``re.search`` for ``pattern``, ...); when it says
"not valid" - or when a schema uses a keyword it does not know, in which
case there is no predicate - jsonschema decides and words the error.  So
results and error messages are exactly jsonschema's; only the common case of
a valid record skips it (and its import).
"""

from __future__ import annotations

import os

from .errors import CorruptRecord

# ``typing`` stays off the hot paths: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

KINDS = ("agent", "message", "reservation", "ticket", "hooks")
_validators: dict[str, Any] = {}
_schemas: dict[str, dict] = {}
_fast: dict[str, Callable[[object], bool] | None] = {}


def schema_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(here, "schemas")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(here), "schemas")


def load_schema(kind: str) -> dict:
    if kind not in _schemas:
        with open(os.path.join(schema_dir(), f"{kind}.schema.json"), encoding="utf-8") as f:
            from .jsonc import loads

            _schemas[kind] = loads(f.read())
    return _schemas[kind]


def validator(kind: str) -> Any:  # jsonschema.protocols.Validator
    v = _validators.get(kind)
    if v is None:
        from jsonschema import Draft202012Validator

        # No format_checker: "format" is an annotation here, never asserted
        # (the fast predicates below rely on that; a test pins it).
        v = _validators[kind] = Draft202012Validator(load_schema(kind))
    return v


def fast_check(kind: str) -> Callable[[object], bool] | None:
    """The compiled conservative predicate for ``kind`` (``None`` if the schema is beyond the compiler)."""
    try:
        return _fast[kind]
    except KeyError:
        f = _fast[kind] = compile_schema(load_schema(kind))
        return f


# -- the conservative compiler --------------------------------------------------
# The schema becomes the source of one Python function (compiled once per
# process) that returns True only when jsonschema would accept the instance.
# Types are matched exactly (``type(v) is str``) where jsonschema uses
# isinstance: a subclass is merely sent on to jsonschema.  Keywords that apply
# to one type are applied with isinstance (at least as often as jsonschema).

_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "format", "default", "examples",
                          "deprecated", "readOnly", "writeOnly"})
_TYPE_TESTS = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "(type({v}) is int or type({v}) is float)",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
}
_NUMBER = (int, float)


def _same(a: object, b: object) -> bool:
    """Equal and of the same JSON type (stricter than jsonschema's ``equal``)."""
    return type(a) is type(b) and a == b and (type(a) in (str, int, float, bool) or a is None)


def _known_pattern(pattern: str) -> Callable[[str], object] | None:
    """A predicate for the name patterns of our schemas that accepts only what ``re.search(pattern, s)``
    accepts (it refuses ``"alice\\n"``, which ``$`` lets through: jsonschema then decides), without ``re``
    (agent and claim records are checked on the per-call hook path)."""
    from .names import NAME_PATTERN, is_valid_name

    if pattern == NAME_PATTERN:
        return is_valid_name
    if pattern == f"^({NAME_PATTERN[1:-1]}|[*])$":
        return lambda v: v == "*" or is_valid_name(v)
    if pattern == "^[0-9]+$":  # a pid namespace's inode
        return lambda v: v.isascii() and v.isdigit()
    return None


def _compile(pattern: str) -> Callable[[str], object]:
    import re

    return re.compile(pattern).search


class _Unsupported(Exception):
    pass


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict = {"_same": _same, "_NUMBER": _NUMBER}
        self.n = 0

    def const(self, value: object) -> str:
        self.n += 1
        name = f"_c{self.n}"
        self.env[name] = value
        return name

    def var(self) -> str:
        self.n += 1
        return f"v{self.n}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def schema(self, schema: object, v: str, depth: int) -> None:
        if schema is True or schema == {}:
            return
        if not isinstance(schema, dict):
            raise _Unsupported(repr(schema))
        props = schema.get("properties", {})
        for key, arg in schema.items():
            if key in _ANNOTATIONS:
                continue
            if key == "type":
                names = [arg] if isinstance(arg, str) else arg
                if not isinstance(names, list) or not names or any(n not in _TYPE_TESTS for n in names):
                    raise _Unsupported(f"type {arg!r}")
                self.emit(depth, f"if not ({' or '.join(_TYPE_TESTS[n].format(v=v) for n in names)}): return False")
            elif key == "const":
                if not _same(arg, arg):
                    raise _Unsupported("const")
                self.emit(depth, f"if not _same({v}, {self.const(arg)}): return False")
            elif key == "enum":
                if not isinstance(arg, list) or not all(_same(e, e) for e in arg):
                    raise _Unsupported("enum")
                if all(type(e) is str for e in arg):
                    self.emit(depth, f"if not (type({v}) is str and {v} in {self.const(frozenset(arg))}): return False")
                else:
                    self.emit(depth, f"if not any(_same({v}, e) for e in {self.const(tuple(arg))}): return False")
            elif key == "pattern":
                search = self.const(_known_pattern(arg) or _compile(arg))
                self.emit(depth, f"if isinstance({v}, str) and not {search}({v}): return False")  # a match or True
            elif key in ("maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum"):
                if type(arg) not in (int, float):
                    raise _Unsupported(key)
                kind = "str" if key.endswith("Length") else ("list" if key.endswith("Items") else "_NUMBER")
                size = f"len({v})" if kind != "_NUMBER" else v
                op = "<" if key.startswith("min") else ">"
                self.emit(depth, f"if isinstance({v}, {kind}) and {size} {op} {self.const(arg)}: return False")
            elif key == "items":
                if "prefixItems" in schema:
                    raise _Unsupported("prefixItems")
                x = self.var()
                self.emit(depth, f"if isinstance({v}, list):")
                self.emit(depth + 1, f"for {x} in {v}:")
                mark = len(self.lines)
                self.schema(arg, x, depth + 2)
                if len(self.lines) == mark:
                    self.lines[mark - 2:] = []
            elif key == "required":
                if not isinstance(arg, list) or not all(isinstance(n, str) for n in arg):
                    raise _Unsupported("required")
                if arg:
                    tests = " and ".join(f"{self.const(n)} in {v}" for n in arg)
                    self.emit(depth, f"if isinstance({v}, dict) and not ({tests}): return False")
            elif key == "properties":
                self.emit(depth, f"if isinstance({v}, dict):")
                mark0 = len(self.lines)
                for name, sub in arg.items():
                    x = self.var()
                    k = self.const(name)
                    self.emit(depth + 1, f"if {k} in {v}:")
                    self.emit(depth + 2, f"{x} = {v}[{k}]")
                    mark = len(self.lines)
                    self.schema(sub, x, depth + 2)
                    if len(self.lines) == mark:
                        self.lines[mark - 2:] = []
                if len(self.lines) == mark0:
                    self.lines.pop()
            elif key == "additionalProperties":
                if "patternProperties" in schema:
                    raise _Unsupported("patternProperties")
                known = self.const(frozenset(props))
                if arg is False:
                    self.emit(depth, f"if isinstance({v}, dict) and not {known}.issuperset({v}): return False")
                else:
                    k, x = self.var(), self.var()
                    self.emit(depth, f"if isinstance({v}, dict):")
                    self.emit(depth + 1, f"for {k}, {x} in {v}.items():")
                    self.emit(depth + 2, f"if {k} not in {known}:")
                    mark = len(self.lines)
                    self.schema(arg, x, depth + 3)
                    if len(self.lines) == mark:
                        self.lines[mark - 3:] = []
            else:
                raise _Unsupported(key)  # a keyword this compiler does not know: jsonschema always decides


def compile_schema(schema: object) -> Callable[[object], bool] | None:
    """A predicate implying validity under ``schema``, or ``None`` if a keyword is not understood."""
    gen = _Gen()
    try:
        gen.schema(schema, "v0", 1)
    except _Unsupported:
        return None
    source = "def check(v0):\n" + "\n".join(gen.lines + ["    return True"]) + "\n"
    exec(compile(source, "<schema predicate>", "exec"), gen.env)  # noqa: S102 - our own generated source
    check = gen.env["check"]
    check.source = source
    predicate: Callable[[object], bool] = check
    return predicate


def errors(kind: str, record: object) -> list[str]:
    """Every way ``record`` fails its schema, each as one line (empty when valid)."""
    v = validator(kind)
    out = []
    for err in sorted(v.iter_errors(record), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        msg = err.message if len(err.message) <= 200 else err.message[:197] + "..."
        out.append(f"{where}: {msg}")
    return out


def validate(kind: str, record: object, where: str = "") -> dict:
    """Return ``record`` if it is valid, else raise :class:`CorruptRecord` naming ``where`` and the first error."""
    fast = fast_check(kind)
    if fast is not None and fast(record):
        return record  # type: ignore[return-value]
    v = validator(kind)
    if v.is_valid(record):
        return record  # type: ignore[return-value]
    errs = errors(kind, record)
    raise CorruptRecord(where or kind, f"does not match the {kind} schema: {errs[0]}")
