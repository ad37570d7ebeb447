"""Taking over the name of an agent that is gone: whose is its unread mail?

A session that restarts - same name, same harness, same host and working
directory (the same checkout) - is the same worker come back after a crash or
a ``kill -9``: the previous session's unread mail is handed to it (it stays
unread, and ``join`` says so).  Anyone else taking the name is a stranger: the
mail is set aside (``inbox/<name>/orphaned/<session>/`` on the file store, the
``set_aside`` column on PostgreSQL), shown by ``inbox --orphaned``, ``join``,
``doctor``, ``/mesh`` and ``top``, until adopted (``pi-mesh inbox --adopt``).
Shared by both backends; the decision is made inside the registration's lock
or transaction.
"""

from __future__ import annotations


def inherits(old: dict, new: dict) -> bool:
    """Whether the agent record ``new`` is a restart of ``old`` (see the module docstring)."""
    return (bool(old.get("harness")) and old.get("harness") == new.get("harness") and old.get("host") == new.get("host")
            and old.get("cwd") == new.get("cwd"))
