"""Whom a message record is addressed to: one recipient's name, or ``*`` for a broadcast.

Shared by both backends; kept apart from :mod:`.base` so that the per-call path (which loads the
file store) imports nothing it does not use.
"""

from __future__ import annotations

BROADCAST = "*"  # the "to" of a broadcast record; never an inbox


def check_addressed(messages: list[dict]) -> None:
    """``deliver`` takes messages to one recipient each (``ValueError`` for a broadcast record)."""
    for m in messages:
        if m.get("to") == BROADCAST:
            raise ValueError("a message to '*' is a broadcast: deliver it with broadcast()")


def check_broadcast(message: dict) -> None:
    """``broadcast`` takes a record with ``to`` ``*`` and ``broadcast`` true (``ValueError`` otherwise)."""
    if message.get("to") != BROADCAST or message.get("broadcast") is not True:
        raise ValueError("a broadcast record has to '*' and broadcast true")
