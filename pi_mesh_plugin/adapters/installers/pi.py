"""``pi-mesh install pi [--global]``: put the Pi extension where Pi loads it.

Project install: ``<project>/.pi/extensions/pi-mesh/``; ``--global``: the
user's Pi directory, ``$PI_CODING_AGENT_DIR/extensions/pi-mesh/`` or
``~/.pi/agent/extensions/pi-mesh/``.  The extension's files are copied from
the package (``pi_extension/``) next to a ``pi-mesh.json`` that records how to
start the sidecar: this Python interpreter (and, when the package is not in
that interpreter's site-packages, the directory to put on ``PYTHONPATH``).
Running it again rewrites only what changed.

Run from a subdirectory, the project install goes to the project (the git top
level), as every ``pi-mesh install`` does.  Pi itself loads project
extensions only from ``.pi/extensions/`` of the directory it is started in
(its package manager joins ``cwd`` and ``.pi``; nothing walks up), so a
project install guards Pi started at the root and nowhere below it: the
command says so, and names the remedy (``--global``: the extension finds the
project from Pi's working directory, in any subdirectory).
"""

from __future__ import annotations

import json
import os
import sys

# mypy treats any name TYPE_CHECKING as true; at run time these imports are skipped.
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ...cli import Context

EXTENSION_NAME = "pi-mesh"
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pi_extension")


def extension_files() -> dict[str, bytes]:
    """The extension's files (name -> content) as shipped in the package."""
    out = {}
    for name in sorted(os.listdir(SOURCE_DIR)):
        full = os.path.join(SOURCE_DIR, name)
        if os.path.isfile(full) and name.endswith((".ts", ".js", ".json", ".md")) and name != "pi-mesh.json":
            with open(full, "rb") as f:
                out[name] = f.read()
    return out


def launch_record(python: str | None = None) -> dict:
    """How the extension starts ``pi-mesh serve``: this interpreter, plus PYTHONPATH when needed."""
    import site

    import pi_mesh_plugin

    python = python or sys.executable
    parent = os.path.dirname(os.path.dirname(os.path.abspath(pi_mesh_plugin.__file__)))
    rec: dict = {"python": python}
    site_dirs = {os.path.realpath(p) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if os.path.realpath(parent) not in site_dirs and not _importable_without_path(python, parent):
        rec["pythonpath"] = parent
    try:
        from importlib.metadata import version

        rec["version"] = version("pi-mesh-plugin")
    except Exception:  # noqa: BLE001, S110 - not installed as a distribution: no version to record
        pass
    return rec


def _importable_without_path(python: str, parent: str) -> bool:
    """Does ``python -m pi_mesh_plugin`` find this very package without help (an editable install)?"""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import pi_mesh_plugin, os; print(os.path.dirname(os.path.dirname(os.path.abspath(pi_mesh_plugin.__file__))))"
    try:
        proc = subprocess.run([python, "-c", probe], cwd="/", env=env, capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and os.path.realpath(proc.stdout.strip()) == os.path.realpath(parent)


def target_dir(global_: bool, root: str | None) -> str:
    if global_:
        base = os.environ.get("PI_CODING_AGENT_DIR") or os.path.join(os.path.expanduser("~"), ".pi", "agent")
        return os.path.join(base, "extensions", EXTENSION_NAME)
    from ...mesh import find_root

    return os.path.join(find_root(root), ".pi", "extensions", EXTENSION_NAME)


def install(dest: str, python: str | None = None) -> list[tuple[str, str]]:
    """Write the extension into ``dest``; returns ``[(file, "created"|"updated"|"unchanged")]``."""
    from ...store.files.fsio import write_atomic

    files = extension_files()
    files["pi-mesh.json"] = (json.dumps(launch_record(python), indent=2) + "\n").encode()
    os.makedirs(dest, exist_ok=True)
    done = []
    for name, data in files.items():
        path = os.path.join(dest, name)
        try:
            with open(path, "rb") as f:
                old: bytes | None = f.read()
        except FileNotFoundError:
            old = None
        if old == data:
            done.append((name, "unchanged"))
            continue
        write_atomic(path, data, durable=False)
        done.append((name, "created" if old is None else "updated"))
    return done


@click.command("pi")
@click.option("--global", "global_", is_flag=True,
              help="Install for every project: $PI_CODING_AGENT_DIR/extensions or ~/.pi/agent/extensions.")
@click.pass_obj
def install_command(ctx: Context, global_: bool) -> None:
    """Install the Pi extension (project .pi/extensions/pi-mesh/, or --global)."""
    dest = target_dir(global_, getattr(ctx, "root", None))
    try:
        done = install(dest)
    except OSError as e:
        raise click.ClickException(f"cannot write {e.filename or dest}: {e.strerror or e}") from None
    changed = [n for n, what in done if what != "unchanged"]
    if ctx is not None and getattr(ctx, "json", False):
        ctx.out({"path": dest, "files": dict(done)})
        return
    if changed:
        click.echo(f"installed the pi-mesh extension in {dest} ({', '.join(f'{n} {w}' for n, w in done if w != 'unchanged')})")
    else:
        click.echo(f"the pi-mesh extension in {dest} is up to date")
    click.echo("Pi loads it at its next start; set PI_MESH_AGENT=<name> to choose the agent's name.")
    if not global_:
        for line in subdirectory_notes(os.path.dirname(os.path.dirname(os.path.dirname(dest))), os.getcwd()):
            click.echo(line)


def subdirectory_notes(root: str, cwd: str) -> list[str]:
    """What a project install must say about Pi started below the project root."""
    rel = os.path.relpath(os.path.realpath(cwd), os.path.realpath(root))
    out = []
    if rel != "." and not rel.startswith(".."):
        out.append(f"You ran this in {rel}/, a subdirectory: the extension was installed for the project at {root}.")
    out.append(f"Pi loads project extensions only from .pi/extensions/ of the directory it starts in: this guards Pi "
               f"started in {root} only. Pi started in a subdirectory is NOT guarded by it - start Pi in {root}, or "
               "run `pi-mesh install pi --global` (the extension then finds the project from Pi's working "
               "directory, in any subdirectory).")
    return out
