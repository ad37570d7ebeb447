"""Agent, inbox and id names: the only strings that become file names under .pi/mesh/."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pi_mesh_plugin.errors import InvalidName, MeshError, UsageError
from pi_mesh_plugin.names import NAME_PATTERN, is_valid_name, validate_name

GOOD = ["a", "A", "0", "alice", "bob-2", "x_y", "a" * 64, "9lives", "claude-code_1"]
BAD = ["", "-a", "_a", ".", "..", "../x", "a/b", "a\\b", "a b", "a\n", "\na", "a\x00", "a" * 65, "é", "ａ",
       "a.b", ".hidden", "a:b", "~a", "@a", None, 5, b"abc", ["a"]]


@pytest.mark.parametrize("name", GOOD)
def test_good_names_pass_unchanged(name):
    assert is_valid_name(name)
    assert validate_name(name) == name


@pytest.mark.parametrize("name", BAD)
def test_bad_names_refused_with_one_line_usage_error(name):
    assert not is_valid_name(name)
    with pytest.raises(InvalidName) as info:
        validate_name(name, "agent name")
    err = info.value
    assert isinstance(err, UsageError) and isinstance(err, ValueError) and isinstance(err, MeshError)
    assert err.exit_code == 2
    text = str(err)
    assert "\n" not in text and "invalid agent name" in text


def test_huge_name_message_is_truncated():
    text = str(InvalidName("agent name", "x/" * 10_000))
    assert len(text) < 300


_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=70)
       | st.text(alphabet="aZ09_-./\n ", max_size=70))
@settings(max_examples=300, deadline=None)
def test_validity_matches_the_documented_pattern(s):
    ok = is_valid_name(s)
    assert ok == (_REF.fullmatch(s) is not None)
    if ok:
        # a valid name is a single, plain path component inside the mesh
        assert "/" not in s and "\x00" not in s and s not in (".", "..") and not s.startswith(".")
        assert os.path.basename(s) == s and os.path.normpath(s) == s


def test_pattern_is_the_one_in_the_schemas():
    import json

    from pi_mesh_plugin.schema import schema_dir

    with open(os.path.join(schema_dir(), "agent.schema.json")) as f:
        agent = json.load(f)
    assert agent["properties"]["name"]["pattern"] == NAME_PATTERN


@pytest.mark.parametrize("bad", ["../evil", "a/b", "", "x" * 65, "a\n"])
def test_mesh_refuses_bad_names_and_writes_nothing(project, bad):
    from pi_mesh_plugin.mesh import Mesh

    before = sorted(os.listdir(os.path.dirname(project)))
    with pytest.raises(InvalidName):
        m = Mesh(project, "ok", cwd=project)
        m.join(bad if bad else "\x00")  # "" would fall back to the Mesh's name: use another invalid one
    with pytest.raises(InvalidName):
        Mesh(project, bad or "-", cwd=project)
    assert sorted(os.listdir(os.path.dirname(project))) == before
    agents = os.path.join(project, ".pi", "mesh", "agents")
    assert not os.path.isdir(agents) or os.listdir(agents) == []


def test_send_to_bad_recipient_is_refused(mesh_factory, project):
    a = mesh_factory("alice", cwd=project)
    for bad in ("../bob", "bob/x", ".."):
        with pytest.raises(InvalidName):
            a.send(bad, "hi")
    assert not os.path.exists(os.path.join(project, ".pi", "mesh", "bob"))
    assert sorted(os.listdir(os.path.join(project, ".pi", "mesh", "inbox"))) == ["alice"]


# -- names refused at join --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["all", "ALL", "everyone", "mesh", "human", "Human", "*"])
def test_reserved_names_are_refused_at_join_in_one_line(project, name):
    from tests.test_cli import cli, one_line_error

    line = one_line_error(cli(project, "join", "--name", name, code=None), 2)
    assert "reserved" in line and "choose another name" in line
    assert not os.path.exists(os.path.join(project, ".pi", "mesh", "agents", f"{name}.json"))


def test_the_operator_of_top_may_take_human_and_nobody_else(mesh_factory):
    from pi_mesh_plugin.errors import UsageError as _UsageError

    with pytest.raises(_UsageError, match="reserved"):
        mesh_factory("human", join=False).join(harness="pi")
    assert mesh_factory("human", join=False).join(harness="operator").name == "human"


def test_an_empty_name_is_an_error_never_a_random_name(project):
    from tests.test_cli import cli, one_line_error

    line = one_line_error(cli(project, "join", "--name", "", code=None), 2)
    assert "cannot be empty" in line
    line = one_line_error(cli(project, "join", "--name", "   ", code=None), 2)
    assert "cannot be empty" in line
    assert not os.listdir(os.path.join(project, ".pi", "mesh", "agents")) if os.path.isdir(
        os.path.join(project, ".pi", "mesh", "agents")) else True
