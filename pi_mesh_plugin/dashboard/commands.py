"""The dashboard's compose line: parsing ``@NAME text`` / ``@all text`` / ``/release-dead NAME`` / ``/help``,
and the release of a stale agent's claims (decided by the mesh)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LiveAgent, UsageError
from ..names import is_valid_name
from .rows import Row

if TYPE_CHECKING:
    from ..mesh import Mesh

__all__ = ["HELP", "LiveAgent", "parse_compose", "release_dead"]

HELP = ("@NAME text: message an agent · @all text: message every live agent · "
        "/release-dead NAME: drop a stale agent's claims · /help")


def parse_compose(line: str) -> tuple[str, str, str]:
    """``(kind, target, text)`` for one compose line: kind is ``send``, ``broadcast``, ``release-dead`` or ``help``.

    Raises :class:`~pi_mesh_plugin.errors.UsageError` (one line) for anything else.
    """
    line = line.strip()
    if not line:
        raise UsageError("nothing to send: type @NAME text, @all text or /release-dead NAME")
    if line.startswith("/"):
        cmd, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if cmd in ("help", "h", "?"):
            return "help", "", ""
        if cmd in ("release-dead", "release-stale"):
            if not rest or " " in rest:
                raise UsageError("usage: /release-dead NAME")
            if not is_valid_name(rest):
                raise UsageError(f"invalid agent name {rest!r}")
            return "release-dead", rest, ""
        raise UsageError(f"unknown command /{cmd}: {HELP}")
    if line.startswith("@"):
        target, _, text = line[1:].partition(" ")
        text = text.strip()
        if not target:
            raise UsageError("who to? write @NAME text or @all text")
        if not text:
            raise UsageError(f"nothing to send to {target}: write @{target} followed by the message")
        if target in ("all", "*"):
            return "broadcast", "*", text
        if not is_valid_name(target):
            raise UsageError(f"invalid agent name {target!r}")
        return "send", target, text
    raise UsageError(f"start with @NAME or @all to send, or / for a command ({HELP})")


def release_dead(mesh: Mesh, name: str) -> list[Row]:
    """``/release-dead NAME``: :meth:`Mesh.release_dead <pi_mesh_plugin.mesh.Mesh.release_dead>`, as rows."""
    return [r.to_dict() for r in mesh.release_dead(name)]
