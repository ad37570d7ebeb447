"""Store backends.

:mod:`.base` states the interface every backend satisfies; :mod:`.files` is
the default (plain files under ``<project>/.pi/mesh/``); :mod:`.postgres`
runs the same API on a PostgreSQL server for agents spread over machines.
:func:`open_store` picks one from a URL.
"""

from __future__ import annotations

# ``typing`` stays off the guard path: mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .base import Store


def open_store(url: str | None, root: str, *, heartbeat_ttl: float = 60.0, project_id: str | None = None,
               timeouts: dict | None = None, share: str = "private") -> Store:
    """Open the store named by ``url``: ``None``/``""``/``file:`` for the file store under ``root`` (its
    files private to their owner, or shared with the owner's group: ``share``), ``postgresql://…`` for
    PostgreSQL (``timeouts``: ``[store]``'s ``connect_timeout``, ``statement_timeout``, ``lock_timeout``)."""
    if not url or url in ("file", "files", "file:"):
        from .files import FileStore

        return FileStore(root, heartbeat_ttl=heartbeat_ttl, share=share)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, root, heartbeat_ttl=heartbeat_ttl, project_id=project_id, timeouts=timeouts)
    from ..errors import ConfigError

    raise ConfigError(f"unknown store URL {url!r}: expected postgresql://… or nothing for the file store")
