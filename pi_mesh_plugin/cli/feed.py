"""``pi-mesh feed`` and ``pi-mesh watch``: the activity feed, once or as it grows.

Following does not poll the whole feed: a :class:`~pi_mesh_plugin.watcher.Watcher`
wakes the loop on a file-system event (or a store notification), and a
:func:`~pi_mesh_plugin.watcher.feed_follower` reads only the appended bytes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..mesh import Mesh


def format_event(ev: dict[str, Any]) -> str:
    skip = {"ts", "event", "agent"}
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in ev.items() if k not in skip)
    return f"{ev.get('ts', '?')}  {ev.get('agent') or '-':<16} {ev.get('event', '?'):<9} {rest}".rstrip()


def follow(mesh: Mesh, emit: Callable[[dict[str, Any]], None], stop: threading.Event | None = None, history: int = 0,
           mode: str = "auto", poll_interval: float = 1.0) -> None:
    """Call ``emit(event)`` for the last ``history`` events, then for each new one until ``stop`` is set.

    Sleeps between changes; ``mode`` and ``poll_interval`` are passed to the
    :class:`~pi_mesh_plugin.watcher.Watcher` (``"poll"`` for file systems
    without change events).
    """
    from ..watcher import Watcher, feed_follower

    check = None if stop is None else 0.2  # a stop set by another thread is seen within this
    stop = stop or threading.Event()
    wake = threading.Event()

    def changed(_topics: frozenset[str]) -> None:
        wake.set()

    follower = feed_follower(mesh.store)
    try:
        watcher = Watcher(mesh.store, changed, topics={"feed"}, mode=mode, poll_interval=poll_interval)
        with watcher:
            for ev in follower.history(history):
                emit(ev)
            for ev in follower.read():  # anything appended while the watcher started
                emit(ev)
            while not stop.is_set():
                if not wake.wait(check):
                    continue
                wake.clear()
                for ev in follower.read():
                    emit(ev)
    finally:
        follower.close()


def _run_follow(ctx: Any, history: int, poll: float | None) -> None:
    emit = (lambda ev: click.echo(json.dumps(ev, ensure_ascii=False))) if ctx.json else \
        (lambda ev: click.echo(format_event(ev)))
    from ..signals import end_on_term

    end_on_term()  # SIGTERM/SIGHUP end following like Ctrl-C: watchers stopped, exit status 0
    try:
        follow(ctx.mesh, emit, history=history, mode="poll" if poll else "auto",
               poll_interval=poll or 1.0)
    except KeyboardInterrupt:
        pass


@click.command()
@click.option("-n", "--lines", "limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many recent events.")
@click.option("--follow", "-f", "follow_", is_flag=True, help="Keep printing events as they happen.")
@click.option("--poll", type=click.FloatRange(min=0.05), metavar="SECONDS",
              help="With --follow: poll every SECONDS instead of waiting for file-system events.")
@click.pass_obj
def feed(ctx: Any, limit: int, follow_: bool, poll: float | None) -> None:
    """Show the activity feed (with --follow, keep printing it as it grows)."""
    if follow_:
        _run_follow(ctx, limit, poll)
        return
    events = ctx.mesh.feed(limit) if limit else []
    if ctx.json:
        ctx.out(events)
        return
    for ev in events:
        click.echo(format_event(ev))


@click.command()
@click.option("-n", "--lines", "limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Recent events to print first.")
@click.option("--poll", type=click.FloatRange(min=0.05), metavar="SECONDS",
              help="Poll every SECONDS instead of waiting for file-system events.")
@click.pass_obj
def watch(ctx: Any, limit: int, poll: float | None) -> None:
    """Print the feed as it grows, one line per event (for plain terminals and logs; --json for JSON lines).

    Ends on Ctrl-C or SIGTERM with exit status 0.
    """
    _run_follow(ctx, limit, poll)
