"""What ``join`` tells an agent about the mail of the name it took.

See :mod:`pi_mesh_plugin.store.takeover` for whose the unread mail of a session
that is gone becomes; this module words it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh


def join_notices(mesh: Mesh, name: str, res: dict) -> list[str]:
    """The notices of one registration (``res`` as the store's ``register`` returns it)."""
    out = []
    old = res.get("replaced")
    if old:
        handed, aside = res.get("handed", 0), res.get("orphaned", 0)
        text = f"the name {name} was held by session {old}, which is gone; its claims were dropped"
        if handed:
            text += (f"; it was this harness in this checkout, so its {handed} unread message(s) are yours now "
                     "(read_inbox shows them)")
        elif aside:
            text += (f" and its {aside} unread message(s) set aside in inbox/{name}/orphaned/{old}/ "
                     "(`pi-mesh inbox --orphaned` shows them, `pi-mesh inbox --adopt` makes them yours)")
        out.append(text)
    try:
        earlier = mesh.store.orphaned(name)
    except OSError:
        return out
    more = {s: n for s, n in earlier.items() if s != old}
    if more:
        out.append(f"{sum(more.values())} unread message(s) of earlier sessions of {name} wait set aside "
                   f"({', '.join(more)}): `pi-mesh inbox --orphaned` shows them, `pi-mesh inbox --adopt` makes them "
                   "yours")
    return out


def orphaned_counts(mesh: Mesh) -> dict[str, int]:
    """``{agent: unread messages set aside}`` over every registered agent (for ``top``, ``doctor``, ``/mesh``)."""
    out = {}
    for rec in mesh.store.list_agents():
        try:
            n = sum(mesh.store.orphaned(rec["name"]).values())
        except (OSError, ValueError):
            continue
        if n:
            out[rec["name"]] = n
    return out
