"""The compiled schema predicates (schema.fast_check) never accept what jsonschema rejects.

The hot read paths validate records with a plain-Python predicate compiled from
schemas/*.json and fall back to jsonschema only when it says no; this pins that
the predicate is conservative and that the fallback words the error as before.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pi_mesh_plugin import schema as S
from pi_mesh_plugin.errors import CorruptRecord

VALID = {
    "agent": {"schema": 1, "name": "alice", "session": "0001764000000000000-abcdef0123", "pid": 123,
              "pid_start": "4567", "host": "box", "boot_id": None, "cwd": "/w", "harness": "pi", "model": None,
              "started": "2026-11-25T01:02:03.456789Z", "last_seen": "2026-11-25T01:02:03.456789Z",
              "status": "busy", "activity": {"last": "edit a.py", "last_at": None, "files_touched": ["a.py"],
                                             "edits": 3, "commits": 0, "test_runs": 1}},
    "message": {"schema": 1, "id": "0001764000000000000-abcdef0123", "from": "alice", "to": "bob", "text": "hi",
                "urgent": False, "reply_to": None, "thread": None, "created": "2026-11-25T01:02:03.456789Z",
                "broadcast": True, "meta": {"k": [1, 2]}},
    "reservation": {"schema": 1, "id": "0001764000000000000-abcdef0123", "holder": "alice", "session": None,
                    "path": "src/auth", "kind": "dir", "reason": "refactor", "created": "2026-11-25T01:02:03Z",
                    "expires": "2026-11-25T02:02:03Z"},
}

TRICKY_STRINGS = ["", "a", "a\n", "\na", "-a", "_a", "a b", "ü", "a" * 64, "a" * 65, "x" * 1001, "." , "/",
                  "dir", "file", "DIR", "1", "0001764000000000000-abcdef0123\n"]
json_scalars = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=32)
                | st.sampled_from(TRICKY_STRINGS) | st.text(max_size=5))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.sampled_from(["last", "edits", "x", "k"]) | st.text(max_size=3), c,
                                             max_size=3), max_leaves=6)


@pytest.mark.parametrize("kind", ["agent", "message", "reservation"])
def test_the_record_schemas_compile(kind: str) -> None:
    f = S.fast_check(kind)
    assert f is not None, f"{kind}.schema.json uses a keyword the fast compiler does not know: every read pays jsonschema"
    assert f(VALID[kind]) and S.validator(kind).is_valid(VALID[kind])


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["agent", "message", "reservation"]), data=st.data())
def test_fast_accept_implies_jsonschema_accepts(kind: str, data: st.DataObject) -> None:
    rec = dict(VALID[kind])
    keys = sorted(rec)
    for k in data.draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        rec[k] = data.draw(json_values)
    for k in data.draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)):
        rec.pop(k, None)
    if data.draw(st.booleans()):
        rec[data.draw(st.sampled_from(["extra", "name", "kind", "text"]))] = data.draw(json_values)
    fast = S.fast_check(kind)(rec)
    full = S.validator(kind).is_valid(rec)
    assert not fast or full, f"the fast check accepted a record jsonschema rejects: {rec!r}"
    if full:
        assert S.validate(kind, rec) is rec
    else:
        with pytest.raises(CorruptRecord):
            S.validate(kind, rec)


@given(value=json_values)
def test_fast_accept_implies_jsonschema_accepts_whole_values(value: object) -> None:
    for kind in ("agent", "message", "reservation"):
        assert not S.fast_check(kind)(value) or S.validator(kind).is_valid(value)


def test_format_is_an_annotation_not_an_assertion() -> None:
    # The fast predicates skip "format"; that is only right while jsonschema does too.
    rec = dict(VALID["message"], created="not a timestamp")
    assert S.validator("message").is_valid(rec)
    assert S.validate("message", rec) is rec


def test_an_invalid_record_is_reported_with_jsonschemas_words() -> None:
    rec = dict(VALID["reservation"], kind="folder")
    with pytest.raises(CorruptRecord) as e:
        S.validate("reservation", rec, "reservations/x.json")
    assert "reservations/x.json" in str(e.value) and "kind: 'folder' is not one of ['dir', 'file']" in str(e.value)


def test_the_compiler_gives_up_on_keywords_it_does_not_know() -> None:
    assert S.compile_schema({"type": "object", "oneOf": [{"type": "object"}]}) is None
    assert S.compile_schema({"type": "object", "patternProperties": {"^a": {}}, "additionalProperties": False}) is None
    assert S.compile_schema({"type": "string", "pattern": "^a$"})("a\n") is True  # re.search, as jsonschema


@given(st.text(max_size=70) | st.sampled_from(["alice", "alice\n", "*", "*\n", "a" * 64, "a" * 65, "-a", "a-",
                                                "4026531836", "4026531836\n", "", "\u0663", "\u00b2", "12a"]))
def test_the_name_patterns_are_checked_without_re_and_never_more_loosely(s: str) -> None:
    import re

    from pi_mesh_plugin.names import NAME_PATTERN

    for pattern in (NAME_PATTERN, f"^({NAME_PATTERN[1:-1]}|[*])$", "^[0-9]+$"):
        fast = S._known_pattern(pattern)
        assert fast is not None
        if fast(s):
            assert re.search(pattern, s)
        elif "\n" not in s:  # without a trailing newline ($ lets one through) the two agree exactly
            assert not re.search(pattern, s)
