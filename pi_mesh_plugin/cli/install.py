"""``pi-mesh install …``: wire the mesh into a harness or into git, idempotently.

Each subcommand lives next to the adapter it installs (``pi_mesh_plugin/adapters/*``):
an adapter module exposes a click command named ``install_command``.
"""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = {
    "pi": "pi_install",
    "claude-code": "claude_code",
    "codex": "codex",
    "gemini": "gemini",
    "git-hook": "git_hook",
}


class _AdapterCommands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in SUBCOMMANDS if self.get_command(ctx, n) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        mod = SUBCOMMANDS.get(name)
        if mod is None:
            return None
        try:
            module = importlib.import_module(f"pi_mesh_plugin.adapters.{mod}")
        except ModuleNotFoundError as e:
            if e.name == f"pi_mesh_plugin.adapters.{mod}":
                return None
            raise
        cmd = getattr(module, "install_command", None)
        if cmd is not None:
            cmd.name = name
        return cmd


@click.group(cls=_AdapterCommands)
def install() -> None:
    """Install the mesh into a harness (pi, claude-code, codex, gemini) or into git (git-hook)."""
