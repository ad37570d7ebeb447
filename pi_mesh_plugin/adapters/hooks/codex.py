"""Codex CLI: its PreToolUse hook input to a :class:`ToolCall`, and a block back to its deny output.

Codex (``developers.openai.com/codex/hooks``) runs command hooks from ``hooks.json``
next to its config layers (``~/.codex/hooks.json``, ``<repo>/.codex/hooks.json``) with
the same wire format as Claude Code.  File edits go through ``apply_patch``, whose
``tool_input.command`` is the raw patch; the files it touches are named by its headers::

    *** Begin Patch
    *** Add File: path        *** Update File: path        *** Delete File: path
    *** Move to: path         (after an Update: the rename target)
    *** End Patch

Paths are relative to the event's ``cwd`` (absolute ones are taken as they are).
``apply_patch`` -> ``edit`` with every such path; ``Bash`` -> ``bash``.  A block is the
``hookSpecificOutput`` deny object of Claude Code, exit 0.

Codex's PreToolUse hooks cannot rewrite a call's input, so its shell commands are
checked by the parser alone: no ``allow_output`` here, the sandbox is not applied
(``pi-mesh run -- CMD`` is).

``PostToolUse`` (the same fields plus ``tool_response``, after ``apply_patch`` or ``Bash``
ran) is translated the same way and handed to the post-call hook (activity tracking):
nothing on stdout, always exit 0.
"""

from __future__ import annotations

from ...records import ToolCall
from .hookinput import (
    HookInputError,
    check_path,
    other_call,
    pretooluse_deny,
    shell_call,
    tool_event,
)

HARNESS = "codex"
EVENT = "PreToolUse"
MATCHER = "apply_patch"
POST_EVENT = "PostToolUse"
POST_MATCHER = "apply_patch|Bash"
_HEADERS = ("*** Add File:", "*** Update File:", "*** Delete File:", "*** Move to:")


def patch_paths(patch: str) -> list[str]:
    """The paths named by the file headers of an ``apply_patch`` body, in order, without duplicates."""
    out: list[str] = []
    for line in patch.splitlines():
        line = line.strip()
        for head in _HEADERS:
            if line.startswith(head):
                path = check_path(line[len(head):].strip(), f"apply_patch: {head[4:-1]} header")
                if path not in out:
                    out.append(path)
                break
    return out


def translate(event: object, agent: str | None = None) -> ToolCall:
    name, cwd, args = tool_event(event, (EVENT, POST_EVENT))
    if name == "apply_patch":
        patch = args.get("command")
        if not isinstance(patch, str):
            raise HookInputError("apply_patch: tool_input.command (the patch) is missing or not a string")
        paths = patch_paths(patch)
        if not paths:
            raise HookInputError("apply_patch: the patch names no file (no *** Add/Update/Delete File header)")
        return ToolCall(tool="edit", input=args, paths=tuple(paths), agent=agent, cwd=cwd, harness=HARNESS,
                        raw_tool=name)
    if name == "Bash":
        command = args.get("command")
        if isinstance(command, list) and all(isinstance(c, str) for c in command):
            import shlex

            args = {**args, "command": shlex.join(command)}
        return shell_call(name, args, cwd, agent, HARNESS)
    return other_call(name.lower(), name, args, cwd, agent, HARNESS)


deny_output = pretooluse_deny
