"""pi_mesh_plugin/jsonc.py gives byte for byte what json gives (it drives json's own C scanner and encoder)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pi_mesh_plugin import jsonc

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
                      max_leaves=20)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(values, st.booleans(), st.sampled_from([None, (",", ":"), (", ", ": ")]), st.booleans())
def test_dumps_is_json_dumps(value, ascii_only, separators, sort_keys) -> None:
    kw = {"ensure_ascii": ascii_only, "separators": separators, "sort_keys": sort_keys}
    assert jsonc.dumps(value, **kw) == json.dumps(value, **kw)
    assert jsonc.dumps(value, indent=1) == json.dumps(value, indent=1)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["", " ", "\n\t ", "\r\n"]), st.booleans())
def test_loads_is_json_loads(value, ws, as_bytes) -> None:
    text = ws + json.dumps(value) + ws
    data = text.encode() if as_bytes else text
    assert same(jsonc.loads(data), json.loads(data))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30) | st.binary(max_size=30))
def test_anything_else_fails_or_parses_exactly_as_json_does(data) -> None:
    try:
        want: object = json.loads(data)
    except (ValueError, RecursionError) as e:
        with pytest.raises(type(e)) as got:
            jsonc.loads(data)
        assert str(got.value) == str(e)
    else:
        assert same(jsonc.loads(data), want)


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf[1]", "\ufeff[1]", "[1] x", "", "[1,", '{"a" 1}', "\x00",
                                  "[1]".encode("utf-16"), b"\xff[1]"])
def test_edge_cases_match(data) -> None:
    try:
        want: object = json.loads(data)
    except ValueError as e:
        with pytest.raises(ValueError, match="^" + __import__("re").escape(str(e)) + "$"):
            jsonc.loads(data)
    else:
        assert jsonc.loads(data) == want


def test_an_unserialisable_value_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonc.dumps({"a": {1}})
    assert jsonc.dumps({"a": {1}}, default=sorted) == json.dumps({"a": {1}}, default=sorted)
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonc.dumps(loop)


def test_a_syntax_error_in_a_fresh_process_is_json_s_error() -> None:
    code = ("import pi_mesh_plugin.jsonc as j\nfor t in (b'{not json', '[1, x]', '{\"a\" 1}'):\n"
            "    try:\n        j.loads(t)\n    except ValueError as e:\n        print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n{code}"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["JSONDecodeError Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
                   "JSONDecodeError Expecting value: line 1 column 5 (char 4)",
                   "JSONDecodeError Expecting ':' delimiter: line 1 column 6 (char 5)"]


def test_importing_it_does_not_import_json_or_re() -> None:
    code = "import sys, pi_mesh_plugin.jsonc as j; j.loads(b'[1, {\"a\": 2.5}]'); j.dumps({'x': [1]}); " \
           "print(sorted(m for m in ('json', 're', 'enum', 'typing') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {code}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
