"""``pi-mesh db init`` / ``pi-mesh db status``: the PostgreSQL store's schema.

The store creates and upgrades its schema by itself on first use; ``init``
does it now (e.g. once, as a user allowed to ``CREATE``, before agents that
may not), ``status`` shows the schema version and this project's row counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import UsageError

if TYPE_CHECKING:
    from ..store.postgres import PostgresStore
    from . import Context


def _store(ctx: Context, url: str | None) -> PostgresStore:
    from ..config import load_config
    from ..mesh import find_root
    from ..store.postgres import PostgresStore

    root = find_root(ctx.root)
    config = load_config(root, ctx.agent_name, ctx.config_path)
    url = url or config.store_url
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise UsageError("no PostgreSQL store configured: pass --url postgresql://…, set PI_MESH_STORE, "
                         "or set [store] url in hooks.toml")
    return PostgresStore(url, root, heartbeat_ttl=config.heartbeat_ttl, project_id=config.project_id)


_url = click.option("--url", metavar="URL", help="postgresql://… (default: $PI_MESH_STORE or [store] url).")


@click.group()
def db() -> None:
    """The PostgreSQL store's schema: create, upgrade, inspect."""


@db.command()
@_url
@click.pass_obj
def init(ctx: Context, url: str | None) -> None:
    """Create or upgrade the schema (idempotent)."""
    from ..store.postgres.migrations import LATEST

    store = _store(ctx, url)
    try:
        applied = store.migrate()
        info = {"url": store.url, "schema": store.schema, "schema_version": store.schema_version(),
                "latest_version": LATEST, "applied": applied, "project": store.project}
    finally:
        store.close()
    text = (f"schema {info['schema']} at version {info['schema_version']} on {info['url']}"
            + (f" (applied {', '.join(map(str, applied))})" if applied else " (already up to date)")
            + f"\nproject id: {info['project']}")
    ctx.out(info, text)


@db.command()
@_url
@click.pass_obj
def status(ctx: Context, url: str | None) -> None:
    """Server, schema version and this project's agents, claims, unread mail and feed size."""
    store = _store(ctx, url)
    try:
        info = store.status()
    finally:
        store.close()
    text = "\n".join(f"{k:<16} {v}" for k, v in info.items())
    ctx.out(info, text)
