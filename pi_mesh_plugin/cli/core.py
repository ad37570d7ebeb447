"""Everyday commands: join, leave, agents, send, broadcast, inbox, reserve, release, claims, check, doctor, tool."""

from __future__ import annotations

import os
import sys
import time

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

import click

from ..clock import format_duration, parse_iso
from ..errors import EXIT_BLOCKED, UsageError

if TYPE_CHECKING:
    from . import Context

pass_ctx = click.pass_obj


@click.command()
@click.option("--name", help="Agent name (default: --agent, $PI_MESH_AGENT, or a generated one).")
@click.option("--pid", type=int, help="Owner process: the agent lives while it does (default: the calling shell). "
              "0 means heartbeat-only liveness.")
@click.option("--harness", help="What runs the agent (pi, claude-code, codex, gemini, script…).")
@click.option("--model", help="The model, when known.")
@click.option("--status", help="A status line others see.")
@pass_ctx
def join(ctx: Context, name: str | None, pid: int | None, harness: str | None, model: str | None, status: str | None) -> None:
    """Register an agent in this project's mesh."""
    mesh = ctx.mesh
    owner = os.getppid() if pid is None else pid
    if owner > 0:
        from ..liveness import process_alive

        if not process_alive(owner, None):
            raise UsageError(f"cannot join: --pid {owner}: no such process is running here (the agent would be dead from the "
                             "start); use --pid 0 for heartbeat-only liveness")
    agent = mesh.join(name, harness=harness, model=model, pid=owner, status=status)
    for n in mesh.notices:
        click.echo(f"pi-mesh: note: {n}", err=True)
    ctx.out(agent.to_dict(), f"joined as {agent.name} (owner pid {agent.pid}); "
            f"run `export PI_MESH_AGENT={agent.name}` to act as it")


@click.command()
@pass_ctx
def leave(ctx: Context) -> None:
    """Unregister the agent and release all its claims."""
    gone = ctx.mesh.leave()
    ctx.out({"left": gone}, f"{ctx.mesh.agent} left the mesh" if gone else f"{ctx.mesh.agent} was not registered")


def _ago(ts: str | None) -> str:
    if not ts:
        return "-"
    try:
        return format_duration(time.time() - parse_iso(ts)) + " ago"
    except ValueError:
        return "?"


@click.command()
@click.option("--live", "live_only", is_flag=True, help="Only live agents.")
@pass_ctx
def agents(ctx: Context, live_only: bool) -> None:
    """Who is here, what they hold, what they are doing."""
    mesh = ctx.mesh
    claims: dict[str, list[str]] = {}
    for r in mesh.reservations():
        claims.setdefault(r.holder, []).append(r.shown_path())
    from ..plugins.mesh import waiters_by_holder

    waited_on, waiting = waiters_by_holder(mesh)
    rows = []
    for a in mesh.agents(include_dead=not live_only):
        d = a.to_dict()
        d["claims"] = claims.get(a.name, [])
        d["waited_for"] = waited_on.get(a.name, [])
        d["waiting_for"] = waiting.get(a.name, [])
        d["unread"] = mesh.unread_count(a.name)
        rows.append(d)
    if ctx.json:
        ctx.out(rows)
        return
    if not rows:
        click.echo("no agents registered (join with `pi-mesh join --name NAME`)")
        return
    for d in rows:
        state = "live" if d["live"] else "GONE"
        act = (d.get("activity") or {}).get("last")
        line = (f"{d['name']:<20} {state:<4}  {d.get('harness') or '-':<11} pid {d['pid']}@{d['host']}  "
                f"seen {_ago(d['last_seen'])}  unread {d['unread']}")
        click.echo(line)
        if d.get("model"):
            click.echo(f"    model: {d['model']}")
        if d.get("status"):
            click.echo(f"    status: {d['status']}")
        if act:
            click.echo(f"    last: {act} ({_ago((d.get('activity') or {}).get('last_at'))})")
        did = _did(d.get("activity") or {})
        if did:
            click.echo(f"    did: {did}")
        if d["claims"]:
            click.echo(f"    holds: {', '.join(d['claims'])}")
        if d["waited_for"]:
            click.echo(f"    waited for: {'; '.join(d['waited_for'])}")
        if d["waiting_for"]:
            click.echo(f"    waiting for: {'; '.join(d['waiting_for'])}")
    from ..authorship.radar import summary

    radar = summary(mesh)
    if radar:
        click.echo(radar)


def _did(act: dict) -> str:
    """``3 edits, 1 commit, 2 test runs; touched a.py, b.py (+4 more)`` from an agent's activity record."""
    counts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in
              ((act.get("edits", 0), "edit"), (act.get("commits", 0), "commit"), (act.get("test_runs", 0), "test run"))
              if n]
    files = act.get("files_touched") or []
    shown = ", ".join(files[-3:][::-1]) + (f" (+{len(files) - 3} more)" if len(files) > 3 else "")
    return "; ".join(x for x in (", ".join(counts), f"touched {shown}" if files else "") if x)


@click.command()
@click.argument("to")
@click.argument("text")
@click.option("--urgent", is_flag=True, help="Interrupt the recipient now.")
@click.option("--reply-to", metavar="ID", help="Id of the message this answers (threads it).")
@click.option("--wait-shown", "wait_shown", metavar="DURATION",
              help="Block until the message entered the recipient model's context (exit 0) or DURATION passes "
              "(exit 3; the message stays delivered).")
@pass_ctx
def send(ctx: Context, to: str, text: str, urgent: bool, reply_to: str | None, wait_shown: str | None) -> None:
    """Send TEXT to the agent TO."""
    timeout = _duration("--wait-shown", wait_shown)
    m = ctx.mesh.send(to, _text(text), urgent=urgent, reply_to=reply_to)
    if timeout is None:
        ctx.out(m.to_dict(), f"sent {m.id} to {to}")
        return
    from ..receipts import describe
    from ..receipts import wait_shown as wait

    if not ctx.json:
        click.echo(f"sent {m.id} to {to}; waiting up to {format_duration(timeout)} for it to be shown", err=True)
    rows = wait(ctx.mesh, [m.id], timeout)
    if rows is None:
        rows = ctx.mesh.receipts([m.id])
        ctx.out({"message": m.to_dict(), "receipts": rows, "shown": False},
                f"not shown within {format_duration(timeout)}: " + "; ".join(describe(r) for r in rows))
        sys.exit(EXIT_BLOCKED)
    ctx.out({"message": m.to_dict(), "receipts": rows, "shown": True}, "\n".join(describe(r) for r in rows))


def _duration(option: str, value: str | None) -> float | None:
    if value is None:
        return None
    from ..clock import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--limit", type=int, default=20, show_default=True, help="The last N messages (without IDS).")
@pass_ctx
def sent(ctx: Context, ids: tuple[str, ...], limit: int) -> None:
    """What became of your messages: delivered, read, shown (via which adapter, when), answered, set aside."""
    from ..receipts import describe

    rows = ctx.mesh.receipts(list(ids)) if ids else ctx.mesh.receipts(limit=max(0, limit))
    if ids and not rows:
        raise UsageError(f"no message {', '.join(ids)[:200]} sent by {ctx.mesh.agent} is in any inbox")
    ctx.out(rows, "\n".join(describe(r) for r in rows) or "no messages sent")


@click.command()
@click.argument("text")
@click.option("--urgent", is_flag=True)
@pass_ctx
def broadcast(ctx: Context, text: str, urgent: bool) -> None:
    """Send TEXT to every live agent."""
    sent = ctx.mesh.broadcast(_text(text), urgent=urgent)
    ctx.out([m.to_dict() for m in sent], f"sent to {len(sent)} agent(s)" + (f" as {sent[0].id}" if sent else ""))


def _text(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include messages already read.")
@click.option("--peek", is_flag=True, help="Do not mark them read.")
@click.option("--orphaned", is_flag=True, help="Show the unread mail of earlier sessions of your name, set aside.")
@click.option("--adopt", "adopt", metavar="SESSION|all", help="Make the set-aside mail of that session (or all) yours.")
@pass_ctx
def inbox(ctx: Context, show_all: bool, peek: bool, orphaned: bool, adopt: str | None) -> None:
    """Read your messages (unread ones, then marked read)."""
    from ..plugins.mesh import format_message

    if adopt is not None:
        n = ctx.mesh.adopt(None if adopt == "all" else [adopt])
        ctx.out({"adopted": n}, f"adopted {n} message(s): they are your unread mail now (`pi-mesh inbox`)"
                if n else "nothing set aside to adopt")
        return
    if orphaned:
        aside = ctx.mesh.orphaned()
        ctx.out([{**m.to_dict(), "session": s} for s, m in aside], "\n\n".join(
            f"(set aside from session {s})\n{format_message(m)}" for s, m in aside) or "no mail set aside")
        return
    msgs = ctx.mesh.read_inbox(unread_only=not show_all, peek=peek, via="cli")
    ctx.out([m.to_dict() for m in msgs],
            "\n\n".join(format_message(m) for m in msgs) or ("no messages" if show_all else "no unread messages"))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--reason", required=True, help="What you are doing (shown to agents you block).")
@click.option("--ttl", help="Lifetime: 90s, 30m, 2h (default from hooks.toml).")
@click.option("--queue", "queue", is_flag=True,
              help="If taken, wait in line: you get it (and an urgent message) when the holders release it.")
@click.option("--wait", "wait", metavar="DURATION",
              help="Queue and block until granted (exit 0) or DURATION passes (exit 3; you leave the line).")
@pass_ctx
def reserve(ctx: Context, paths: tuple[str, ...], reason: str, ttl: str | None, queue: bool,
            wait: str | None) -> None:
    """Claim PATHS (a trailing / or an existing directory claims everything beneath)."""
    from ..clock import parse_duration
    from ..records import Queued

    timeout = None
    if wait is not None:
        try:
            timeout = parse_duration(wait)
        except ValueError as e:
            raise UsageError(f"--wait: {e}") from None
    made = ctx.mesh.reserve(list(paths), reason, ttl=ttl, queue=queue or wait is not None)
    if isinstance(made, Queued):
        if timeout is None:
            ctx.out({"queued": made.to_dict()}, made.text)
            return
        from ..waiting import wait_for_grant

        if not ctx.json:
            click.echo(made.text, err=True)
        got = wait_for_grant(ctx.mesh, made, timeout)
        if got is None:
            ctx.out({"queued": made.to_dict(), "granted": None},
                    f"timed out after {format_duration(timeout)} waiting for {', '.join(made.paths)}; left the line")
            sys.exit(EXIT_BLOCKED)
        made = got
    ctx.out([r.to_dict() for r in made], "\n".join(f"reserved {r.shown_path()} until {r.expires}" for r in made))


@click.command()
@click.argument("paths", nargs=-1)
@pass_ctx
def release(ctx: Context, paths: tuple[str, ...]) -> None:
    """Release your claims on PATHS, or all of them."""
    gone = ctx.mesh.release(list(paths) or None)
    ctx.out([r.to_dict() for r in gone],
            "\n".join(f"released {r.shown_path()}" for r in gone) or "nothing to release")


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Include expired claims and claims of agents that are gone.")
@pass_ctx
def claims(ctx: Context, show_all: bool) -> None:
    """Every claim: holder, path, reason, age, expiry."""
    rows = ctx.mesh.reservations(live_only=not show_all)
    lines = []
    now = time.time()
    for r in rows:
        try:
            left = format_duration(parse_iso(r.expires) - now)
        except ValueError:
            left = "?"
        lines.append(f"{r.shown_path():<40} {r.holder:<20} {_ago(r.created):<10} expires in {left:<8} {r.reason}")
    ctx.out([r.to_dict() for r in rows], "\n".join(lines) or "no claims")


@click.command()
@click.argument("path")
@click.option("--tool", default="edit", show_default=True, help="The tool that would write it.")
@pass_ctx
def check(ctx: Context, path: str, tool: str) -> None:
    """Would TOOL on PATH be blocked?  Exit 3 and the holder's name if so (the guard's own answer)."""
    from ..host import decide
    from ..records import Block, ToolCall

    mesh = ctx.mesh
    canonical = mesh.canonical(path)  # a path that is no path is a usage error (exit 2), not a block
    block = decide(mesh, ToolCall(tool=tool, input={"path": path}, paths=(path,), agent=mesh.agent, cwd=mesh.cwd,
                                  raw_tool=tool), dry_run=True)
    if not isinstance(block, Block):  # a dry run is never rewritten: a Block or None
        ctx.out({"blocked": False, "path": path, "canonical": canonical}, f"{path}: free")
        return
    ctx.out({"blocked": True, **block.to_dict()}, block.message)
    sys.exit(EXIT_BLOCKED)


@click.command()
@click.option("--status", help="A status line others see.")
@pass_ctx
def heartbeat(ctx: Context, status: str | None) -> None:
    """Refresh this agent's last-seen time (and status)."""
    changes = {"status": status} if status is not None else {}
    a = ctx.mesh.heartbeat(**changes)
    if a is None:
        raise UsageError(f"{ctx.mesh.agent} is not registered")
    ctx.out(a.to_dict(), f"{a.name} seen {a.last_seen}")


@click.command()
@click.option("--fix", is_flag=True, help="Clean up what is found: stale agents, dead claims, temp files; "
              "bad files are moved to bad/, never deleted.")
@pass_ctx
def doctor(ctx: Context, fix: bool) -> None:
    """Find stale agents, expired claims, bad files and leftover temp files."""
    from ..adapters.installers.harnesses import stale_installs
    from ..sandbox import fallback_notice

    found = ctx.mesh.doctor(fix=fix) + stale_installs(ctx.mesh.root)
    unsandboxed = fallback_notice(ctx.mesh)
    if unsandboxed:
        found.append({"kind": "no-sandbox", "path": "bwrap", "detail": unsandboxed, "fixed": False})
    lines = [f"{f['kind']:<14} {f['path']}: {f['detail']}{'  [fixed]' if f['fixed'] else ''}" for f in found]
    ctx.out(found, "\n".join(lines) or "all good")


@click.command()
@click.argument("name")
@click.argument("arguments", required=False, default="{}")
@pass_ctx
def tool(ctx: Context, name: str, arguments: str) -> None:
    """Call a registered tool NAME with a JSON object of ARGUMENTS."""
    from ..host import PluginHost

    try:
        from ..safejson import loads

        args = loads(arguments)
    except ValueError as e:
        raise UsageError(f"ARGUMENTS must be a JSON object: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(args, dict):
        raise UsageError("ARGUMENTS must be a JSON object")
    result = PluginHost(ctx.mesh).call_tool(name, args)
    ctx.out(result, PluginHost.render(result))


@click.command()
@pass_ctx
def tools(ctx: Context) -> None:
    """List the tools this agent is given, with their JSON Schemas under --json."""
    from ..host import PluginHost

    specs = PluginHost(ctx.mesh).tools()
    ctx.out([t.to_dict() for t in specs], "\n".join(f"{t.name:<16} {t.description}" for t in specs))
