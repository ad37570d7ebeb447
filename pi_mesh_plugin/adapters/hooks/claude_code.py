"""Claude Code: its PreToolUse hook input to a :class:`ToolCall`, and a block back to its deny output.

Input (stdin of ``pi-mesh hook claude-code``)::

    {"session_id": …, "transcript_path": …, "cwd": "/abs/project", "permission_mode": …,
     "hook_event_name": "PreToolUse", "tool_name": "Write",
     "tool_input": {"file_path": "/abs/path", "content": …}, "tool_use_id": …}

Tools: ``Edit``, ``MultiEdit`` -> ``edit``, ``Write`` -> ``write`` (``tool_input.file_path``),
``NotebookEdit`` -> ``edit`` (``tool_input.notebook_path``), ``Bash`` -> ``bash``
(``tool_input.command``); any other tool keeps its name, lower-cased.

The same command handles ``PostToolUse`` (the same fields plus ``tool_response``), which
Claude Code sends after a call succeeded: the call is translated the same way and handed
to the post-call hook (activity tracking); it prints nothing and always exits 0.

A guarded Bash command the claims let through is allowed with ``updatedInput``: the
same input with the command wrapped to run in the sandbox (:func:`allow_output`).

A block is printed as ``{"hookSpecificOutput": {"hookEventName": "PreToolUse",
"permissionDecision": "deny", "permissionDecisionReason": …}}`` with exit 0; Claude Code
hands the reason to the model as the tool's error result.

This module is on the per-call path: it imports nothing beyond the records.  The click
command ``pi-mesh install claude-code`` lives in :mod:`.installers` and is resolved lazily
(``install_command`` below).
"""

from __future__ import annotations

from ...records import ToolCall
from .hookinput import file_call, other_call, pretooluse_deny, shell_call, tool_event

HARNESS = "claude-code"
EVENT = "PreToolUse"
MATCHER = "Edit|Write|MultiEdit|NotebookEdit"
POST_EVENT = "PostToolUse"
POST_MATCHER = "Edit|Write|MultiEdit|NotebookEdit|Bash"

_FILE_TOOLS = {"Edit": ("edit", "file_path"), "MultiEdit": ("edit", "file_path"),
               "Write": ("write", "file_path"), "NotebookEdit": ("edit", "notebook_path")}


def translate(event: object, agent: str | None = None) -> ToolCall:
    """The tool call a PreToolUse (or PostToolUse) event describes; :class:`HookInputError` if it is malformed."""
    name, cwd, args = tool_event(event, (EVENT, POST_EVENT))
    if name in _FILE_TOOLS:
        tool, key = _FILE_TOOLS[name]
        return file_call(tool, name, args, key, cwd, agent, HARNESS)
    if name == "Bash":
        return shell_call(name, args, cwd, agent, HARNESS)
    return other_call(name.lower(), name, args, cwd, agent, HARNESS)


deny_output = pretooluse_deny


def allow_output(tool_input: dict) -> str:
    """Let the call run with ``tool_input`` instead (the Bash command wrapped in the sandbox).  No
    ``permissionDecision``: Claude Code's own permission check still runs, on the rewritten input."""
    from ...jsonc import dumps

    return dumps({"hookSpecificOutput": {"hookEventName": EVENT, "updatedInput": tool_input}},
                      ensure_ascii=False)
