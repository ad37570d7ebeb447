"""The per-call plugin path agrees with pluggy: markers, call order, first result, validation."""

from __future__ import annotations

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pi_mesh_plugin import hookspecs, loading
from pi_mesh_plugin.errors import ConfigError

IMPL_OPTIONS = [{}, {"tryfirst": True}, {"trylast": True}, {"optionalhook": True}, {"specname": "x"},
                {"tryfirst": True, "trylast": True}, {"wrapper": True}, {"hookwrapper": True}]


@pytest.mark.parametrize("opts", IMPL_OPTIONS)
def test_the_impl_marker_sets_exactly_what_pluggys_sets(opts):
    def ours():
        pass

    def theirs():
        pass

    hookspecs.hookimpl(**opts)(ours)
    pluggy.HookimplMarker("pi_mesh")(**opts)(theirs)
    assert ours.pi_mesh_impl == theirs.pi_mesh_impl  # type: ignore[attr-defined]
    hookspecs.hookimpl(ours)
    pluggy.HookimplMarker("pi_mesh")(theirs)
    assert ours.pi_mesh_impl == theirs.pi_mesh_impl  # type: ignore[attr-defined]


@pytest.mark.parametrize("opts", [{}, {"firstresult": True}, {"historic": True}, {"warn_on_impl": None}])
def test_the_spec_marker_sets_exactly_what_pluggys_sets(opts):
    def ours():
        pass

    def theirs():
        pass

    hookspecs.hookspec(**opts)(ours)
    pluggy.HookspecMarker("pi_mesh")(**opts)(theirs)
    assert ours.pi_mesh_spec == theirs.pi_mesh_spec  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        hookspecs.hookspec(historic=True, firstresult=True)(ours)
    with pytest.raises(TypeError):
        hookspecs.hookimpl(tryfrist=True)


class Plugin:
    def __init__(self, n: int, answer: object, opts: dict, log: list) -> None:
        self.n, self.answer, self.log = n, answer, log

        @hookspecs.hookimpl(**opts)
        def pi_mesh_pre_tool_call(call):
            log.append(n)
            return self.answer

        self.pi_mesh_pre_tool_call = pi_mesh_pre_tool_call


plugin_specs = st.lists(st.tuples(st.sampled_from([None, "block"]),
                                  st.sampled_from([{}, {"tryfirst": True}, {"trylast": True}])), max_size=8)


@settings(max_examples=200, deadline=None)
@given(plugin_specs)
def test_call_order_and_first_result_match_pluggy(specs):
    log_pluggy: list = []
    log_ours: list = []
    pm = pluggy.PluginManager("pi_mesh")
    pm.add_hookspecs(hookspecs)
    pairs = []
    for i, (answer, opts) in enumerate(specs):
        value = f"block-{i}" if answer else None
        pm.register(Plugin(i, value, opts, log_pluggy), name=f"p{i}")
        pairs.append((f"p{i}", Plugin(i, value, opts, log_ours)))
    expected = pm.hook.pi_mesh_pre_tool_call(call="c", mesh=None, config=None)
    got = None
    for impl in loading.impls(pairs, "pi_mesh_pre_tool_call") or []:
        got = impl(call="c", mesh=None, config=None)
        if got is not None:
            break
    assert (got, log_ours) == (expected, log_pluggy)


def test_argnames_are_read_as_pluggy_reads_them():
    class P:
        def m(self, call, mesh=None):
            pass

    def f(call, config, extra=1):
        pass

    assert loading.argnames(P().m) == ("call",)
    assert loading.argnames(f) == ("call", "config")


def test_a_wrapper_hands_the_chain_to_pluggy_and_unknown_names_are_refused():
    class Wrap:
        @hookspecs.hookimpl(wrapper=True)
        def pi_mesh_pre_tool_call(self, call):
            return (yield)

    assert loading.impls([("w", Wrap())], "pi_mesh_pre_tool_call") is None

    class Typo:
        @hookspecs.hookimpl
        def pi_mesh_post_tool_cal(self, call):
            pass

    with pytest.raises(ConfigError, match="plugin typo: @hookimpl 'pi_mesh_post_tool_cal' matches no hook"):
        loading.check_plugin("typo", Typo())

    class WrongArgs:
        @hookspecs.hookimpl
        def pi_mesh_pre_tool_call(self, call, result):
            pass

    with pytest.raises(ConfigError, match="takes result"):
        loading.check_plugin("wrong", WrongArgs())

    class Optional:
        @hookspecs.hookimpl(optionalhook=True)
        def pi_mesh_someday(self):
            pass

    loading.check_plugin("optional", Optional())


def test_the_spec_table_is_the_hookspecs_module():
    specs = {name: tuple(loading.argnames(getattr(hookspecs, name))) for name in dir(hookspecs)
             if hasattr(getattr(hookspecs, name), "pi_mesh_spec")}
    assert specs == loading.SPECS
