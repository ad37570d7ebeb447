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

import json
import os
import re

from .errors import CorruptRecord

KINDS = ("agent", "message", "reservation", "hooks")
_validators: dict = {}
_schemas: dict = {}
_fast: dict = {}


def schema_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(here, "schemas")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(here), "schemas")


def load_schema(kind: str) -> dict:
    if kind not in _schemas:
        with open(os.path.join(schema_dir(), f"{kind}.schema.json"), encoding="utf-8") as f:
            _schemas[kind] = json.load(f)
    return _schemas[kind]


def validator(kind: str):  # -> jsonschema.protocols.Validator
    v = _validators.get(kind)
    if v is None:
        from jsonschema import Draft202012Validator

        # No format_checker: "format" is an annotation here, never asserted
        # (the fast predicates below rely on that; a test pins it).
        v = _validators[kind] = Draft202012Validator(load_schema(kind))
    return v


def fast_check(kind: str):  # -> Callable[[object], bool] | None
    """The compiled conservative predicate for ``kind`` (``None`` if the schema is beyond the compiler)."""
    try:
        return _fast[kind]
    except KeyError:
        f = _fast[kind] = compile_schema(load_schema(kind))
        return f


# -- the conservative compiler --------------------------------------------------
# Each checker returns True only when jsonschema would accept the instance.
# Types are matched exactly (``type(v) is str``) where jsonschema uses
# isinstance: a subclass is merely sent on to jsonschema.  Keywords that apply
# to one type are applied with isinstance (at least as often as jsonschema).

_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "format", "default", "examples",
                          "deprecated", "readOnly", "writeOnly"})
_EXACT_TYPES = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _same(a: object, b: object) -> bool:
    """Equal and of the same JSON type (stricter than jsonschema's ``equal``)."""
    return type(a) is type(b) and a == b and (type(a) in (str, int, float, bool) or a is None)


def compile_schema(schema: object):  # -> Callable[[object], bool] | None
    """A predicate implying validity under ``schema``, or ``None`` if a keyword is not understood."""
    if schema is True or schema == {}:
        return lambda v: True
    if not isinstance(schema, dict):
        return None
    checks: list = []
    props = schema.get("properties", {})
    for key, arg in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "type":
            names = [arg] if isinstance(arg, str) else arg
            if not isinstance(names, list) or not names or any(n not in _EXACT_TYPES for n in names):
                return None
            fns = tuple(_EXACT_TYPES[n] for n in names)
            checks.append(fns[0] if len(fns) == 1 else (lambda v, fns=fns: any(f(v) for f in fns)))
        elif key == "const":
            if not _same(arg, arg):
                return None
            checks.append(lambda v, c=arg: _same(v, c))
        elif key == "enum":
            if not isinstance(arg, list) or not all(_same(e, e) for e in arg):
                return None
            checks.append(lambda v, es=tuple(arg): any(_same(v, e) for e in es))
        elif key == "pattern":
            rx = re.compile(arg)
            checks.append(lambda v, s=rx.search: not isinstance(v, str) or s(v) is not None)
        elif key == "maxLength":
            checks.append(lambda v, n=arg: not isinstance(v, str) or len(v) <= n)
        elif key == "minLength":
            checks.append(lambda v, n=arg: not isinstance(v, str) or len(v) >= n)
        elif key == "minimum":
            checks.append(lambda v, n=arg: not isinstance(v, (int, float)) or v >= n)
        elif key == "maximum":
            checks.append(lambda v, n=arg: not isinstance(v, (int, float)) or v <= n)
        elif key == "maxItems":
            checks.append(lambda v, n=arg: not isinstance(v, list) or len(v) <= n)
        elif key == "minItems":
            checks.append(lambda v, n=arg: not isinstance(v, list) or len(v) >= n)
        elif key == "items":
            item = compile_schema(arg)
            if item is None or "prefixItems" in schema:
                return None
            checks.append(lambda v, f=item: not isinstance(v, list) or all(f(x) for x in v))
        elif key == "required":
            checks.append(lambda v, names=tuple(arg): not isinstance(v, dict) or all(n in v for n in names))
        elif key == "properties":
            compiled = {}
            for name, sub in arg.items():
                f = compile_schema(sub)
                if f is None:
                    return None
                compiled[name] = f

            items = tuple(compiled.items())

            def check_props(v, items=items) -> bool:
                if not isinstance(v, dict):
                    return True
                for name, f in items:
                    if name in v and not f(v[name]):
                        return False
                return True

            checks.append(check_props)
        elif key == "additionalProperties":
            if "patternProperties" in schema:
                return None
            known = frozenset(props)
            if arg is False:
                checks.append(lambda v, known=known: not isinstance(v, dict) or known.issuperset(v))
            else:
                extra = compile_schema(arg)
                if extra is None:
                    return None
                checks.append(lambda v, known=known, f=extra: not isinstance(v, dict)
                              or all(f(x) for k, x in v.items() if k not in known))
        else:
            return None  # a keyword this compiler does not know: jsonschema always decides
    checks_t = tuple(checks)
    if len(checks_t) == 1:
        return checks_t[0]

    def check_all(v: object) -> bool:
        for c in checks_t:
            if not c(v):
                return False
        return True

    return check_all


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
