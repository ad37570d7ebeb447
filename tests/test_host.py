"""The pluggy plugin host: built-in plugin, third-party plugins through a real entry point, veto semantics, tools.

Every hook specification has a docstring and a ``test_hook_<name>`` here
(checked by :func:`test_every_hookspec_is_documented_and_tested`).
"""

from __future__ import annotations

import inspect
import os
import sys
import textwrap

import pluggy
import pytest

from pi_mesh_plugin import hookspecs
from pi_mesh_plugin.errors import ConfigError, MeshError, ToolDenied, UsageError
from pi_mesh_plugin.hookspecs import hookimpl
from pi_mesh_plugin.host import PluginHost, make_plugin_manager
from pi_mesh_plugin.mesh import Mesh
from pi_mesh_plugin.records import Block, ToolCall
from tests.conftest import run_cli

PLUGIN = "pi_mesh_testplug"
PLUGIN_SOURCE = '''
from pi_mesh_plugin.hookspecs import hookimpl
from pi_mesh_plugin.records import Block

CALLS = []


@hookimpl
def pi_mesh_pre_tool_call(call, config):
    CALLS.append(("pre", call.tool))
    if call.tool == "deploy":
        return Block(tool=call.tool, message="BLOCKED: no deploys on Friday (testplug)")
    return None


@hookimpl
def pi_mesh_register_tools(register):
    register("shout", "Upper-case a text.",
             {"type": "object", "required": ["text"], "additionalProperties": False,
              "properties": {"text": {"type": "string", "minLength": 1}}},
             lambda mesh, text: text.upper() + " from " + (mesh.agent or "?"))


@hookimpl
def pi_mesh_post_tool_call(call, result):
    CALLS.append(("post", call.tool, result.get("ok"), result.get("output")))
'''


@pytest.fixture
def entry_point_dir(tmp_path, monkeypatch):
    """A directory on sys.path holding a module and a dist-info that declares it in the group ``pi_mesh``."""
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    info = site / f"{PLUGIN}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PLUGIN}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[pi_mesh]\n{PLUGIN} = {PLUGIN}\n")
    monkeypatch.syspath_prepend(str(site))
    yield str(site)
    sys.modules.pop(PLUGIN, None)


@pytest.fixture
def broken_entry_point(entry_point_dir):
    """A second installed plugin whose module fails to import."""
    info = os.path.join(entry_point_dir, "pi_mesh_broken-0.1.dist-info")
    os.mkdir(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: pi_mesh_broken\nVersion: 0.1\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        f.write("[pi_mesh]\npi_mesh_broken = pi_mesh_no_such_module\n")
    return entry_point_dir


def config(project: str, text: str) -> None:
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write(textwrap.dedent(text))


@pytest.fixture
def claimed(project, mesh_factory):
    holder = mesh_factory("holder", cwd=project)
    holder.reserve(["src/auth/"], "auth work")
    return project


def edit(path: str, cwd: str) -> ToolCall:
    return ToolCall(tool="edit", paths=[path], input={"path": path}, cwd=cwd)


# -- the built-in plugin ------------------------------------------------------------------

def test_builtin_plugin_is_registered_through_the_same_hooks(claimed, mesh_factory):
    from pi_mesh_plugin.plugins import mesh as builtin

    host = PluginHost(mesh_factory("bob", cwd=claimed))
    assert host.pm.get_plugin("mesh") is builtin
    names = {impl.plugin_name for spec in ("pi_mesh_pre_tool_call", "pi_mesh_register_tools")
             for impl in getattr(host.pm.hook, spec).get_hookimpls()}
    assert names == {"mesh"}
    assert sorted(t.name for t in host.tools()) == ["list_agents", "message_status", "read_inbox", "release", "reserve", "send_message"]
    assert all(t.plugin == "mesh" and t.description and t.parameters["type"] == "object" for t in host.tools())
    host.pm.check_pending()


def test_without_the_mesh_plugin_there_is_no_guard_and_no_tool(claimed, mesh_factory):
    config(claimed, '[defaults]\nplugins = []\n')
    host = PluginHost(mesh_factory("bob", cwd=claimed))
    assert host.tools() == []
    assert host.pre_tool_call(edit("src/auth/login.py", claimed)) is None


# -- hooks, one test each ------------------------------------------------------------------

class Recorder:
    def __init__(self, answer=None) -> None:
        self.calls: list = []
        self.answer = answer

    @hookimpl
    def pi_mesh_pre_tool_call(self, call, mesh, config):
        self.calls.append((call.tool, mesh.agent, config is mesh.config))
        return self.answer


def test_hook_pi_mesh_pre_tool_call(claimed, mesh_factory):
    bob = mesh_factory("bob", cwd=claimed)
    host = PluginHost(bob)
    quiet, veto = Recorder(None), Recorder(Block(tool="deploy", message="BLOCKED: vetoed"))
    host.pm.register(quiet, name="quiet")
    # a plugin answering None never overrides another plugin's block
    b = host.pre_tool_call(edit("src/auth/login.py", claimed))
    assert b is not None and b.holder == "holder"
    assert quiet.calls == [("edit", "bob", True)]  # asked first (registered last), then the mesh blocked
    assert host.pre_tool_call(edit("src/free.py", claimed)) is None
    # firstresult: the first block wins and later plugins are not asked
    host.pm.register(veto, name="veto")
    b = host.pre_tool_call(edit("src/free.py", claimed))
    assert b is not None and b.message == "BLOCKED: vetoed"
    assert len(quiet.calls) == 2 and len(veto.calls) == 1


def test_hook_pi_mesh_register_tools(mesh_factory, project):
    host = PluginHost(mesh_factory("bob", cwd=project))

    class Tools:
        @hookimpl
        def pi_mesh_register_tools(self, register, mesh, config):
            register("count_words", "Count words.",
                     {"type": "object", "required": ["text"], "additionalProperties": False,
                      "properties": {"text": {"type": "string"}}},
                     lambda mesh, text: {"words": len(text.split()), "agent": mesh.agent})

    host.pm.register(Tools(), name="tools")
    specs = {t.name: t for t in host.tools()}
    assert specs["count_words"].plugin == "tools" and "send_message" in specs
    assert host.call_tool("count_words", {"text": "a b c"}) == {"words": 3, "agent": "bob"}
    with pytest.raises(UsageError) as info:
        host.call_tool("count_words", {"text": 5})
    assert "count_words: invalid arguments: text:" in str(info.value)
    with pytest.raises(UsageError):
        host.call_tool("count_words", {"text": "x", "extra": 1})


def test_duplicate_or_invalid_tool_names_are_refused(mesh_factory, project):
    host = PluginHost(mesh_factory("bob", cwd=project))

    class Dup:
        @hookimpl
        def pi_mesh_register_tools(self, register):
            register("send_message", "again", {"type": "object"}, lambda mesh: None)

    host.pm.register(Dup(), name="dup")
    with pytest.raises(UsageError) as info:
        host.tools()
    assert "already registered by mesh" in str(info.value)

    host2 = PluginHost(mesh_factory("carol", cwd=project))

    class Bad:
        @hookimpl
        def pi_mesh_register_tools(self, register):
            register("rm -rf", "bad", {"type": "object"}, lambda mesh: None)

    host2.pm.register(Bad(), name="bad")
    with pytest.raises(UsageError):
        host2.tools()


def test_hook_pi_mesh_post_tool_call(mesh_factory, project):
    bob = mesh_factory("bob", cwd=project)
    mesh_factory("alice", cwd=project)
    host = PluginHost(bob)
    seen = []

    class Post:
        @hookimpl
        def pi_mesh_post_tool_call(self, call, result, mesh, config):
            seen.append((call.tool, call.input, result["ok"], mesh.agent))
            raise RuntimeError("activity tracking never fails a call")

    host.pm.register(Post(), name="post")
    out = host.call_tool("send_message", {"to": "alice", "text": "hi"})
    assert out.startswith("sent to alice")
    with pytest.raises(MeshError):
        host.call_tool("send_message", {"to": "nobody", "text": "hi"})
    assert seen == [("send_message", {"to": "alice", "text": "hi"}, True, "bob"),
                    ("send_message", {"to": "nobody", "text": "hi"}, False, "bob")]


def test_crashing_plugin_blocks_unless_configured_to_allow(claimed, mesh_factory):
    class Boom:
        @hookimpl
        def pi_mesh_pre_tool_call(self, call):
            raise RuntimeError("plugin bug")

    class Refuses:
        @hookimpl
        def pi_mesh_pre_tool_call(self, call):
            raise ToolDenied("not today")

    host = PluginHost(mesh_factory("bob", cwd=claimed))
    host.pm.register(Boom(), name="boom")
    b = host.pre_tool_call(edit("src/free.py", claimed))
    assert b is not None and "plugin boom failed (RuntimeError: plugin bug)" in b.message
    host.pm.unregister(name="boom")
    host.pm.register(Refuses(), name="refuses")
    assert host.pre_tool_call(edit("src/free.py", claimed)).message == "BLOCKED: not today"

    config(claimed, '[agents.easy]\non_store_error = "allow"\n')
    easy = PluginHost(mesh_factory("easy", cwd=claimed))
    easy.pm.register(Boom(), name="boom")
    assert easy.pre_tool_call(edit("src/free.py", claimed)) is None


def test_check_pending_catches_a_misspelled_hook(mesh_factory, project):
    host = PluginHost(mesh_factory("bob", cwd=project))

    class Typo:
        @hookimpl
        def pi_mesh_pre_tool_cal(self, call):  # noqa: D401 - misspelled on purpose
            return None

    host.pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError):
        host.pm.check_pending()


# -- a third-party plugin through a real entry point -----------------------------------------------

def test_entry_point_plugin_loads_vetoes_and_adds_tools(entry_point_dir, claimed, mesh_factory):
    config(claimed, f'[defaults]\nplugins = ["mesh", "{PLUGIN}"]\n')
    host = PluginHost(mesh_factory("bob", cwd=claimed))
    host.pm.check_pending()
    plug = host.pm.get_plugin(PLUGIN)
    assert plug is not None and plug.__name__ == PLUGIN
    assert {t.name: t.plugin for t in host.tools()}["shout"] == PLUGIN
    assert host.call_tool("shout", {"text": "hi"}) == "HI from bob"
    b = host.pre_tool_call(ToolCall(tool="deploy", cwd=claimed))
    assert b is not None and "no deploys" in b.message
    # its None on an edit does not undo the mesh's block
    assert host.pre_tool_call(edit("src/auth/login.py", claimed)).holder == "holder"
    assert ("post", "shout", True, "HI from bob") in plug.CALLS


def test_star_loads_every_installed_plugin(entry_point_dir, project, mesh_factory):
    config(project, '[defaults]\nplugins = ["*"]\n')
    host = PluginHost(mesh_factory("bob", cwd=project))
    assert host.pm.get_plugin("mesh") is not None and host.pm.get_plugin(PLUGIN) is not None


def test_load_plugins_env_narrows_what_loads(entry_point_dir, project, mesh_factory, monkeypatch):
    config(project, f'[defaults]\nplugins = ["mesh", "{PLUGIN}"]\n')
    bob = mesh_factory("bob", cwd=project)
    monkeypatch.setenv("PI_MESH_LOAD_PLUGINS", "")
    host = PluginHost(bob)
    assert host.pm.get_plugin(PLUGIN) is None and host.pm.get_plugin("mesh") is not None
    assert "shout" not in {t.name for t in host.tools()}
    monkeypatch.setenv("PI_MESH_LOAD_PLUGINS", f"other, {PLUGIN}")
    assert PluginHost(bob).pm.get_plugin(PLUGIN) is not None
    config(project, '[defaults]\nplugins = ["*"]\n')
    monkeypatch.setenv("PI_MESH_LOAD_PLUGINS", "other")
    assert PluginHost(Mesh(project, "carol", cwd=project)).pm.get_plugin(PLUGIN) is None


def test_entry_point_plugin_reaches_a_real_cli_process(entry_point_dir, project):
    config(project, f'[defaults]\nplugins = ["mesh", "{PLUGIN}"]\n')
    env = {"PYTHONPATH": entry_point_dir}
    r = run_cli("--root", project, "--agent", "bob", "join", "--pid", "0", cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("--root", project, "--agent", "bob", "tools", cwd=project, env=env)
    assert r.returncode == 0 and "shout" in r.stdout, r.stderr
    r = run_cli("--root", project, "--agent", "bob", "tool", "shout", '{"text": "ok"}', cwd=project, env=env)
    assert (r.returncode, r.stdout.strip()) == (0, "OK from bob"), r.stderr


def test_missing_configured_plugin_is_one_config_error(project, mesh_factory):
    config(project, '[defaults]\nplugins = ["mesh", "not-installed"]\n')
    with pytest.raises(ConfigError) as info:
        make_plugin_manager(["mesh", "not-installed"])
    assert "not-installed" in str(info.value) and "\n" not in str(info.value)


# -- the contract of the hook specifications -----------------------------------------------------

def test_every_hookspec_is_documented_and_tested():
    specs = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("pi_mesh_")]
    assert sorted(specs) == ["pi_mesh_post_tool_call", "pi_mesh_pre_tool_call", "pi_mesh_register_tools"]
    here = sys.modules[__name__]
    for name in specs:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and len(fn.__doc__.split()) >= 15, f"{name} needs a real docstring"
        assert hasattr(fn, "pi_mesh_spec"), f"{name} is not marked as a hookspec"
        assert callable(getattr(here, f"test_hook_{name}", None)), f"no test_hook_{name}"
    assert hookspecs.pi_mesh_pre_tool_call.pi_mesh_spec["firstresult"] is True


def test_a_plugin_that_fails_to_import_is_a_config_error_naming_it(broken_entry_point, project, mesh_factory,
                                                                    monkeypatch):
    bob = mesh_factory("bob", cwd=project)
    for plugins in ('["mesh", "pi_mesh_broken"]', '["*"]'):
        config(project, f"[defaults]\nplugins = {plugins}\n")
        with pytest.raises(ConfigError) as info:
            PluginHost(Mesh(project, "bob", cwd=project))
        msg = str(info.value)
        assert "pi_mesh_broken" in msg and "ModuleNotFoundError" in msg and "\n" not in msg
    # PI_MESH_LOAD_PLUGINS leaves the broken one out: it is never imported, the rest loads
    monkeypatch.setenv("PI_MESH_LOAD_PLUGINS", PLUGIN)
    host = PluginHost(Mesh(project, "bob", cwd=project))
    assert host.pm.get_plugin(PLUGIN) is not None and host.pm.get_plugin("pi_mesh_broken") is None
    assert bob.agent == "bob"
