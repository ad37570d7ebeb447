"""Gemini CLI: its BeforeTool hook input to a :class:`ToolCall`, and a block back to its deny output.

Gemini CLI (``geminicli.com/docs/hooks``) runs command hooks from the ``hooks`` object of
``settings.json`` (project: ``.gemini/settings.json``).  ``BeforeTool`` input carries
``tool_name`` and ``tool_input``: ``write_file`` -> ``write`` and ``replace`` -> ``edit`` with
``tool_input.file_path``; ``run_shell_command`` -> ``bash`` with ``tool_input.command``.

A block is stdout holding only ``{"decision": "deny", "reason": …}`` with exit 0; the
reason reaches the model as the tool's error.  (Exit codes other than 0 and 2 only warn
in Gemini CLI and let the call run, so errors use exit 2 with the reason on stderr.)

``AfterTool`` (the same fields plus ``tool_response``, whose ``error`` is set when the
tool failed) is translated the same way and handed to the post-call hook (activity
tracking): nothing on stdout, always exit 0.
"""

from __future__ import annotations

from ...records import ToolCall
from .hookinput import file_call, other_call, shell_call, tool_event

HARNESS = "gemini"
EVENT = "BeforeTool"
MATCHER = "write_file|replace"
POST_EVENT = "AfterTool"
POST_MATCHER = "write_file|replace|run_shell_command"
_FILE_TOOLS = {"write_file": "write", "replace": "edit"}


def translate(event: object, agent: str | None = None) -> ToolCall:
    name, cwd, args = tool_event(event, (EVENT, POST_EVENT))
    if name in _FILE_TOOLS:
        return file_call(_FILE_TOOLS[name], name, args, "file_path", cwd, agent, HARNESS)
    if name == "run_shell_command":
        return shell_call(name, args, cwd, agent, HARNESS)
    return other_call(name, name, args, cwd, agent, HARNESS)


def deny_output(reason: str) -> str:
    from ...jsonc import dumps

    return dumps({"decision": "deny", "reason": reason}, ensure_ascii=False)
