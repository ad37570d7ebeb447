"""Shared checks for the per-call hook inputs (Claude Code, Codex, Gemini CLI).

Standard library only: this is on the per-call guard path.  Everything that is
not the shape a harness documents raises :class:`HookInputError`, which the hook
command turns into a block (never a silent allow).
"""

from __future__ import annotations

from ..records import ToolCall

MAX_PATH = 4096


class HookInputError(ValueError):
    """The hook input is not what the harness documents."""


def require_event(event: object, expected: str) -> dict:
    if not isinstance(event, dict):
        raise HookInputError(f"the hook input is a JSON {type(event).__name__}, not an object")
    name = event.get("hook_event_name")
    if name is not None and name != expected:
        raise HookInputError(f"this hook handles {expected} events, not {name!r}")
    return event


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


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
