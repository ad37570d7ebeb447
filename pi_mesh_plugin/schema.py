"""The JSON Schemas in ``schemas/`` and validation against them.

The schema files are the contract for every record on disk (``agent``,
``message``, ``reservation``) and for ``hooks.toml`` (``hooks``).  They ship
inside the wheel (``pi_mesh_plugin/schemas/``); in a source checkout they are
read from the repository's top-level ``schemas/`` - the same files either way.

jsonschema costs tens of milliseconds to import, so it is imported on first
use, and each validator is compiled once per process.
"""

from __future__ import annotations

import json
import os

from .errors import CorruptRecord

KINDS = ("agent", "message", "reservation", "hooks")
_validators: dict = {}
_schemas: dict = {}


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

        v = _validators[kind] = Draft202012Validator(load_schema(kind))
    return v


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
    v = validator(kind)
    if v.is_valid(record):
        return record  # type: ignore[return-value]
    errs = errors(kind, record)
    raise CorruptRecord(where or kind, f"does not match the {kind} schema: {errs[0]}")
