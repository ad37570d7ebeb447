"""The plugin host, and the one decision every entry point asks for.

:func:`decide` answers "may this tool call run?" for every entry point - the
Pi sidecar, the Claude Code / Codex / Gemini hook commands, ``pi-mesh check``,
the git hooks and the MCP server's tool calls.  The rules, each written here
once:

1. a tool denied to the agent by ``hooks.toml`` is refused outright;
2. a guarded tool whose call names nothing to write (an ``edit`` with no
   path, a ``bash`` call with no command) is refused as malformed;
3. every plugin's ``pi_mesh_pre_tool_call`` is asked about the call (the
   built-in ``mesh`` plugin checks the claims, :mod:`pi_mesh_plugin.guard`);
   a guarded call whose writes are not its own ``paths`` - a shell command's
   parsed targets, a commit's changed files - is also put to them as one
   ``write`` call per path (``via`` = the tool), so a plugin's veto of a
   write holds for every way of writing; the first block wins;
4. when the mesh cannot be read or a plugin fails, the call is blocked -
   unless ``on_store_error = "allow"``, which lets it through.  A plugin that
   is misconfigured (not installed, a misspelled ``@hookimpl``) always blocks:
   that is a configuration to fix, not a store to wait for;
5. a guarded shell command that may run is wrapped to run in the sandbox
   (:mod:`pi_mesh_plugin.sandbox`: other agents' claims read-only, enforced
   by the kernel) - the answer is then an :class:`~pi_mesh_plugin.records.Allow`
   carrying the input to run instead, which each adapter hands its harness;
   where bwrap cannot run, the parser's answer stands;
6. an allowed guarded write is the agent's work: its claims renew and, with
   ``auto_claim``, what it writes is claimed for a short lease.

When ``mesh`` is the only plugin, the claims are checked directly and pluggy
is never imported (the per-call path).  Otherwise the implementations come
from :mod:`pi_mesh_plugin.loading` in pluggy's call order, without pluggy
either; a hook wrapper, which only pluggy can drive, sends the call through
pluggy.  ``PI_MESH_TRACE_PLUGINS=1`` prints each implementation called, its
plugin and its answer to stderr.

:class:`PluginHost` is the pluggy ``PluginManager`` of one agent session: the
tools every plugin registers, and the post-call hook.
"""

from __future__ import annotations

import os

from .errors import ConfigError, MeshError, StoreError, ToolDenied, UsageError, clip
from .records import Allow, Block, ToolCall

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    import pluggy

    from .mesh import Mesh

BUILTIN = "mesh"
PRE = "pi_mesh_pre_tool_call"
_SHELL_TOOLS = ("bash",)


# -- the decision ------------------------------------------------------------------------------------
def decide(mesh: Mesh, call: ToolCall, plugins: list[tuple[str, object]] | None = None, *,
           dry_run: bool = False) -> Block | Allow | None:
    """``None`` if ``call`` may run as it is, an :class:`Allow` if it may run with ``Allow.input`` instead
    (a guarded shell command, wrapped in the sandbox), else the :class:`Block` whose ``message`` the model
    is shown.

    ``plugins`` are the ``(name, plugin)`` pairs to ask, in registration order (a :class:`PluginHost`
    passes its own); by default those ``hooks.toml`` names for the agent.  A block is recorded in the
    feed (``blocked``) unless ``dry_run`` (``pi-mesh check`` asks without trying)."""
    where = [mesh]
    block = _decide(mesh, call, plugins, where)
    if dry_run:
        return block
    answer: Block | Allow | None = block
    if block is None and call.tool in _SHELL_TOOLS and mesh.config.guards(call.tool):
        answer = _sandboxed(mesh, call)
    if isinstance(answer, Block):
        where[-1].record("blocked", tool=call.tool, path=answer.canonical, holder=answer.holder)
    elif call.tool != "commit" and mesh.agent and mesh.config.guards(call.tool):
        _after_allowed(mesh, call)
    return answer


def _sandboxed(mesh: Mesh, call: ToolCall) -> Allow | Block | None:
    """A guarded shell command the claims let through runs in the sandbox: an :class:`Allow` whose input
    has the command wrapped (:mod:`pi_mesh_plugin.sandbox`); ``None`` when there is nothing to protect or
    bwrap cannot run here (the parser's answer stands)."""
    command = (call.input or {}).get("command")
    try:
        from .sandbox import wrap_command

        wrapped = wrap_command(mesh, command, call.cwd) if isinstance(command, str) else None
    except Exception as e:  # noqa: BLE001 - an unreadable mesh never lets a command run unprotected silently
        if mesh.config.fail_open:
            return None
        return Block(tool=call.tool, message=(
            f"BLOCKED: pi-mesh could not read the reservations to sandbox this command "
            f"({type(e).__name__}: {' '.join(str(e).split())[:300]}); run `pi-mesh doctor`."))
    if wrapped is None or wrapped == command:
        return None
    return Allow(tool=call.tool, input={**(call.input or {}), "command": wrapped},
                 note="the command runs in a bubblewrap sandbox: other agents' claims are read-only")


def _after_allowed(mesh: Mesh, call: ToolCall) -> None:
    """An allowed guarded write is work: the agent's claims renew, an ``auto_claim`` agent claims what it
    writes (:mod:`pi_mesh_plugin.leases`).  Upkeep never changes the decision."""
    try:
        mesh.after_allowed_write(list(call.writes), call.cwd)
    except Exception:  # noqa: BLE001 - a failing renewal must not turn an allowed call into an error
        pass


def _decide(mesh: Mesh, call: ToolCall, plugins: list[tuple[str, object]] | None,
            where: list[Mesh]) -> Block | None:
    config = mesh.config
    if config.denies(call.tool):
        return Block(tool=call.tool, message=f"BLOCKED: the tool {call.tool} is denied to agent "
                     f"{mesh.agent or '(unnamed)'} by {config.source or 'the configuration'}.")
    guarded = config.guards(call.tool)
    try:
        if guarded:
            malformed = _malformed(call)
            if malformed:
                return Block(tool=call.tool, message=f"BLOCKED: malformed {call.raw_tool or call.tool} call: "
                             f"{malformed}; nothing was run.")
        command = (call.input or {}).get("command") if call.tool in _SHELL_TOOLS else None
        if isinstance(command, str) and "git" in command:  # guarded or not: git that discards a peer's work
            from .authorship.destructive import shell_block

            block = shell_block(mesh, call)
            if block is not None:
                return block
        calls = [call] + (_derived(call, config.fail_open) if guarded else [])
        from .governing import groups  # each write is also checked by the mesh of the project it lands in

        for m, group in groups(mesh, calls):
            where.append(m)
            block = _check_group(m, group, call, plugins if m is mesh else None)
            if block is not None:
                return block
        where.append(mesh)
        return None
    except ConfigError as e:
        return Block(tool=call.tool, message=f"BLOCKED: pi-mesh is misconfigured: {e}")
    except UsageError as e:
        return Block(tool=call.tool, message=f"BLOCKED: {call.tool}: {e}")
    except MeshError as e:
        if not isinstance(e, StoreError):  # a plugin's refusal (ToolDenied, ...): its text says why
            return Block(tool=call.tool, message=f"BLOCKED: {e}")
        if config.fail_open:
            return None
        return Block(tool=call.tool, message=(
            f"BLOCKED: pi-mesh could not read the reservations ({e}); guarded tools are blocked while the "
            f"mesh is unreadable (on_store_error = \"block\"). Run `pi-mesh doctor`."))
    except Exception as e:  # noqa: BLE001 - an unreadable mesh or a crashing plugin never lets a call through silently
        if config.fail_open:
            return None
        plugin = getattr(e, "_pi_mesh_plugin", None)
        what = (f"the pi-mesh plugin {plugin} failed" if plugin and plugin != BUILTIN
                else "pi-mesh could not read the reservations")
        return Block(tool=call.tool, message=(
            f"BLOCKED: {what} ({type(e).__name__}: {' '.join(str(e).split())[:300]}); guarded tools are "
            f"blocked until it is fixed (on_store_error = \"block\"). Run `pi-mesh doctor`."))


def _check_group(mesh: Mesh, calls: list[ToolCall], call: ToolCall,
                 plugins: list[tuple[str, object]] | None) -> Block | None:
    if plugins is None and list(mesh.config.plugins) == [BUILTIN]:
        from .guard import check_call

        for c in calls:
            block = check_call(mesh, c)
            if block is not None:
                return _noted(block, call, c)
        return None
    if plugins is None:
        from . import loading

        plugins = loading.plugins(list(mesh.config.plugins), mesh.local_dir)
    return _ask_plugins(mesh, calls, call, plugins)


def _malformed(call: ToolCall) -> str | None:
    if call.tool in _SHELL_TOOLS:
        command = (call.input or {}).get("command")
        return None if isinstance(command, str) else "it has no command string"
    if call.via is None and call._writes is None and not call.paths:
        return "it names no path to write"
    return None


def _derived(call: ToolCall, fail_open: bool) -> list[ToolCall]:
    """One ``write`` call per path a call writes when those are not its own ``paths`` (bash, commit)."""
    if call.paths or call.via:
        return []
    rough = call.rough_writes
    out = []
    for path, kind in call.writes:
        if fail_open and (path, kind) in rough:
            continue  # with on_store_error = "allow", guesses from an unparsable command are not enforced
        out.append(ToolCall(tool="write", input={"path": path}, paths=(path,), writes=[(path, kind)],
                            agent=call.agent, cwd=call.cwd, harness=call.harness, raw_tool=call.raw_tool,
                            via=call.tool))
    return out


def _noted(block: Block, call: ToolCall, derived: ToolCall) -> Block:
    note = call.write_note if derived is not call and derived.writes[0] in call.rough_writes else None
    return block.replace(message=block.message + "\n" + note) if note else block


def _ask_plugins(mesh: Mesh, calls: list[ToolCall], call: ToolCall, pairs: list[tuple[str, object]]) -> Block | None:
    from . import loading

    chain = loading.impls(pairs, PRE)
    trace = _tracer()
    for c in calls:
        if chain is None:  # a hook wrapper: only pluggy can drive the chain
            block = PluginHost.for_mesh(mesh).pm.hook.pi_mesh_pre_tool_call(call=c, mesh=mesh, config=mesh.config)
        else:
            block = None
            for impl in chain:
                try:
                    block = impl(call=c, mesh=mesh, config=mesh.config)
                except Exception as e:
                    if trace:
                        trace(impl.plugin, c, f"raised {type(e).__name__}: {e}")
                    if not isinstance(e, MeshError):
                        e._pi_mesh_plugin = impl.plugin  # type: ignore[attr-defined]
                    raise
                if trace:
                    trace(impl.plugin, c, "no objection" if block is None else f"BLOCK: {block}")
                if block is not None:
                    break
        if block is not None:
            if not isinstance(block, Block):
                raise TypeError(f"a {PRE} returned {type(block).__name__}, not a Block or None")
            return _noted(block, call, c)
    return None


def _tracer() -> Callable[[str, ToolCall, str], None] | None:
    if not os.environ.get("PI_MESH_TRACE_PLUGINS"):
        return None
    import sys

    def trace(plugin: str, call: ToolCall, answer: str) -> None:
        what = f"{call.tool}{' via ' + call.via if call.via else ''} {list(call.paths) or ''}".rstrip()
        sys.stderr.write(f"pi-mesh trace: {PRE} [{plugin}] {what} -> {' '.join(answer.split())[:300]}\n")

    return trace


# -- the host: tools and the post-call hook -----------------------------------------------------------
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


def make_plugin_manager(plugins: list[str], mesh_dir: str | None = None) -> pluggy.PluginManager:
    """A pluggy ``PluginManager`` with the hook specifications and the plugins ``plugins`` names."""
    import pluggy

    from . import hookspecs, loading

    pm = pluggy.PluginManager(loading.GROUP)
    pm.add_hookspecs(hookspecs)
    for name, plugin in loading.plugins(plugins, mesh_dir):
        pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise ConfigError(f"plugin {e.plugin!r}: {e}") from None
    return pm


class PluginHost:
    def __init__(self, mesh: Mesh, pm: pluggy.PluginManager | None = None) -> None:
        self.mesh = mesh
        self.config = mesh.config
        self.pm = pm or make_plugin_manager(list(self.config.plugins), mesh.local_dir)
        self._tools: dict[str, ToolSpec] | None = None

    @classmethod
    def for_mesh(cls, mesh: Mesh) -> PluginHost:
        """The host of this Mesh, made once."""
        host = getattr(mesh, "_host", None)
        if host is None:
            host = cls(mesh)
            mesh._host = host
        return host

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
        raise UsageError(f"no tool named {clip(repr(name))} (tools: {', '.join(t.name for t in self.tools())})")

    def call_tool(self, name: str, arguments: dict | None = None, cwd: str | None = None) -> Any:  # JSON-able
        """Run a registered tool: validate its arguments, :func:`decide`, call it, tell the post-call hook."""
        spec = self.tool(name)
        args = dict(arguments or {})
        from jsonschema import Draft202012Validator

        errs = sorted(Draft202012Validator(spec.parameters).iter_errors(args), key=lambda e: list(e.absolute_path))
        if errs:
            e = errs[0]
            where = ".".join(str(p) for p in e.absolute_path)
            raise UsageError(f"{name}: invalid arguments: {clip(where) + ': ' if where else ''}{clip(e.message, 300)}")
        call = ToolCall(tool=name, input=args, paths=(), agent=self.mesh.agent, cwd=cwd or self.mesh.cwd,
                        harness=self.config.harness, raw_tool=name)
        block = self.pre_tool_call(call)
        if isinstance(block, Block):
            raise ToolDenied(block.message)
        try:
            result = spec.function(self.mesh, **args)
        except MeshError:
            self.post_tool_call(call, {"ok": False})
            raise
        self.post_tool_call(call, {"ok": True, "output": result})
        return result

    @staticmethod
    def render(result: Any) -> str:
        """A tool's result as the text a model reads: the string itself, else indented JSON.  The sidecar,
        the MCP server and ``pi-mesh tool`` all show results through this."""
        if isinstance(result, str):
            return result
        import json

        return json.dumps(result, ensure_ascii=False, indent=1, default=str)

    # -- the guard and the post-call hook -------------------------------------
    def pre_tool_call(self, call: ToolCall) -> Block | Allow | None:
        pairs = [(name, p) for name, p in self.pm.list_name_plugin() if p is not None]
        return decide(self.mesh, call, pairs)

    def post_tool_call(self, call: ToolCall, result: dict) -> None:
        try:
            self.pm.hook.pi_mesh_post_tool_call(call=call, result=result, mesh=self.mesh, config=self.config)
        except Exception:  # noqa: BLE001 - activity tracking never fails a call
            pass
