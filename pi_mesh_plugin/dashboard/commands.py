"""The dashboard's compose line: parsing ``@NAME text`` / ``@all text`` / ``/release-dead NAME`` / ``/help``,
and releasing a stale agent's claims."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EXIT_BLOCKED, MeshError, UnknownAgent, UsageError
from ..names import is_valid_name
from .rows import Row

if TYPE_CHECKING:
    from ..mesh import Mesh

HELP = ("@NAME text: message an agent · @all text: message every live agent · "
        "/release-dead NAME: drop a stale agent's claims · /help")


class LiveAgent(MeshError):
    """Refused: the agent whose claims should be released is still live."""

    exit_code = EXIT_BLOCKED


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
    """Release every claim held by ``name``, which must not be live; returns the released records.

    Raises :class:`LiveAgent` for a live agent (message it instead) and
    :class:`~pi_mesh_plugin.errors.UnknownAgent` when nothing is known of ``name``.
    """
    store = mesh.store
    rec = store.get_agent(name)

    def refuse_if_live(rec: Row | None) -> None:
        if rec is not None and store.is_live(rec):
            raise LiveAgent(f"{name} is live (pid {rec.get('pid')} on {rec.get('host')}): only a stale agent's "
                            f"claims can be released - message it instead (@{name} ...)")

    refuse_if_live(rec)
    held = [r for r in store.reservations() if r["holder"] == name]
    if rec is None and not held:
        raise UnknownAgent(name)
    if not held:
        return []
    refuse_if_live(store.get_agent(name))  # it may have come back while we looked
    gone: list[Row] = store.release(name, sorted({r["path"] for r in held}))
    if gone:
        mesh.record("release-dead", holder=name, paths=[r["path"] for r in gone])
    return gone

