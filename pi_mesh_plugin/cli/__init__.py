"""The ``pi-mesh`` command line: a thin layer over :class:`~pi_mesh_plugin.mesh.Mesh`.

Commands live in small modules and are imported only when run (a lazy click
group), so ``pi-mesh agents`` does not pay for the dashboard or the MCP SDK.
Errors are one line on stderr; exit codes: 0 ok, 1 error, 2 usage,
3 blocked or refused.
"""

from __future__ import annotations

import importlib
import os
import sys

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

import click

from ..errors import EXIT_BLOCKED, EXIT_ERROR, EXIT_USAGE, MeshError

if TYPE_CHECKING:
    from ..mesh import Mesh

COMMANDS = {
    "join": "core:join",
    "leave": "core:leave",
    "agents": "core:agents",
    "send": "core:send",
    "sent": "core:sent",
    "broadcast": "core:broadcast",
    "inbox": "core:inbox",
    "reserve": "core:reserve",
    "release": "core:release",
    "claims": "core:claims",
    "check": "core:check",
    "run": "run:run",
    "heartbeat": "core:heartbeat",
    "tool": "core:tool",
    "tools": "core:tools",
    "feed": "feed:feed",
    "watch": "feed:watch",
    "doctor": "core:doctor",
    "demo": "demo:demo",
    "serve": "serve:serve",
    "install": "install:install",
    "mcp": "mcp:mcp",
    "db": "db:db",
    "top": "top:top",
    "whose": "authorship:whose",
    "commit": "authorship:commit",
    "handover": "authorship:handover",
    "radar": "authorship:radar",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        here = os.path.dirname(__file__)
        return sorted(n for n, target in COMMANDS.items()
                      if os.path.exists(os.path.join(here, target.split(":")[0] + ".py")))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "hook":
            return _hook_command
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod, attr = target.split(":")
        try:
            module = importlib.import_module(f".{mod}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{mod}":
                return None
            raise
        return getattr(module, attr)  # type: ignore[no-any-return]


class Context:
    """What the global options select; the :class:`Mesh` is opened on first use."""

    def __init__(self, root: str | None, agent: str | None, config: str | None, as_json: bool) -> None:
        self.root, self.agent_name, self.config_path, self.json = root, agent, config, as_json
        self._mesh: Mesh | None = None

    @property
    def mesh(self) -> Mesh:
        if self._mesh is None:
            from ..mesh import Mesh

            self._mesh = Mesh(self.root, self.agent_name, config_path=self.config_path)
        return self._mesh

    def out(self, data: object, text: str | None = None) -> None:
        import json

        if self.json:
            click.echo(json.dumps(data, indent=1, ensure_ascii=False))
        elif text is not None:
            click.echo(text)

    def warn(self) -> None:
        if self._mesh is not None:
            for w in self._mesh.warnings:
                click.echo(f"pi-mesh: warning: {w}", err=True)
            self._mesh.warnings.clear()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", metavar="DIR", help="Project root (default: $PI_MESH_ROOT, else the git top level, else .).")
@click.option("--agent", metavar="NAME", help="Act as this agent (default: $PI_MESH_AGENT).")
@click.option("--config", "config_path", metavar="FILE", help="hooks.toml to use (default: $PI_MESH_CONFIG, "
              ".pi/hooks.toml, hooks.toml).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.version_option(package_name="pi-mesh-plugin", prog_name="pi-mesh")
@click.pass_context
def cli(ctx: click.Context, root: str | None, agent: str | None, config_path: str | None, as_json: bool) -> None:
    """Presence, messages and path reservations for coding agents sharing a repository.

    State lives in plain files under <project>/.pi/mesh/ - inspect it with ls and cat.
    """
    ctx.obj = Context(root, agent, config_path, as_json)
    ctx.call_on_close(ctx.obj.warn)


@click.command("hook", context_settings={"ignore_unknown_options": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _hook_command(args: tuple[str, ...]) -> None:
    """Guard one tool call of a harness (claude-code, codex, gemini): JSON on stdin."""
    from ..adapters.hooks.hookcmd import main

    sys.exit(main(list(args)))


_GLOBAL_VALUED = ("--root", "--agent", "--config")
_GLOBAL_FLAGS = ("--json",)
_OWN_GLOBALS = {"install", "hook"}  # subcommands with options of the same names


def hoist_global_options(args: list[str]) -> list[str]:
    """Let the global options also follow the subcommand (``pi-mesh check PATH --agent bob``).

    Tokens after a ``--`` are left alone, and so are the subcommands that define
    options of the same names themselves.
    """
    i = 0
    while i < len(args):  # skip the global options already in front
        a = args[i]
        if a in _GLOBAL_VALUED:
            i += 2
        elif a in _GLOBAL_FLAGS or a.split("=", 1)[0] in _GLOBAL_VALUED:
            i += 1
        else:
            break
    if i >= len(args) or args[i] in _OWN_GLOBALS or args[i].startswith("-"):
        return args
    front, rest, j = args[:i], [], i
    while j < len(args):
        a = args[j]
        if a == "--":
            rest += args[j:]
            break
        if a in _GLOBAL_VALUED and j + 1 < len(args):
            front += [a, args[j + 1]]
            j += 2
            continue
        if a in _GLOBAL_FLAGS or a.split("=", 1)[0] in _GLOBAL_VALUED:
            front.append(a)
        else:
            rest.append(a)
        j += 1
    return front + rest


def run(args: list[str]) -> int:
    """Run the CLI; every failure becomes one line on stderr and an exit code."""
    args = hoist_global_options(list(args))
    try:
        cli.main(args=args, prog_name="pi-mesh", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.Abort:
        click.echo("pi-mesh: aborted", err=True)
        return EXIT_ERROR
    except click.UsageError as e:
        hint = f" (see `pi-mesh {e.ctx.command_path.split(' ', 1)[-1] if e.ctx else ''} --help`)".replace("  ", " ")
        click.echo(f"pi-mesh: usage: {e.format_message()}{hint if e.ctx else ''}", err=True)
        return EXIT_USAGE
    except click.ClickException as e:
        click.echo(f"pi-mesh: error: {e.format_message()}", err=True)
        return e.exit_code
    except MeshError as e:
        click.echo(f"pi-mesh: {'blocked' if e.exit_code == EXIT_BLOCKED else 'error'}: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        click.echo(f"pi-mesh: error: {e.strerror or e}{': ' + str(e.filename) if e.filename else ''}", err=True)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if os.environ.get("PI_MESH_DEBUG"):
            raise
        click.echo(f"pi-mesh: internal error: {type(e).__name__}: {e} (PI_MESH_DEBUG=1 shows a traceback)", err=True)
        return EXIT_ERROR
    return 0
