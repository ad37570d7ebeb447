"""Claude Code's ``permissions.deny``, kept in step with what hooks.toml denies.

A tool hooks.toml denies to the agent (``deny = ["bash"]``) is refused by the
PreToolUse hook on every call; Claude Code also stops *offering* it to the
model when ``.claude/settings.json`` has a bare deny rule for it (``"Bash"``:
the tool is left out of the tool list sent to the model, and a call to it
anyway is answered "No such tool available").  ``pi-mesh install claude-code``
writes those rules:

* the mesh's tool names map to Claude Code's as the hook translates them back
  (``edit`` -> ``Edit``, ``MultiEdit``, ``NotebookEdit``; ``write`` ->
  ``Write``; ``bash`` -> ``Bash``; any other tool is its name lower-cased:
  ``read`` -> ``Read``, ``webfetch`` -> ``WebFetch``), patterns included
  (``deny = ["web*"]``);
* the agent is the one baked into the hook (``--agent``), else hooks.toml's
  ``[mesh] agent``, else ``[defaults]`` alone - a deny under
  ``[agents.<name>]`` for an agent named only at run time (``$PI_MESH_AGENT``)
  cannot be a project setting, and is refused by the hook all the same;
* the rules pi-mesh added are recorded in the file itself, under
  ``"pi-mesh": {"deny": [...]}`` (Claude Code ignores keys it does not know),
  so a re-install removes exactly those hooks.toml no longer asks for.  A
  rule that was in ``permissions.deny`` before pi-mesh wanted it is the
  user's: it is never recorded and never removed.

``doctor`` (:func:`stale_denies`) reports an install whose rules no longer
match hooks.toml: a denied tool without its rule (Claude Code still offers it;
the hook refuses it) or a rule of ours hooks.toml no longer asks for (a tool
the agent may use is hidden from it).
"""

from __future__ import annotations

import shlex

from ...config import AgentConfig, load_config
from ...errors import ConfigError, UsageError

RECORD_KEY = "pi-mesh"

# Claude Code's built-in tools (2.1.x) and the mesh's name for each (the hook's translation).
CLAUDE_TOOLS = {"Edit": "edit", "MultiEdit": "edit", "NotebookEdit": "edit", "Write": "write", "Bash": "bash",
                **{t: t.lower() for t in (
                    "Read", "Glob", "Grep", "LS", "WebFetch", "WebSearch", "Task", "Agent", "TodoWrite",
                    "BashOutput", "KillShell", "Skill", "SlashCommand", "ToolSearch", "Workflow", "SendMessage",
                    "ListAgents", "ReportFindings", "ScheduleWakeup", "CronCreate", "CronDelete", "CronList",
                    "TaskCreate", "TaskGet", "TaskList", "TaskStop", "TaskUpdate", "EnterWorktree", "ExitWorktree",
                    "ExitPlanMode")}}


def agent_config(root: str, agent: str | None) -> AgentConfig:
    """The configuration the installed hook decides with for ``agent`` (``None``: the project's default)."""
    cfg = load_config(root, agent)
    if agent is None and cfg.default_agent:
        cfg = load_config(root, cfg.default_agent)
    return cfg


def wanted_denies(cfg: AgentConfig) -> list[str]:
    """Claude Code's deny rules for the tools ``cfg`` denies, in a stable order."""
    return [tool for tool, name in CLAUDE_TOOLS.items() if cfg.denies(name)]


def hook_agent(command: object) -> str | None:
    """The ``--agent`` baked into one of our hook commands, if any."""
    if not isinstance(command, str):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, w in enumerate(words):
        if w == "--agent" and i + 1 < len(words):
            return words[i + 1]
        if w.startswith("--agent="):
            return w.split("=", 1)[1]
    return None


def _recorded(settings: dict) -> list[str]:
    rec = settings.get(RECORD_KEY)
    deny = rec.get("deny") if isinstance(rec, dict) else None
    return [e for e in deny if isinstance(e, str)] if isinstance(deny, list) else []


def sync_denies(settings: dict, wanted: list[str], where: str) -> tuple[list[str], list[str]]:
    """Make ``settings["permissions"]["deny"]`` hold ``wanted``; ``(added, removed)``.

    Only rules recorded as ours are ever removed; a wanted rule already there and not recorded is the
    user's and stays theirs."""
    permissions = settings.setdefault("permissions", {})
    if not isinstance(permissions, dict):
        raise UsageError(f"{where}: 'permissions' is a {type(permissions).__name__}, expected a JSON object; "
                         "the file was left untouched")
    deny = permissions.setdefault("deny", [])
    if not isinstance(deny, list):
        raise UsageError(f"{where}: permissions: 'deny' is a {type(deny).__name__}, expected a JSON array; "
                         "the file was left untouched")
    recorded = _recorded(settings)
    removed = [e for e in recorded if e not in wanted and e in deny]
    deny[:] = [e for e in deny if e not in removed]
    added = [e for e in wanted if e not in deny]
    deny.extend(added)
    ours = [e for e in wanted if e in added or e in recorded]
    if not deny:
        del permissions["deny"]
        if not permissions:
            del settings["permissions"]
    if ours:
        settings[RECORD_KEY] = {"deny": ours}
    else:
        settings.pop(RECORD_KEY, None)
    return added, removed


def stale_denies(root: str, rel: str, settings: dict, command: object) -> list[dict]:
    """``doctor`` findings for the Claude Code settings at ``rel`` whose hook of ours runs ``command``."""
    agent = hook_agent(command)
    try:
        cfg = agent_config(root, agent)
    except (ConfigError, ValueError):
        return []  # a broken hooks.toml is reported by everything else that reads it
    wanted = wanted_denies(cfg)
    permissions = settings.get("permissions")
    deny = permissions.get("deny") if isinstance(permissions, dict) else None
    have = [e for e in deny if isinstance(e, str)] if isinstance(deny, list) else []
    missing = [e for e in wanted if e not in have]
    extra = [e for e in _recorded(settings) if e not in wanted and e in have]
    who = f"agent {agent}" if agent else (f"agent {cfg.default_agent}" if cfg.default_agent else "every agent")
    found = []
    if missing:
        found.append({"kind": "stale-install", "path": rel, "fixed": False, "detail": (
            f"hooks.toml denies {', '.join(missing)} to {who} but permissions.deny lacks "
            f"{'it' if len(missing) == 1 else 'them'}: Claude Code still offers the tool (the hook refuses each "
            "call); run `pi-mesh install claude-code`")})
    if extra:
        found.append({"kind": "stale-install", "path": rel, "fixed": False, "detail": (
            f"permissions.deny has {', '.join(extra)} from an earlier pi-mesh install, which hooks.toml no longer "
            f"denies to {who}: Claude Code hides the tool; run `pi-mesh install claude-code`")})
    return found


def describe(wanted: list[str], removed: list[str], path: str) -> str | None:
    """The install's line about permissions.deny, or ``None`` when there is nothing to say."""
    parts = []
    if wanted:
        parts.append(f"denies {', '.join(wanted)} (denied in hooks.toml: Claude Code does not offer them)")
    if removed:
        parts.append(f"no longer denies {', '.join(removed)}")
    return f"pi-mesh: permissions.deny in {path}: " + "; ".join(parts) if parts else None
