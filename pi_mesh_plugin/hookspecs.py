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
plugin of these hooks, registered the way third-party plugins are.  Third-party plugins are found through the entry-point
group ``pi_mesh`` and loaded when ``hooks.toml`` lists them in ``plugins``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, overload

    F = TypeVar("F", bound=Callable[..., Any])

    from .config import AgentConfig
    from .mesh import Mesh
    from .records import Block, ToolCall

    Register = Callable[[str, str, dict, Callable[..., Any]], None]

PROJECT = "pi_mesh"


class _Marker:
    """A marker that sets exactly the attribute pluggy's ``HookspecMarker`` / ``HookimplMarker`` set
    (``pi_mesh_spec`` / ``pi_mesh_impl``, with pluggy's option names), so that pluggy reads it as its own -
    without importing pluggy, which a plugin module on the per-call path would otherwise pay for.  A test
    compares every option combination with pluggy's markers."""

    def __init__(self, kind: str, defaults: dict) -> None:
        self.attr, self.defaults = f"{PROJECT}_{kind}", defaults

    if TYPE_CHECKING:  # what the decorator does to the function's type: nothing
        @overload
        def __call__(self, function: F, **options: Any) -> F: ...
        @overload
        def __call__(self, function: None = None, **options: Any) -> Callable[[F], F]: ...

    def __call__(self, function: Any = None, **options: Any) -> Any:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise TypeError(f"{self.attr} marker: unknown option(s) {sorted(unknown)}")
        opts = {**self.defaults, **options}
        if opts.get("historic") and opts.get("firstresult"):
            raise ValueError("cannot have a historic firstresult hook")

        def mark(func: Any) -> Any:
            setattr(func, self.attr, dict(opts))
            return func

        return mark if function is None else mark(function)


hookspec = _Marker("spec", {"firstresult": False, "historic": False, "warn_on_impl": None,
                            "warn_on_impl_args": None})
hookimpl = _Marker("impl", {"wrapper": False, "hookwrapper": False, "optionalhook": False, "tryfirst": False,
                            "trylast": False, "specname": None})


@hookspec(firstresult=True)
def pi_mesh_pre_tool_call(call: ToolCall, mesh: Mesh, config: AgentConfig) -> Block | None:
    """Called before a tool call runs; may veto it.

    Return a :class:`~pi_mesh_plugin.records.Block` to refuse the call (its
    ``message`` is what the model is shown, so say who and why and what to do
    instead), or ``None`` to have no objection.  There is no "allow" answer:
    the first block wins and later plugins are not asked, but returning
    ``None`` never overrides another plugin's block.  Must be fast: it runs
    before every call, in a fresh process for per-call harnesses.

    ``call.writes`` are the ``(path, kind)`` pairs the call would write.  A
    call whose writes are not named by the harness - a shell command, a git
    commit - is also put to this hook as one ``write`` call per path it writes
    (``call.via`` names the tool it comes from), so a plugin that vetoes the
    write of a path vetoes every way of writing it without knowing bash or git.
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
