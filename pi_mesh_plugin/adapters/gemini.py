"""Gemini CLI: its BeforeTool hook input to a :class:`ToolCall`, and a block back to its deny output.

Gemini CLI (``geminicli.com/docs/hooks``) runs command hooks from the ``hooks`` object of
``settings.json`` (project: ``.gemini/settings.json``).  ``BeforeTool`` input carries
``tool_name`` and ``tool_input``: ``write_file`` -> ``write`` and ``replace`` -> ``edit`` with
``tool_input.file_path``; ``run_shell_command`` -> ``bash`` with ``tool_input.command``.

A block is stdout holding only ``{"decision": "deny", "reason": …}`` with exit 0; the
reason reaches the model as the tool's error.  (Exit codes other than 0 and 2 only warn
in Gemini CLI and let the call run, so errors use exit 2 with the reason on stderr.)
"""

from __future__ import annotations

from ..records import ToolCall
from ._hookinput import HookInputError, file_call, get_cwd, require_event, tool_input

HARNESS = "gemini"
EVENT = "BeforeTool"
MATCHER = "write_file|replace"
_FILE_TOOLS = {"write_file": "write", "replace": "edit"}


def translate(event: object, agent: str | None = None) -> ToolCall:
    ev = require_event(event, EVENT)
    name = ev.get("tool_name")
    if not isinstance(name, str) or not name:
        raise HookInputError("tool_name is missing or not a string")
    cwd = get_cwd(ev)
    args = tool_input(ev)
    if name in _FILE_TOOLS:
        return file_call(_FILE_TOOLS[name], name, args, "file_path", cwd, agent, HARNESS)
    if name == "run_shell_command":
        command = args.get("command")
        if not isinstance(command, str):
            raise HookInputError("run_shell_command: tool_input.command is missing or not a string")
        return ToolCall(tool="bash", input=args, paths=(), agent=agent, cwd=cwd, harness=HARNESS, raw_tool=name)
    return ToolCall(tool=name, input=args, paths=(), agent=agent, cwd=cwd, harness=HARNESS, raw_tool=name)


def deny_output(reason: str) -> str:
    import json

    return json.dumps({"decision": "deny", "reason": reason}, ensure_ascii=False)


def __getattr__(name: str) -> object:
    if name == "install_command":
        from .installers import gemini_install

        return gemini_install
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
