"""The wire side of ``pi-mesh serve``: request validation and message events.

Everything here is pure translation (no threads, no Mesh): the request errors
(:class:`BadRequest` and its codes), typed field access (:func:`_field`), the Pi
``tool_call`` to :class:`~pi_mesh_plugin.records.ToolCall` translation
(:func:`pi_tool_call`) and the ``message`` event pushed for each inbox message.
"""

from __future__ import annotations

from typing import Any

from ...records import Message, ToolCall

MAX_LINE = 64 << 20
PROTOCOL = 1


class BadRequest(Exception):
    """A request of the wrong shape (answered with ``code: bad_request``)."""

    code = "bad_request"


class NotJoinedYet(BadRequest):
    code = "not_joined"


class UnknownOp(BadRequest):
    code = "unknown_op"


def _one_line(text: object, limit: int = 2000) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(req: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = False,
           default: Any = None) -> Any:
    if name not in req or req[name] is None:
        if required:
            raise BadRequest(f"{req.get('op')}: missing field {name!r}")
        return default
    value = req[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        names = names.replace("str", "string").replace("dict", "object").replace("list", "array")
        raise BadRequest(f"{req.get('op')}: field {name!r} must be a {names}, not {type(value).__name__}")
    return value


def pi_tool_call(tool: str, tool_input: dict, cwd: str | None, agent: str | None) -> ToolCall:
    """Translate a Pi ``tool_call`` event into the core's :class:`ToolCall`.

    ``write {path, content}`` and ``edit {path, edits}`` (or the older
    ``{path, oldText, newText}``) write ``path``; ``bash {command}`` goes to the
    core as a bash call so its shell guard decides; anything else passes as is.
    """
    if tool in ("write", "edit"):
        path = tool_input.get("path")
        if not isinstance(path, str) or not path.strip():
            raise BadRequest(f"pre_tool_call: {tool}: input.path must be a non-empty string")
        return ToolCall(tool=tool, input=tool_input, paths=(path,), agent=agent, cwd=cwd, harness="pi",
                        raw_tool=tool)
    if tool == "bash":
        command = tool_input.get("command")
        if not isinstance(command, str):
            raise BadRequest("pre_tool_call: bash: input.command must be a string")
        return ToolCall(tool="bash", input={"command": command}, agent=agent, cwd=cwd, harness="pi", raw_tool=tool)
    return ToolCall(tool=tool, input=tool_input, agent=agent, cwd=cwd, harness="pi", raw_tool=tool)


def message_content(m: Message) -> str:
    """The text the model is shown for an incoming message."""
    kind = "Urgent message" if m.urgent else ("Broadcast" if m.broadcast else "Message")
    head = f"[pi-mesh] {kind} from agent {m.sender} (id {m.id}"
    if m.reply_to:
        head += f", in reply to {m.reply_to}"
    head += "):"
    hint = (f"(Reply with send_message(to=\"{m.sender}\", reply_to=\"{m.id}\", text=\"...\") if an answer is "
            f"needed.)")
    return f"{head}\n{m.text}\n{hint}"


def message_event(m: Message) -> dict[str, Any]:
    return {"event": "message", "id": m.id, "from": m.sender, "to": m.to, "text": m.text, "urgent": bool(m.urgent),
            "broadcast": bool(m.broadcast), "reply_to": m.reply_to, "thread": m.thread, "created": m.created,
            "content": message_content(m)}

