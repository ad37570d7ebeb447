"""``pi-mesh hook claude-code|codex|gemini [--agent NAME]``: guard one tool call of a per-call harness.

The harness starts this once per guarded tool call, with its hook input (JSON) on
stdin.  The per-harness module translates the input into a
:class:`~pi_mesh_plugin.records.ToolCall`; the core decides
(:func:`pi_mesh_plugin.host.decide`, the one decision of every entry point); the
module translates a block back.

* allow: nothing on stdout, exit 0;
* block: the harness's deny object on stdout, exit 0 (the reason - holder,
  reason, expiry - reaches the model as the tool's error);
* malformed input or an internal error: the reason on stderr and exit 2,
  which Claude Code, Codex and Gemini CLI all treat as "block this call and
  show the model stderr" - unless ``on_store_error = "allow"`` in hooks.toml,
  in which case the call is allowed with a one-line warning on stderr.

Never a traceback, never a silent allow.

The post-call event (Claude Code's and Codex's ``PostToolUse``, Gemini CLI's
``AfterTool``) goes to :func:`post` instead: the finished call, translated the
same way, is handed to the post-call hook (activity tracking -
:mod:`pi_mesh_plugin.plugins.activity` directly when ``mesh`` is the only
plugin, else ``PluginHost.post_tool_call``).  It never blocks and never fails
the harness: nothing on stdout, exit 0, a failure is one line on stderr.  The
agent is found as for the guard (``--agent``, ``$PI_MESH_AGENT``, hooks.toml,
else the agent this harness's own ``pi-mesh mcp`` joined as); an unnamed
caller records nothing.

Which project: ``$PI_MESH_ROOT``, else the git top level of the event's ``cwd``.
Which agent: ``--agent``, else ``$PI_MESH_AGENT``, else ``[mesh] agent`` in
hooks.toml; with none of them, a caller is checked against every claim -
except a claim whose holder was joined by the same harness (``pi-mesh mcp
--harness claude-code``, as installed) with an owner process that is an
ancestor of this process: the harness running this hook also runs the
holder's MCP server, so the caller *is* the holder.

This is the per-call fast path: it must not import click, pluggy, jsonschema,
filelock, dataclasses, typing or tomllib on an allowed call (a test enforces it).
"""

from __future__ import annotations

import os
import sys

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType


HARNESSES = {"claude-code": "claude_code", "claude": "claude_code", "codex": "codex", "gemini": "gemini"}
USAGE = "usage: pi-mesh hook {claude-code|codex|gemini} [--agent NAME]  (hook input as JSON on stdin)"
MAX_INPUT = 16 * 1024 * 1024
EXIT_BLOCK = 2


def _err(text: str) -> None:
    try:
        sys.stderr.write(text.rstrip("\n") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _parse_args(argv: list[str]) -> tuple[str, str | None]:
    if not argv or argv[0] in ("-h", "--help"):
        raise SystemExit(USAGE)
    harness, agent, rest = argv[0], None, argv[1:]
    while rest:
        a = rest.pop(0)
        if a == "--agent" and rest:
            agent = rest.pop(0)
        elif a.startswith("--agent="):
            agent = a.split("=", 1)[1]
        else:
            raise SystemExit(f"unexpected argument {a!r}; {USAGE}")
    if harness not in HARNESSES:
        raise SystemExit(f"unknown harness {harness!r}; {USAGE}")
    return harness, agent or None


def main(argv: list[str]) -> int:
    if argv[:1] == ["git-pre-commit"]:
        from .git_precommit import main as git_pre_commit

        return git_pre_commit(list(argv[1:]))
    try:
        harness, agent = _parse_args(list(argv))
    except SystemExit as e:
        _err(f"pi-mesh hook: {e.code}")
        return EXIT_BLOCK
    # __import__, not importlib.import_module: importing importlib costs this per-call process ~0.5 ms
    adapter = __import__(f"pi_mesh_plugin.adapters.hooks.{HARNESSES[harness]}", fromlist=["translate"])
    state: dict = {"agent": agent}
    try:
        return _run(adapter, harness, agent, state)
    except KeyboardInterrupt:
        return _fail(harness, "interrupted", state)
    except BaseException as e:  # noqa: BLE001 - every failure blocks (or warns, if configured to allow)
        from .hookinput import HookInputError

        if isinstance(e, HookInputError):
            why = f"malformed hook input: {e}"
        elif isinstance(e, SystemExit):
            why = f"exited early ({e.code})"
        else:
            from ...errors import MeshError

            why = str(e) if isinstance(e, MeshError) else f"internal error: {type(e).__name__}: {e}"
        if os.environ.get("PI_MESH_DEBUG"):
            import traceback

            traceback.print_exc()
        return _fail(harness, why, state)


def _read_event() -> object:
    from ...safejson import loads
    from .hookinput import HookInputError

    raw = sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(raw) > MAX_INPUT:
        raise HookInputError(f"the hook input is larger than {MAX_INPUT} bytes")
    if not raw.strip():
        raise HookInputError("no hook input on stdin (expected a JSON object)")
    try:
        return loads(raw)
    except ValueError as e:
        raise HookInputError(f"stdin is not JSON ({' '.join(str(e).split())[:200]})") from None


def _run(adapter: ModuleType, harness: str, agent: str | None, state: dict) -> int:
    event = _read_event()
    if isinstance(event, dict) and event.get("hook_event_name") == getattr(adapter, "POST_EVENT", None):
        return post(adapter, harness, agent, event)
    if isinstance(event, dict) and isinstance(event.get("cwd"), str):
        state["cwd"] = event["cwd"]
    call = adapter.translate(event, agent)
    from ...mesh import Mesh

    cwd = call.cwd if call.cwd and os.path.isdir(call.cwd) else None
    mesh = Mesh(None, agent, cwd=cwd)
    state["mesh"] = mesh
    if call.agent != mesh.agent:
        call = call.replace(agent=mesh.agent)
    if not call.cwd:
        call = call.replace(cwd=mesh.cwd)
    from ...host import decide

    block = decide(mesh, call)
    if block is not None and mesh.agent is None and block.holder:
        from ...identity import is_callers

        if is_callers(mesh.store, block.holder, adapter.HARNESS):
            me = block.holder
            # The harness running this hook owns the holder (its `pi-mesh mcp` joined as it).
            mesh = Mesh(None, me, cwd=cwd)
            state["mesh"] = mesh
            block = decide(mesh, call.replace(agent=me))
    if block is None:
        return 0
    _out(adapter.deny_output(block.message))
    return 0


def post(adapter: ModuleType, harness: str, agent: str | None, event: dict) -> int:
    """Hand a finished call to the post-call hook; always 0 (see the module docstring)."""
    try:
        from ...mesh import Mesh
        from .hookinput import HookInputError, post_result

        try:
            call = adapter.translate(event, agent)
        except HookInputError as e:
            raise HookInputError(f"malformed hook input: {e}") from None
        cwd = call.cwd if call.cwd and os.path.isdir(call.cwd) else None
        mesh = Mesh(None, agent, cwd=cwd)
        if mesh.agent is None:
            from ...identity import caller_agent

            me = caller_agent(mesh.store, adapter.HARNESS)
            if me is None:
                return 0  # an unnamed caller records nothing
            mesh = Mesh(None, me, cwd=cwd)
        call = call.replace(agent=mesh.agent, cwd=call.cwd or mesh.cwd)
        result = post_result(event)
        if list(mesh.config.plugins) == ["mesh"]:
            from ...plugins.activity import track

            track(mesh, call, result)
        else:
            from ...host import PluginHost

            PluginHost(mesh).post_tool_call(call, result)
    except BaseException as e:  # noqa: BLE001 - tracking never fails the harness's call
        if os.environ.get("PI_MESH_DEBUG"):
            import traceback

            traceback.print_exc()
        if isinstance(e, SystemExit):
            why = f"exited early ({e.code})"
        elif type(e).__module__.startswith("pi_mesh_plugin."):  # MeshError, HookInputError: their text says it
            why = str(e)
        else:
            why = f"internal error: {type(e).__name__}: {e}"
        _err(f"pi-mesh: warning: activity not recorded ({harness} {adapter.POST_EVENT} hook): {' '.join(why.split())}")
    return 0


def _fail(harness: str, why: str, state: dict) -> int:
    why = " ".join(str(why).split())
    if _fail_open(state):
        _err(f"pi-mesh: warning: {why} - the call is ALLOWED because on_store_error = \"allow\"")
        return 0
    _err(f"BLOCKED by pi-mesh ({harness} hook): {why}. Guarded calls are blocked while pi-mesh cannot "
         f"decide (on_store_error = \"block\"); run `pi-mesh doctor` in the project.")
    return EXIT_BLOCK


def _fail_open(state: dict) -> bool:
    """``on_store_error = "allow"`` for this agent?  Anything unreadable counts as no."""
    try:
        mesh = state.get("mesh")
        if mesh is not None:
            return bool(mesh.config.fail_open)
        from ...config import load_config
        from ...mesh import find_root

        cwd = state.get("cwd")
        cwd = cwd if isinstance(cwd, str) and os.path.isdir(cwd) else None
        agent = state.get("agent") or os.environ.get("PI_MESH_AGENT") or None
        return bool(load_config(find_root(None, cwd), agent).fail_open)
    except BaseException:  # noqa: BLE001 - cannot tell: fail closed
        return False
