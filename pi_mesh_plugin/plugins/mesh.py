"""The built-in plugin: the reservation guard and the mesh's tools.

Tools: ``send_message``, ``read_inbox``, ``message_status``, ``reserve``,
``release``, ``list_agents``.  Their results are short texts written for a model to read,
with the facts a program needs in the same words (names, ids, paths).
"""

from __future__ import annotations

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..hookspecs import Register
    from ..mesh import Mesh
    from ..records import Block, Message, ToolCall


@hookimpl
def pi_mesh_pre_tool_call(call: ToolCall, mesh: Mesh) -> Block | None:
    """The claims: a write into another live agent's claim is blocked (:mod:`pi_mesh_plugin.guard`)."""
    from ..guard import check_call

    return check_call(mesh, call)


@hookimpl
def pi_mesh_post_tool_call(call: ToolCall, result: dict, mesh: Mesh) -> None:
    """Activity tracking: edits, commits and test runs in the feed and the registry (see .activity)."""
    from .activity import track

    track(mesh, call, result)


@hookimpl
def pi_mesh_register_tools(register: Register) -> None:
    register("send_message", "Send a message to another agent in this repository (or to all with to='*'). "
             "Use it to coordinate: ask a holder to release a path, announce what you are doing, reply to a message.",
             {"type": "object", "additionalProperties": False, "required": ["to", "text"], "properties": {
                 "to": {"type": "string", "description": "agent name, or * for every live agent"},
                 "text": {"type": "string", "minLength": 1, "maxLength": 65536},
                 "urgent": {"type": "boolean", "default": False,
                            "description": "interrupt the recipient now instead of after its current work"},
                 "reply_to": {"type": "string", "description": "id of the message this answers"}}},
             send_message)
    register("read_inbox", "Read your messages from other agents (unread ones by default; they are then marked read).",
             {"type": "object", "additionalProperties": False, "properties": {
                 "all": {"type": "boolean", "default": False, "description": "include messages already read"},
                 "peek": {"type": "boolean", "default": False, "description": "do not mark them read"}}},
             read_inbox)
    register("message_status", "What became of messages you sent: delivered, shown to the recipient's model "
             "(through which harness, when), answered, or set aside. Without id: your last 10 messages.",
             {"type": "object", "additionalProperties": False, "properties": {
                 "id": {"type": "string", "description": "id of a message you sent (send_message returns it)"}}},
             message_status)
    register("reserve", "Claim files or directories before editing them, so other agents' edits there are blocked "
             "until you release them. A path ending in / (or an existing directory) claims everything beneath.",
             {"type": "object", "additionalProperties": False, "required": ["paths", "reason"], "properties": {
                 "paths": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                 "reason": {"type": "string", "minLength": 1, "maxLength": 1000,
                            "description": "what you are doing, shown to agents you block"},
                 "ttl": {"type": "string", "description": "lifetime such as 90s, 30m, 2h (default from hooks.toml)"},
                 "queue": {"type": "boolean", "default": False,
                           "description": "if another agent holds it, wait in line instead of failing: you are told "
                                          "(urgent message) the moment it is yours"}}},
             reserve)
    register("release", "Release your claims on these paths, or all your claims when no paths are given.",
             {"type": "object", "additionalProperties": False, "properties": {
                 "paths": {"type": "array", "items": {"type": "string", "minLength": 1}}}},
             release)
    register("list_agents", "List the agents in this repository: who is live, what they hold, what they are doing.",
             {"type": "object", "additionalProperties": False, "properties": {}},
             list_agents)


def send_message(mesh: Mesh, to: str, text: str, urgent: bool = False, reply_to: str | None = None) -> str:
    if to == "*":
        sent = mesh.broadcast(text, urgent=urgent)
        return f"sent to {len(sent)} agent(s): {', '.join(m.to for m in sent) or 'nobody else is live'}" + (
            f" (id {sent[0].id})" if sent else "")
    m = mesh.send(to, text, urgent=urgent, reply_to=reply_to)
    return f"sent to {to} (id {m.id}{', urgent' if urgent else ''})"


def format_message(m: Message) -> str:
    flags = [f for f, on in (("urgent", m.urgent), ("broadcast", m.broadcast), ("read", m.read)) if on]
    head = f"[{m.id}] from {m.sender} at {m.created}" + (f" ({', '.join(flags)})" if flags else "")
    if m.reply_to:
        head += f" in reply to {m.reply_to}"
    return head + "\n" + m.text


def read_inbox(mesh: Mesh, all: bool = False, peek: bool = False) -> str:  # noqa: A002 - the tool's argument name
    msgs = mesh.read_inbox(unread_only=not all, peek=peek, via="tool")
    if not msgs:
        return "no messages" if all else "no unread messages"
    return "\n\n".join(format_message(m) for m in msgs)


def message_status(mesh: Mesh, id: str | None = None) -> str:  # noqa: A002 - the tool's argument name
    from ..receipts import describe

    rows = mesh.receipts([id]) if id is not None else mesh.receipts(limit=10)
    if id is not None and not rows:
        from ..errors import UsageError, clip

        raise UsageError(f"no message {clip(id)} sent by {mesh.agent} is in any inbox")
    return "\n".join(describe(r) for r in rows) or "you have sent no messages"


def reserve(mesh: Mesh, paths: list[str], reason: str, ttl: str | None = None, queue: bool = False) -> str:
    made = mesh.reserve(paths, reason, ttl=ttl, queue=bool(queue))
    if not isinstance(made, list):
        return made.text
    return "reserved " + ", ".join(f"{r.shown_path()} until {r.expires}" for r in made)


def release(mesh: Mesh, paths: list[str] | None = None) -> str:
    if paths is not None and not paths:
        from ..errors import UsageError

        raise UsageError("release: paths is empty; omit it to release all your claims")
    gone = mesh.release(paths)
    if not gone:
        return "you held no matching claims; nothing released"
    return "released " + ", ".join(r.shown_path() for r in gone)


def waiters_by_holder(mesh: Mesh) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``({holder: ["src/auth/ (bob, carol)", ...]}, {waiter: ["src/auth/ (2nd, behind alice)", ...]})`` - the waiting
    line as ``agents``, ``list_agents`` and ``top`` show it."""
    from ..store.queue_rules import conflicting_holders, ordinal, position, shown_all

    tickets = mesh.waiting()
    if not tickets:
        return {}, {}
    alive = [r.to_record() for r in mesh.reservations()]
    held: dict[str, dict[str, list[str]]] = {}
    waits: dict[str, list[str]] = {}
    for t in tickets:
        holders = conflicting_holders(t["agent"], t["paths"], alive)
        place, _ = position(t, tickets)
        waits.setdefault(t["agent"], []).append(
            f"{shown_all(t['paths'])} ({ordinal(place)} in line, behind {', '.join(holders) or 'nobody'})")
        for h in holders:
            held.setdefault(h, {}).setdefault(shown_all(t["paths"]), []).append(t["agent"])
    return ({h: [f"{p} ({', '.join(ws)})" for p, ws in d.items()] for h, d in held.items()}, waits)


def list_agents(mesh: Mesh) -> str:
    claims: dict[str, list[str]] = {}
    for r in mesh.reservations():
        claims.setdefault(r.holder, []).append(r.shown_path())
    waited_on, waiting = waiters_by_holder(mesh)
    lines = []
    for a in mesh.agents():
        state = "live" if a.live else "gone"
        bits = [f"{a.name} ({state}{', ' + a.harness if a.harness else ''}{', you' if a.name == mesh.agent else ''})"]
        if a.status:
            bits.append(f"status: {a.status}")
        if a.activity and a.activity.get("last"):
            bits.append(f"last: {a.activity['last']}")
        if claims.get(a.name):
            bits.append("holds " + ", ".join(claims[a.name]))
        if waited_on.get(a.name):
            bits.append("waited for: " + "; ".join(waited_on[a.name]))
        if waiting.get(a.name):
            bits.append("waiting for " + "; ".join(waiting[a.name]))
        lines.append(" - ".join(bits))
    return "\n".join(lines) or "no agents registered"
