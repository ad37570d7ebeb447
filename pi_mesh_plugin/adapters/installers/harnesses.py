"""``pi-mesh install claude-code|codex|gemini``: wire the hook (and the MCP server) into a project.

Each installer merges into the harness's own project files without clobbering
what is there, and is idempotent: our entries are recognised by their command
(``… -m pi_mesh_plugin hook <harness>`` / ``… -m pi_mesh_plugin mcp``) and
updated in place; everything else is kept as it was, in its order.  A file that
is not valid JSON (or TOML) is reported and left untouched.

* Claude Code: ``.claude/settings.json`` (``hooks.PreToolUse``, matcher
  ``Edit|Write|MultiEdit|NotebookEdit|Bash``; ``hooks.PostToolUse`` for activity
  tracking, matcher ``Edit|Write|MultiEdit|NotebookEdit|Bash``) and ``.mcp.json`` (``mcpServers.pi-mesh``,
  approved in ``enabledMcpjsonServers`` unless listed in ``disabledMcpjsonServers``, its tools
  allowed by ``permissions.allow: ["mcp__pi-mesh"]``); ``permissions.deny`` gets a rule for each tool
  hooks.toml denies to the installed agent, so Claude Code does not offer it
  (:mod:`.claude_permissions`; the hook refuses it in any case).
* Codex: ``.codex/hooks.json`` (``hooks.PreToolUse``, matcher ``apply_patch|Bash``;
  ``hooks.PostToolUse``, matcher ``apply_patch|Bash``) and
  ``[mcp_servers.pi-mesh]`` appended to ``.codex/config.toml`` when absent.
* Gemini CLI: ``.gemini/settings.json`` (``hooks.BeforeTool``, matcher
  ``write_file|replace|run_shell_command``; ``hooks.AfterTool``, matcher
  ``write_file|replace|run_shell_command``; and ``mcpServers.pi-mesh``).

The post-call entry (same command) records edits, commits and test runs in the
agent's activity and the feed; it never blocks.

The pre-call matcher always includes the shell tool: whether ``bash`` is
guarded or denied is read from hooks.toml by the hook at call time, so no
re-install follows a change there; ``doctor`` reports an installed matcher
that misses a tool, and Claude Code deny rules that no longer match hooks.toml (:func:`stale_installs`).  Commands use this interpreter's absolute path, so the hook works whatever the
harness's ``PATH`` is.
"""

from __future__ import annotations

import json
import os
import sys

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

import click

from ...errors import ConfigError, UsageError
from . import launch
from .claude_permissions import agent_config, describe, stale_denies, sync_denies, wanted_denies

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from ...config import AgentConfig

SERVER_NAME = "pi-mesh"
_HOOK_MARKS = ("-m pi_mesh_plugin hook ", "pi-mesh hook ")


def hook_command(harness: str, agent: str | None) -> str:
    """``pi-mesh hook HARNESS [--agent NAME]`` as the fastest correct start (see :mod:`.launch`)."""
    return launch.command(["hook", harness] + (["--agent", agent] if agent else []))


def mcp_server(harness: str, agent: str | None) -> dict:
    entry: dict = {"command": sys.executable, "args": ["-m", "pi_mesh_plugin", "mcp", "--harness", harness]}
    if agent:
        entry["env"] = {"PI_MESH_AGENT": agent}
    return entry


def _is_ours(command: object, harness: str) -> bool:
    return isinstance(command, str) and (any(m + harness in command for m in _HOOK_MARKS)
                                         or (launch.MARK in command and f" hook {harness}" in command))


def read_json_object(path: str) -> dict:
    """The JSON object in ``path`` (``{}`` if absent); :class:`UsageError` if it is anything else."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{path} is not valid JSON ({e}); fix it first - it was left untouched") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} holds a JSON {type(data).__name__}, not an object; it was left untouched")
    return data


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    tmp = f"{path}.pi-mesh-{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_json(path: str, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _section(data: dict, key: str, kind: type, where: str) -> Any:  # dict | list
    value = data.setdefault(key, kind())
    if not isinstance(value, kind):
        raise UsageError(f"{where}: {key!r} is a {type(value).__name__}, expected a JSON "
                         f"{'object' if kind is dict else 'array'}; the file was left untouched")
    return value


def merge_hook(settings: dict, event: str, matcher: str, harness: str, hook: dict, where: str) -> None:
    """Put our ``hook`` under ``hooks.<event>`` for ``matcher``, replacing an earlier one of ours."""
    hooks = _section(settings, "hooks", dict, where)
    groups = _section(hooks, event, list, f"{where}: hooks")
    placed = False
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            continue
        mine = [h for h in group["hooks"] if isinstance(h, dict) and _is_ours(h.get("command"), harness)]
        if not mine:
            continue
        if placed:  # a duplicate of ours from an older install: drop it
            group["hooks"] = [h for h in group["hooks"] if h not in mine]
            continue
        group["matcher"] = matcher
        i = group["hooks"].index(mine[0])
        group["hooks"][i] = hook
        group["hooks"] = [h for h in group["hooks"] if h is hook or h not in mine]
        placed = True
    hooks[event] = [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]
    if not placed:
        hooks[event].append({"matcher": matcher, "hooks": [hook]})


def merge_mcp(container: dict, entry: dict, where: str) -> None:
    servers = _section(container, "mcpServers", dict, where)
    servers[SERVER_NAME] = entry


def matcher_for(matcher: str, shell_tool: str) -> str:
    """The harness's pre-call matcher: its edit tools and its shell tool, always - whether ``bash`` is guarded
    or denied is decided by the hook from hooks.toml at call time, so a change there needs no re-install."""
    return f"{matcher}|{shell_tool}"


# harness -> (settings file, pre-call event, adapter module, shell tool)
_INSTALLED = {"claude-code": (os.path.join(".claude", "settings.json"), "claude_code", "Bash"),
              "codex": (os.path.join(".codex", "hooks.json"), "codex", "Bash"),
              "gemini": (os.path.join(".gemini", "settings.json"), "gemini", "run_shell_command")}


def stale_installs(root: str) -> list[dict]:
    """``doctor`` findings: installed pre-call hooks of ours whose matcher misses a tool the hook must see
    (an install from an older version, or edited by hand), or whose command no longer starts (see
    :func:`.launch.stale`), and Claude Code settings whose deny rules no longer match what hooks.toml
    denies.  Files without our hook are not reported."""
    import importlib

    found = []
    for harness, (rel, module, shell_tool) in _INSTALLED.items():
        path = os.path.join(root, rel)
        if not os.path.exists(path):
            continue
        adapter = importlib.import_module(f"pi_mesh_plugin.adapters.hooks.{module}")
        try:
            settings = read_json_object(path)
            groups = settings.get("hooks", {}).get(adapter.EVENT, [])
        except (UsageError, AttributeError):
            continue  # not JSON or not our layout: install reports it when run
        need = set(matcher_for(adapter.MATCHER, shell_tool).split("|"))
        for group in groups if isinstance(groups, list) else []:
            if not isinstance(group, dict) or not any(
                    isinstance(h, dict) and _is_ours(h.get("command"), adapter.HARNESS) for h in group.get("hooks") or []):
                continue
            if harness == "claude-code":
                ours = next(h for h in group["hooks"] if isinstance(h, dict) and _is_ours(h.get("command"), "claude-code"))
                found += stale_denies(root, rel, settings, ours.get("command"))
            for h in group.get("hooks") or []:
                why = launch.stale(h.get("command")) if isinstance(h, dict) else None
                if why:
                    found.append({"kind": "stale-install", "path": rel, "fixed": False, "detail": (
                        f"the {adapter.EVENT} hook {why}; run `pi-mesh install {harness}`")})
            have = set(str(group.get("matcher", "")).split("|"))
            missing = sorted(need - have) if "*" not in have and group.get("matcher") not in ("", None) else []
            if missing:
                found.append({"kind": "stale-install", "path": rel, "fixed": False, "detail": (
                    f"the {adapter.EVENT} hook's matcher misses {', '.join(missing)}: those calls are not guarded; "
                    f"run `pi-mesh install {harness}`")})
    return found


def _config(root: str, agent: str | None) -> AgentConfig:
    try:
        return agent_config(root, agent)
    except ConfigError as e:
        raise UsageError(f"{e}; fix it first - nothing was installed") from None


def _project(ctx: click.Context) -> tuple[str, str | None]:
    from ...mesh import find_root

    obj = ctx.find_root().obj
    return find_root(getattr(obj, "root", None)), getattr(obj, "agent_name", None)


# Where each harness looks for the project files installed here, as tried with the real CLIs (tests/e2e):
# Codex walks up from its working directory to the project root; Claude Code and Gemini CLI read them only in
# the directory they are started in.
_START_IN_ROOT = {"claude-code": ("Claude Code", ".claude/settings.json"),
                  "gemini": ("Gemini CLI", ".gemini/settings.json")}


def _done(lines: list[str], root: str, harness: str) -> None:
    rel = os.path.relpath(os.path.realpath(os.getcwd()), os.path.realpath(root))
    if rel != "." and not rel.startswith(".."):
        lines.append(f"pi-mesh: you ran this in {rel}/, a subdirectory: installed for the project at {root}")
    if harness in _START_IN_ROOT:
        name, file = _START_IN_ROOT[harness]
        lines.append(f"pi-mesh: {name} reads {file} only in the directory it starts in: start it in {root}; "
                     f"{name} started in a subdirectory is NOT guarded by this install")
    else:
        lines.append(f"pi-mesh: Codex finds {root}/.codex/ when started in any subdirectory of the project "
                     "(it looks up to the git top level)")
    for line in lines:
        click.echo(line)


_agent_option = click.option("--agent", metavar="NAME", help="Bake this agent name into the hook and the MCP "
                             "server (default: $PI_MESH_AGENT of the harness at run time).")
_no_mcp_option = click.option("--no-mcp", is_flag=True, help="Install only the hook, not the MCP server entry.")


def _installer(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """``pi-mesh install <name>`` with the options every harness installer takes (--agent, --no-mcp)."""
    def wrap(f: Callable[..., None]) -> click.Command:
        return click.command(name)(_agent_option(_no_mcp_option(click.pass_context(f))))
    return wrap


def _agent(ctx: click.Context, agent: str | None) -> str | None:
    from ...names import validate_name

    _, global_agent = _project(ctx)
    agent = agent or global_agent
    return validate_name(agent) if agent else None


def _start(ctx: click.Context, agent: str | None, adapter: ModuleType, shell_tool: str) -> tuple[str, str, str | None, dict]:
    """``(root, matcher, agent, hook entry)`` for installing ``adapter``'s hook in the current project."""
    root, _ = _project(ctx)
    matcher = matcher_for(adapter.MATCHER, shell_tool)
    agent = _agent(ctx, agent)
    return root, matcher, agent, {"type": "command", "command": hook_command(adapter.HARNESS, agent)}


@_installer("claude-code")
def claude_code_install(ctx: click.Context, agent: str | None, no_mcp: bool) -> None:
    """Add the pi-mesh PreToolUse and PostToolUse hooks to .claude/settings.json and the MCP server to .mcp.json."""
    from ..hooks import claude_code as adapter

    root, matcher, agent, hook = _start(ctx, agent, adapter, "Bash")
    settings_path = os.path.join(root, ".claude", "settings.json")
    mcp_path = os.path.join(root, ".mcp.json")
    settings = read_json_object(settings_path)
    mcp = read_json_object(mcp_path) if not no_mcp else {}
    merge_hook(settings, adapter.EVENT, matcher, adapter.HARNESS, hook, settings_path)
    merge_hook(settings, adapter.POST_EVENT, adapter.POST_MATCHER, adapter.HARNESS, dict(hook), settings_path)
    wanted = wanted_denies(_config(root, agent))
    _, removed = sync_denies(settings, wanted, settings_path)
    if not no_mcp:
        merge_mcp(mcp, mcp_server(adapter.HARNESS, agent), mcp_path)
        disabled = settings.get("disabledMcpjsonServers")
        if not (isinstance(disabled, list) and SERVER_NAME in disabled):
            enabled = _section(settings, "enabledMcpjsonServers", list, settings_path)
            if SERVER_NAME not in enabled:
                enabled.append(SERVER_NAME)
        # The mesh's tools only coordinate (claims, messages): let them run without a prompt.
        permissions = _section(settings, "permissions", dict, settings_path)
        allow = _section(permissions, "allow", list, f"{settings_path}: permissions")
        if f"mcp__{SERVER_NAME}" not in allow:
            allow.append(f"mcp__{SERVER_NAME}")
    write_json(settings_path, settings)
    lines = [f"pi-mesh: hook installed in {settings_path} ({adapter.EVENT}, matcher {matcher}; "
             f"{adapter.POST_EVENT} for activity, matcher {adapter.POST_MATCHER})"]
    denies = describe(wanted, removed, settings_path)
    if denies:
        lines.append(denies)
    if not no_mcp:
        write_json(mcp_path, mcp)
        lines.append(f"pi-mesh: MCP server {SERVER_NAME!r} installed in {mcp_path}; its tools are allowed in "
                     "permissions.allow, which Claude Code honours once you have trusted the project")
    _done(lines, root, "claude-code")


@_installer("codex")
def codex_install(ctx: click.Context, agent: str | None, no_mcp: bool) -> None:
    """Add the pi-mesh PreToolUse and PostToolUse hooks to .codex/hooks.json and the MCP server to .codex/config.toml."""
    from ..hooks import codex as adapter

    root, matcher, agent, hook = _start(ctx, agent, adapter, "Bash")
    hooks_path = os.path.join(root, ".codex", "hooks.json")
    config_path = os.path.join(root, ".codex", "config.toml")
    data = read_json_object(hooks_path)
    merge_hook(data, adapter.EVENT, matcher, adapter.HARNESS, hook, hooks_path)
    merge_hook(data, adapter.POST_EVENT, adapter.POST_MATCHER, adapter.HARNESS, dict(hook), hooks_path)
    toml_text = _codex_mcp_toml(config_path, agent) if not no_mcp else None
    write_json(hooks_path, data)
    lines = [f"pi-mesh: hook installed in {hooks_path} ({adapter.EVENT}, matcher {matcher}; "
             f"{adapter.POST_EVENT} for activity, matcher {adapter.POST_MATCHER})"]
    if toml_text is not None:
        write_text(config_path, toml_text)
        lines.append(f"pi-mesh: MCP server {SERVER_NAME!r} added to {config_path}")
    elif not no_mcp:
        lines.append(f"pi-mesh: {config_path} already has [mcp_servers.{SERVER_NAME}]; left as it is")
    lines.append("pi-mesh: Codex reads project .codex/ files only in a trusted project, and runs a new hook only "
                 "once you have trusted it (or with --dangerously-bypass-hook-trust in vetted automation)")
    _done(lines, root, "codex")


def _codex_mcp_toml(path: str, agent: str | None) -> str | None:
    """The new text of ``.codex/config.toml`` with our MCP server appended, or ``None`` if it has one."""
    import tomllib

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML ({e}); fix it first - it was left untouched") from None
    servers = data.get("mcp_servers", {})
    if isinstance(servers, dict) and SERVER_NAME in servers:
        return None
    entry = mcp_server("codex", agent)
    block = [f"[mcp_servers.{SERVER_NAME}]", f"command = {json.dumps(entry['command'])}",
             f"args = [{', '.join(json.dumps(a) for a in entry['args'])}]"]
    if agent:
        block.append(f"env = {{ PI_MESH_AGENT = {json.dumps(agent)} }}")
    sep = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
    new = text + sep + ("\n" if text.strip() else "") + "\n".join(block) + "\n"
    tomllib.loads(new)  # never write a file we could not read back
    return new


@_installer("gemini")
def gemini_install(ctx: click.Context, agent: str | None, no_mcp: bool) -> None:
    """Add the pi-mesh BeforeTool and AfterTool hooks and the MCP server to .gemini/settings.json."""
    from ..hooks import gemini as adapter

    root, matcher, agent, hook = _start(ctx, agent, adapter, "run_shell_command")
    path = os.path.join(root, ".gemini", "settings.json")
    settings = read_json_object(path)
    merge_hook(settings, adapter.EVENT, matcher, adapter.HARNESS,
               {"name": SERVER_NAME, **hook, "description": "pi-mesh: block writes to paths another agent has reserved"},
               path)
    merge_hook(settings, adapter.POST_EVENT, adapter.POST_MATCHER, adapter.HARNESS,
               {"name": SERVER_NAME, **hook, "description": "pi-mesh: record edits, commits and test runs"}, path)
    if not no_mcp:
        merge_mcp(settings, mcp_server(adapter.HARNESS, agent), path)
    write_json(path, settings)
    lines = [f"pi-mesh: hook installed in {path} ({adapter.EVENT}, matcher {matcher}; "
             f"{adapter.POST_EVENT} for activity, matcher {adapter.POST_MATCHER})"]
    if not no_mcp:
        lines.append(f"pi-mesh: MCP server {SERVER_NAME!r} installed in {path}")
    if not agent:
        lines.append("pi-mesh: note: Gemini CLI runs hooks in a sanitized environment; if $PI_MESH_AGENT does not "
                     "reach the hook, reinstall with --agent NAME")
    _done(lines, root, "gemini")
