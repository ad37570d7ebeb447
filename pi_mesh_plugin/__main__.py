"""Entry point of the ``pi-mesh`` command.

``pi-mesh hook <harness>`` runs once per tool call of a per-call harness, so
it is dispatched here before anything heavy is imported: no click, no
pluggy, no jsonschema unless a plugin or a rare path needs them.  Every other
command goes to the click CLI in :mod:`pi_mesh_plugin.cli`.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hook"]:
        from .adapters.hooks.hookcmd import main as hook_main

        return hook_main(args[1:])
    from .cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
