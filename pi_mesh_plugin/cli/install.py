"""``pi-mesh install …``: wire the mesh into a harness or into git, idempotently.

Each subcommand is a click command in ``pi_mesh_plugin/adapters/installers/``, imported only when asked for.
"""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = {  # name -> (module under adapters/installers/, its click command)
    "pi": ("pi", "install_command"),
    "claude-code": ("harnesses", "claude_code_install"),
    "codex": ("harnesses", "codex_install"),
    "gemini": ("harnesses", "gemini_install"),
    "git-hook": ("git", "install_command"),
}


class _AdapterCommands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in SUBCOMMANDS if self.get_command(ctx, n) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        mod, attr = SUBCOMMANDS[name]
        cmd: click.Command = getattr(importlib.import_module(f"pi_mesh_plugin.adapters.installers.{mod}"), attr)
        cmd.name = name
        return cmd


@click.group(cls=_AdapterCommands)
def install() -> None:
    """Install the mesh into a harness (pi, claude-code, codex, gemini) or into git (git-hook)."""
