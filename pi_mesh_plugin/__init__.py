"""pi_mesh_plugin: presence, messages and path reservations for several coding agents in one repository.

All state is plain files under ``<project>/.pi/mesh/`` (or, across machines,
a PostgreSQL database behind the same API).  Start with :class:`Mesh`.

The names below are imported on first use, so that ``import pi_mesh_plugin``
stays cheap on the per-call guard path.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "Mesh": "mesh",
    "find_root": "mesh",
    "Agent": "records",
    "Message": "records",
    "Reservation": "records",
    "Block": "records",
    "ToolCall": "records",
    "MeshError": "errors",
    "UsageError": "errors",
    "InvalidName": "errors",
    "UnknownAgent": "errors",
    "NameTaken": "errors",
    "NotJoined": "errors",
    "ReservationConflict": "errors",
    "ConfigError": "errors",
    "StoreError": "errors",
    "CorruptRecord": "errors",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "PluginHost": "host",
    "ToolSpec": "host",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> object:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'pi_mesh_plugin' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value
