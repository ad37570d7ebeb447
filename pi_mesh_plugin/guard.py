"""The reservation guard: decides whether one tool call may run.

This is the decision every adapter asks for, in the built-in plugin's
``pi_mesh_pre_tool_call`` and - when the mesh is the only plugin configured,
so that pluggy need not even be imported - directly from the per-call hook
commands.  Order of the rules:

1. a tool denied to this agent by ``hooks.toml`` is refused outright;
2. a tool not guarded passes;
3. each path the call would write is checked against every live claim of
   another agent; the first claim found blocks, naming holder and reason;
4. if the mesh cannot be read, the call is blocked unless the agent's
   ``on_store_error`` is ``allow`` (fail closed by default).

Reads are never blocked: ``read`` is not a guarded tool, and ``bash`` is
guarded only for the paths its command would write (:mod:`.shell`).
"""

from __future__ import annotations

from .records import Block, ToolCall

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh


def check_call(mesh: Mesh, call: ToolCall) -> Block | None:
    config = mesh.config
    if config.denies(call.tool):
        return Block(tool=call.tool, message=f"BLOCKED: the tool {call.tool} is denied to agent "
                     f"{mesh.agent or '(unnamed)'} by {config.source or 'the configuration'}.")
    if not config.guards(call.tool):
        return None
    try:
        targets = write_targets(call)
        note = getattr(targets, "note", None)  # a shell command that could not be parsed (see the shell package)
        if note and config.fail_open:  # check only what could be parsed
            rough: frozenset[tuple[str, str]] = getattr(targets, "rough", frozenset())
            targets, note = [t for t in targets if t not in rough], None
        for path, kind in targets:
            block = mesh.check(path, call.tool, cwd=call.cwd, kind=kind)
            if block is not None:
                mesh.record("blocked", tool=call.tool, path=block.canonical, holder=block.holder)
                return block.replace(message=block.message + "\n" + note) if note else block
    except Exception as e:  # noqa: BLE001 - any failure to read the mesh is a store error here
        from .errors import UsageError

        if isinstance(e, UsageError):
            return Block(tool=call.tool, message=f"BLOCKED: {call.tool}: {e}")
        if config.fail_open:
            return None
        return Block(tool=call.tool, message=(
            f"BLOCKED: pi-mesh could not read the reservations ({type(e).__name__}: {e}); guarded tools are "
            f"blocked while the mesh is unreadable (on_store_error = \"block\"). Run `pi-mesh doctor`."))
    return None


def write_targets(call: ToolCall) -> list[tuple[str, str]]:
    """``(path, kind)`` pairs the call would write."""
    if call.tool == "bash" and not call.paths:
        command = (call.input or {}).get("command")
        if isinstance(command, str):
            from .shell import shell_write_targets

            return shell_write_targets(command)
        return []
    return [(p, "file") for p in call.paths]
