"""The reservation rule: may these writes land, given every live claim of another agent?

The built-in plugin's ``pi_mesh_pre_tool_call`` answers with :func:`check_call`,
and :func:`pi_mesh_plugin.host.decide` calls the same function directly when
the mesh is the only plugin configured, so that pluggy need not even be
imported on the per-call path.  Whether a call is guarded at all, denied,
malformed, and what an unreadable mesh means, is decided once, in
:func:`~pi_mesh_plugin.host.decide`; this module only knows claims.

Each ``(path, kind)`` the call writes is checked against every live claim of
another agent; the first claim found blocks, naming holder and reason.  Store
errors propagate (``decide`` applies ``on_store_error`` and records blocks in
the feed).
"""

from __future__ import annotations

from .records import Block, ToolCall

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh


def check_call(mesh: Mesh, call: ToolCall) -> Block | None:
    """The block the claims put on ``call``'s writes, or ``None``.

    A call that only carries writes computed elsewhere (a shell command, a commit) is checked by
    ``decide`` through its derived ``write`` calls, one per path, so this checks calls with ``paths``
    and those derived calls - never the same write twice."""
    tool = call.via or call.tool
    if not call.paths or not mesh.config.guards(tool):
        return None
    return check_writes(mesh, tool, call.writes, call.cwd)


def check_writes(mesh: Mesh, tool: str, writes: tuple[tuple[str, str], ...] | list[tuple[str, str]],
                 cwd: str | None) -> Block | None:
    for path, kind in writes:
        block = mesh.check(path, tool, cwd=cwd, kind=kind)
        if block is not None:
            return block
    return None
