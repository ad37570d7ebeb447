"""``pi-mesh top``: the live dashboard (see :mod:`pi_mesh_plugin.dashboard`)."""

from __future__ import annotations

from typing import Any

import click


@click.command()
@click.option("--name", default="human", show_default=True,
              help="The operator's identity: registered while the dashboard runs, messages are sent as it.")
@click.option("--poll", type=click.FloatRange(min=0.05), metavar="SECONDS",
              help="Poll every SECONDS instead of waiting for file-system events (network file systems).")
@click.option("--tick", type=click.FloatRange(min=0.5), default=5.0, show_default=True, metavar="SECONDS",
              help="How often ages and liveness are re-judged (they change with time, not with files).")
@click.pass_obj
def top(ctx: Any, name: str, poll: float | None, tick: float) -> None:
    """Live dashboard: agents, claims, the feed, and a line to message agents as the operator.

    Keys: q quit · c compose · m message the selected agent · a message all ·
    x release the selected agent's claims (only if it is stale) · r refresh.
    Compose: @NAME text, @all text, /release-dead NAME, /help.
    """
    try:
        from ..dashboard import MeshTop, operator_mesh
    except ImportError as e:
        raise click.ClickException(f"pi-mesh top needs textual ({e}): pip install 'pi-mesh-plugin[top]'") from None
    from ..errors import NameTaken
    from ..names import validate_name

    try:
        mesh = operator_mesh(ctx.root, validate_name(name), ctx.config_path)
    except NameTaken as e:
        e.args = (f"{e} - is another pi-mesh top running? Start this one with --name NAME",)
        raise
    app = MeshTop(mesh, tick=tick, watch_mode="poll" if poll else "auto", poll_interval=poll or 1.0)
    try:
        app.run()
    finally:
        try:
            mesh.leave()  # a no-op when the app already left; else do not leave a stale operator behind
        except Exception:  # noqa: BLE001, S110 - best effort, after the dashboard has ended
            pass
        mesh.close()
