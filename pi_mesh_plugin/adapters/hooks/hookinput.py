"""Shared checks and translation pieces for the per-call hook inputs (Claude Code, Codex, Gemini CLI).

Standard library only: this is on the per-call guard path.  Everything that is
not the shape a harness documents raises :class:`HookInputError`, which the hook
command turns into a block (never a silent allow).
"""

from __future__ import annotations

from ...records import ToolCall

MAX_PATH = 4096


class HookInputError(ValueError):
    """The hook input is not what the harness documents."""


def require_event(event: object, expected: str | tuple[str, ...]) -> dict:
    if not isinstance(event, dict):
        raise HookInputError(f"the hook input is a JSON {type(event).__name__}, not an object")
    kinds = (expected,) if isinstance(expected, str) else expected
    name = event.get("hook_event_name")
    if name is not None and name not in kinds:
        raise HookInputError(f"this hook handles {' and '.join(kinds)} events, not {name!r}")
    return event


def tool_event(event: object, expected: str | tuple[str, ...]) -> tuple[str, str | None, dict]:
    """``(tool_name, cwd, tool_input)`` of a hook event of kind ``expected`` (one, or any of several), each checked."""
    ev = require_event(event, expected)
    name = ev.get("tool_name")
    if not isinstance(name, str) or not name:
        raise HookInputError("tool_name is missing or not a string")
    return name, get_cwd(ev), tool_input(ev)


def get_cwd(event: dict) -> str | None:
    cwd = event.get("cwd")
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd.startswith("/") or "\x00" in cwd:
        raise HookInputError(f"cwd must be an absolute path, got {_short(cwd)}")
    return cwd


def tool_input(event: dict) -> dict:
    args = event.get("tool_input")
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise HookInputError(f"tool_input must be an object, got {_short(args)}")
    return args


def check_path(path: object, what: str) -> str:
    if not isinstance(path, str) or not path.strip():
        raise HookInputError(f"{what} is missing or not a non-empty string")
    if "\x00" in path or len(path) > MAX_PATH:
        raise HookInputError(f"{what} is not a usable path: {_short(path)}")
    return path


def file_call(tool: str, raw_tool: str, args: dict, key: str, cwd: str | None, agent: str | None,
              harness: str) -> ToolCall:
    path = check_path(args.get(key), f"{raw_tool}: tool_input.{key}")
    return ToolCall(tool=tool, input=args, paths=(path,), agent=agent, cwd=cwd, harness=harness, raw_tool=raw_tool)


def shell_call(raw_tool: str, args: dict, cwd: str | None, agent: str | None, harness: str) -> ToolCall:
    """A ``bash`` call whose ``tool_input.command`` is the command line."""
    if not isinstance(args.get("command"), str):
        raise HookInputError(f"{raw_tool}: tool_input.command is missing or not a string")
    return other_call("bash", raw_tool, args, cwd, agent, harness)


def other_call(tool: str, raw_tool: str, args: dict, cwd: str | None, agent: str | None, harness: str) -> ToolCall:
    """A call that names no path (the guard decides by its tool name alone)."""
    return ToolCall(tool=tool, input=args, paths=(), agent=agent, cwd=cwd, harness=harness, raw_tool=raw_tool)


def post_result(event: dict) -> dict:
    """The ``result`` handed to the post-call hook for a post-call event: ``{"ok": bool, "output": …}``.

    ``tool_response`` is the tool's result as the harness reports it; a failure is one that says so
    (``error`` - Gemini CLI's AfterTool -, ``is_error: true`` or ``success: false``)."""
    resp = event.get("tool_response")
    failed = isinstance(resp, dict) and (bool(resp.get("error")) or resp.get("is_error") is True
                                         or resp.get("success") is False)
    return {"ok": not failed, "output": resp}


def pretooluse_deny(reason: str) -> str:
    """The ``hookSpecificOutput`` deny object of a PreToolUse hook (Claude Code, Codex)."""
    from ...jsonc import dumps

    return dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                              "permissionDecisionReason": reason}}, ensure_ascii=False)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
