"""``pi-mesh feed`` and ``pi-mesh watch``: the activity feed, once or as it grows."""

from __future__ import annotations

import json
import time

import click


def format_event(ev: dict) -> str:
    skip = {"ts", "event", "agent"}
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in ev.items() if k not in skip)
    return f"{ev.get('ts', '?')}  {ev.get('agent') or '-':<16} {ev.get('event', '?'):<9} {rest}".rstrip()


def follow(mesh, emit, poll: float = 0.2, stop=None) -> None:  # noqa: ANN001
    """Call ``emit(event)`` for each new feed event until ``stop()`` is true (or forever)."""
    seen = len(mesh.feed())
    while stop is None or not stop():
        events = mesh.feed()
        if len(events) < seen:  # rotated
            seen = 0
        for ev in events[seen:]:
            emit(ev)
        seen = len(events)
        time.sleep(poll)


@click.command()
@click.option("-n", "--lines", "limit", type=int, default=50, show_default=True, help="How many recent events.")
@click.option("--follow", "-f", "follow_", is_flag=True, help="Keep printing events as they happen.")
@click.pass_obj
def feed(ctx, limit, follow_) -> None:
    """Show the activity feed."""
    events = ctx.mesh.feed(limit)
    if ctx.json and not follow_:
        ctx.out(events)
        return
    for ev in events:
        click.echo(json.dumps(ev) if ctx.json else format_event(ev))
    if follow_:
        follow(ctx.mesh, lambda ev: click.echo(json.dumps(ev) if ctx.json else format_event(ev)))


@click.command()
@click.pass_obj
def watch(ctx) -> None:
    """Print the feed as it grows (for plain terminals and logs)."""
    follow(ctx.mesh, lambda ev: click.echo(json.dumps(ev) if ctx.json else format_event(ev)))
