"""Hook specifications: the whole plugin interface of pi_mesh_plugin.

A plugin is any object or module with functions marked ``@hookimpl`` whose
names match a spec below; it may take any subset of a spec's arguments
(pluggy's opt-in arguments), and the argument names mean the same everywhere:

* ``call`` - a :class:`~pi_mesh_plugin.records.ToolCall`: the mesh's tool
  name (``edit``, ``write``, ``bash``, ``read`` or a registered tool), the
  paths it would write, the raw input, the agent, the cwd, the harness;
* ``mesh`` - the :class:`~pi_mesh_plugin.mesh.Mesh` of the calling agent;
* ``config`` - its :class:`~pi_mesh_plugin.config.AgentConfig`.

The built-in mesh behaviour (:mod:`pi_mesh_plugin.plugins.mesh`) is itself a
plugin of these hooks.  Third-party plugins are found through the entry-point
group ``pi_mesh`` and loaded when ``hooks.toml`` lists them in ``plugins``.
"""

from __future__ import annotations

import pluggy

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .config import AgentConfig
    from .mesh import Mesh
    from .records import Block, ToolCall

    Register = Callable[[str, str, dict, Callable[..., Any]], None]

hookspec = pluggy.HookspecMarker("pi_mesh")
hookimpl = pluggy.HookimplMarker("pi_mesh")


@hookspec(firstresult=True)
def pi_mesh_pre_tool_call(call: ToolCall, mesh: Mesh, config: AgentConfig) -> Block | None:
    """Called before a tool call runs; may veto it.

    Return a :class:`~pi_mesh_plugin.records.Block` to refuse the call (its
    ``message`` is what the model is shown, so say who and why and what to do
    instead), or ``None`` to have no objection.  There is no "allow" answer:
    the first block wins and later plugins are not asked, but returning
    ``None`` never overrides another plugin's block.  Must be fast: it runs
    before every guarded call, in a fresh process for per-call harnesses.
    """


@hookspec
def pi_mesh_register_tools(register: Register, mesh: Mesh, config: AgentConfig) -> None:
    """Add tools the agent can call.

    Call ``register(name, description, parameters, function)`` once per tool:
    ``parameters`` is a JSON Schema object for the arguments, ``function`` is
    called as ``function(mesh, **arguments)`` and returns a JSON-serialisable
    result (a string is shown to the model as is).  Raising
    :class:`~pi_mesh_plugin.errors.MeshError` reports a tool error in one
    line.  Tools are exposed to every adapter: Pi (through the sidecar), the
    MCP server and the CLI's ``pi-mesh tool`` command.
    """


@hookspec
def pi_mesh_post_tool_call(call: ToolCall, result: dict, mesh: Mesh, config: AgentConfig) -> None:
    """Called after a tool call ran (``result`` is ``{"ok": bool, "output": …}``
    as far as the harness reports it).  For activity tracking; the return value is ignored."""
