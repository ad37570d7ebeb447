"""The plugin host: one pluggy ``PluginManager`` per agent session.

It registers the built-in mesh plugin, loads the third-party plugins that
``hooks.toml`` names (entry-point group ``pi_mesh``; ``"*"`` loads every
installed one; ``$PI_MESH_LOAD_PLUGINS``, a comma list, narrows that further),
collects the tools every plugin registers, and answers the three questions an
adapter asks: which tools are there, may this call run, and run this tool.
"""

from __future__ import annotations

import os

import pluggy

from . import hookspecs
from .errors import MeshError, ToolDenied, UsageError
from .records import Block, ToolCall

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .mesh import Mesh

BUILTIN = "mesh"


class ToolSpec:
    """A tool a plugin registered: name, description, JSON Schema of its parameters, and the function."""

    __slots__ = ("name", "description", "parameters", "function", "plugin")

    def __init__(self, name: str, description: str, parameters: dict, function: Callable[..., Any], plugin: str) -> None:
        self.name, self.description, self.parameters = name, description, parameters
        self.function, self.plugin = function, plugin

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def __repr__(self) -> str:
        return f"ToolSpec({self.name!r} from {self.plugin})"


def make_plugin_manager(plugins: list[str]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("pi_mesh")
    pm.add_hookspecs(hookspecs)
    if BUILTIN in plugins or "*" in plugins:
        from .plugins import mesh as builtin

        pm.register(builtin, name=BUILTIN)
    wanted = [p for p in plugins if p != BUILTIN]
    only = os.environ.get("PI_MESH_LOAD_PLUGINS")
    allowed = {p.strip() for p in only.split(",") if p.strip()} if only is not None else None
    if wanted:
        if "*" in wanted:
            from importlib.metadata import entry_points

            names = sorted({ep.name for ep in entry_points(group="pi_mesh")} - {BUILTIN})
        else:
            names = wanted
        for name in names:
            # a plugin PI_MESH_LOAD_PLUGINS leaves out is never imported (a broken one cannot break the rest)
            if allowed is None or name in allowed:
                try:
                    pm.load_setuptools_entrypoints("pi_mesh", name=name)
                except Exception as e:  # noqa: BLE001 - a plugin that fails to import is a configuration error
                    from .errors import ConfigError

                    raise ConfigError(f"plugins: cannot load the plugin {name} (entry-point group pi_mesh): "
                                      f"{type(e).__name__}: {e}") from None
        if allowed is not None:
            for name, plugin in list(pm.list_name_plugin()):
                if name != BUILTIN and name not in allowed:
                    pm.unregister(plugin)
        missing = [n for n in wanted if n != "*" and pm.get_plugin(n) is None
                   and (allowed is None or n in allowed)]
        if missing:
            from .errors import ConfigError

            raise ConfigError(f"plugins = {plugins}: no installed plugin named {', '.join(missing)} "
                              f"(entry-point group pi_mesh)")
    return pm


class PluginHost:
    def __init__(self, mesh: Mesh, pm: pluggy.PluginManager | None = None) -> None:
        self.mesh = mesh
        self.config = mesh.config
        self.pm = pm or make_plugin_manager(list(self.config.plugins))
        self._tools: dict[str, ToolSpec] | None = None

    # -- tools ---------------------------------------------------------------
    def _collect(self) -> dict[str, ToolSpec]:
        tools: dict[str, ToolSpec] = {}
        for impl in self.pm.hook.pi_mesh_register_tools.get_hookimpls():
            plugin = impl.plugin_name

            def register(name: str, description: str, parameters: dict, function: Callable[..., Any],
                         _plugin: str = plugin) -> None:
                if not isinstance(name, str) or not name.replace("_", "a").isalnum():
                    raise UsageError(f"plugin {_plugin}: invalid tool name {name!r}")
                if name in tools:
                    raise UsageError(f"plugin {_plugin}: tool {name!r} is already registered by {tools[name].plugin}")
                tools[name] = ToolSpec(name, description, parameters, function, _plugin)

            kwargs = {"register": register, "mesh": self.mesh, "config": self.config}
            impl.function(*[kwargs[a] for a in impl.argnames])
        return tools

    def tools(self) -> list[ToolSpec]:
        """The tools exposed to this agent (``tools`` minus ``deny`` in hooks.toml)."""
        if self._tools is None:
            self._tools = self._collect()
        return [t for t in self._tools.values() if self.config.exposes(t.name)]

    def tool(self, name: str) -> ToolSpec:
        for t in self.tools():
            if t.name == name:
                return t
        if self.config.denies(name):
            raise ToolDenied(f"the tool {name} is denied to agent {self.mesh.agent} by the configuration")
        raise UsageError(f"no tool named {name!r} (tools: {', '.join(t.name for t in self.tools())})")

    def call_tool(self, name: str, arguments: dict | None = None, cwd: str | None = None) -> Any:  # JSON-able
        """Run a registered tool: validate its arguments, ask the pre-call hook, call it, tell the post-call hook."""
        spec = self.tool(name)
        args = dict(arguments or {})
        from jsonschema import Draft202012Validator

        errs = sorted(Draft202012Validator(spec.parameters).iter_errors(args), key=lambda e: list(e.absolute_path))
        if errs:
            e = errs[0]
            where = ".".join(str(p) for p in e.absolute_path)
            raise UsageError(f"{name}: invalid arguments: {where + ': ' if where else ''}{e.message}")
        call = ToolCall(tool=name, input=args, paths=(), agent=self.mesh.agent, cwd=cwd or self.mesh.cwd,
                        harness=self.config.harness, raw_tool=name)
        block = self.pre_tool_call(call)
        if block is not None:
            raise ToolDenied(block.message)
        try:
            result = spec.function(self.mesh, **args)
        except MeshError:
            self.post_tool_call(call, {"ok": False})
            raise
        self.post_tool_call(call, {"ok": True, "output": result})
        return result

    # -- the guard -----------------------------------------------------------
    def pre_tool_call(self, call: ToolCall) -> Block | None:
        try:
            block: Block | None = self.pm.hook.pi_mesh_pre_tool_call(call=call, mesh=self.mesh, config=self.config)
            return block
        except MeshError as e:
            return Block(tool=call.tool, message=f"BLOCKED: {e}")
        except Exception as e:  # noqa: BLE001 - a crashing plugin must not let a call through silently
            if self.config.fail_open:
                return None
            return Block(tool=call.tool, message=f"BLOCKED: a pi-mesh plugin failed ({type(e).__name__}: {e}); "
                         "guarded calls are blocked until it is fixed (on_store_error = \"block\").")

    def post_tool_call(self, call: ToolCall, result: dict) -> None:
        try:
            self.pm.hook.pi_mesh_post_tool_call(call=call, result=result, mesh=self.mesh, config=self.config)
        except Exception:  # noqa: BLE001 - activity tracking never fails a call
            pass
