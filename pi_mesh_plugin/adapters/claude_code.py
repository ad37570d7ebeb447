"""Claude Code: its PreToolUse hook input to a :class:`ToolCall`, and a block back to its deny output.

Input (stdin of ``pi-mesh hook claude-code``)::

    {"session_id": …, "transcript_path": …, "cwd": "/abs/project", "permission_mode": …,
     "hook_event_name": "PreToolUse", "tool_name": "Write",
     "tool_input": {"file_path": "/abs/path", "content": …}, "tool_use_id": …}

Tools: ``Edit``, ``MultiEdit`` -> ``edit``, ``Write`` -> ``write`` (``tool_input.file_path``),
``NotebookEdit`` -> ``edit`` (``tool_input.notebook_path``), ``Bash`` -> ``bash``
(``tool_input.command``); any other tool keeps its name, lower-cased.

A block is printed as ``{"hookSpecificOutput": {"hookEventName": "PreToolUse",
"permissionDecision": "deny", "permissionDecisionReason": …}}`` with exit 0; Claude Code
hands the reason to the model as the tool's error result.

This module is on the per-call path: it imports nothing beyond the records.  The click
command ``pi-mesh install claude-code`` lives in :mod:`.installers` and is resolved lazily
(``install_command`` below).
"""

from __future__ import annotations

from ..records import ToolCall
from ._hookinput import HookInputError, file_call, get_cwd, require_event, tool_input

HARNESS = "claude-code"
EVENT = "PreToolUse"
MATCHER = "Edit|Write|MultiEdit|NotebookEdit"

_FILE_TOOLS = {"Edit": ("edit", "file_path"), "MultiEdit": ("edit", "file_path"),
               "Write": ("write", "file_path"), "NotebookEdit": ("edit", "notebook_path")}


def translate(event: object, agent: str | None = None) -> ToolCall:
    """The tool call a PreToolUse event describes; :class:`HookInputError` if it is malformed."""
    ev = require_event(event, EVENT)
    name = ev.get("tool_name")
    if not isinstance(name, str) or not name:
        raise HookInputError("tool_name is missing or not a string")
    cwd = get_cwd(ev)
    args = tool_input(ev)
    if name in _FILE_TOOLS:
        tool, key = _FILE_TOOLS[name]
        return file_call(tool, name, args, key, cwd, agent, HARNESS)
    if name == "Bash":
        command = args.get("command")
        if not isinstance(command, str):
            raise HookInputError("Bash: tool_input.command is missing or not a string")
        return ToolCall(tool="bash", input=args, paths=(), agent=agent, cwd=cwd, harness=HARNESS, raw_tool=name)
    return ToolCall(tool=name.lower(), input=args, paths=(), agent=agent, cwd=cwd, harness=HARNESS, raw_tool=name)


def deny_output(reason: str) -> str:
    import json

    return json.dumps({"hookSpecificOutput": {"hookEventName": EVENT, "permissionDecision": "deny",
                                              "permissionDecisionReason": reason}}, ensure_ascii=False)


def __getattr__(name: str) -> object:
    if name == "install_command":
        from .installers import claude_code_install

        return claude_code_install
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
