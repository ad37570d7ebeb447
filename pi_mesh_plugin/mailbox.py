"""Sending, and what ``join`` tells an agent about the mail of the name it took.

:func:`send` and :func:`broadcast` (behind :meth:`Mesh.send` and
:meth:`Mesh.broadcast`) validate, ask the governors
(:func:`pi_mesh_plugin.limits.check`: refused means nothing delivered), deliver
durably, then record a ``message`` feed event carrying the text's digest (what
the governors count next time).  See :mod:`pi_mesh_plugin.store.takeover` for
whose the unread mail of a session that is gone becomes; :func:`join_notices`
words it.
"""

from __future__ import annotations

from .clock import iso, new_id
from .errors import TooLarge, UnknownAgent, UsageError
from .names import validate_name
from .records import Message

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh

MAX_TEXT = 64 * 1024


def _record(sender: str, to: str, text: str, urgent: bool, reply_to: str | None, msg_id: str, created: str,
            broadcast: bool = False, thread: str | None = None) -> dict:
    rec = {"schema": 1, "id": msg_id, "from": sender, "to": to, "text": text, "urgent": bool(urgent),
           "reply_to": reply_to, "thread": thread, "created": created}
    if broadcast:
        rec["broadcast"] = True
    return rec


def check_text(text: str) -> None:
    if not isinstance(text, str) or not text or text.isspace():  # isspace: the test strip() does, no copy
        raise UsageError("message text is empty")
    if len(text) > MAX_TEXT:
        raise TooLarge(f"message text is {len(text)} characters; the limit is {MAX_TEXT}")


def send(mesh: Mesh, to: str, text: str, urgent: bool = False, reply_to: str | None = None) -> Message:
    from .limits import check

    sender = mesh._need_agent()
    validate_name(to, "recipient")
    check_text(text)
    if reply_to is not None:
        validate_name(reply_to, "message id")
    if not mesh.store.has_agent(to):
        raise UnknownAgent(to)
    digest = check(mesh, sender, to, text)
    thread = None
    if reply_to:
        orig = mesh.store.get_message(sender, reply_to)
        thread = (orig.get("thread") or orig["id"]) if orig else reply_to
    t = mesh.now()
    rec = _record(sender, to, text, urgent, reply_to, new_id(t), iso(t), thread=thread)
    mesh.store.deliver([rec])
    mesh._feed("message", rec["created"], to=to, id=rec["id"], urgent=rec["urgent"], digest=digest)
    return Message.from_record(rec, read=False)


def broadcast(mesh: Mesh, text: str, urgent: bool = False) -> list[Message]:
    from .limits import check

    sender = mesh._need_agent()
    check_text(text)
    digest = check(mesh, sender, None, text)
    t = mesh.now()
    msg_id, created = new_id(t), iso(t)
    store = mesh.store  # records, not Agent objects: only the names of the live ones are needed
    names = [a["name"] for a in store.list_agents() if a["name"] != sender and store.is_live(a)]
    rec = _record(sender, "*", text, urgent, None, msg_id, created, broadcast=True)
    if names:
        store.broadcast(rec, names)
    mesh._feed("message", created, to="*", id=msg_id, recipients=len(names), urgent=bool(urgent), digest=digest)
    return [Message.from_record({**rec, "to": n}, read=False) for n in names]


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
