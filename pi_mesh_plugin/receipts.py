"""Receipts: what became of each message a sender sent.

Each message, per recipient, goes through

* **delivered** - it is in the recipient's inbox (``send`` returns only then);
* **read** - marked read (``read_inbox``, ``mark_read``);
* **shown** - it entered the recipient model's context: marked read by the
  adapter that put it there (``mark_read(ids, via=...)``: ``pi`` when the Pi
  extension has steered or queued it into the session, ``tool`` from the
  ``read_inbox`` tool, ``cli`` from ``pi-mesh inbox``, ``claude-code``,
  ``codex``, ``gemini`` from their hooks), with when and through which adapter
  (the first one wins);
* **answered** - the recipient sent a message in its thread (a reply to it,
  or to the thread it starts).

A message whose recipient's name was taken over by another session before it
was read is **set aside** (see :mod:`pi_mesh_plugin.store.takeover`) until
adopted.  ``pi-mesh sent``, the ``message_status`` tool and
``pi-mesh send --wait-shown`` read these rows; the stores keep only the read
and shown facts, the answers are found in the sender's own inbox.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .errors import clip

if TYPE_CHECKING:
    from .mesh import Mesh

POLL = 0.1


def receipts(mesh: Mesh, ids: list[str] | None = None, limit: int | None = None) -> list[dict]:
    """One row per message and recipient, oldest first (the last ``limit`` messages when given)."""
    sender = mesh._need_agent()
    rows = mesh.store.receipts(sender, ids)
    if limit is not None:
        keep = sorted({r["message"]["id"] for r in rows})[-limit:] if limit > 0 else []
        rows = [r for r in rows if r["message"]["id"] in set(keep)]
    answers: dict[tuple[str, str], dict] = {}
    if rows:
        for rec, _ in mesh.store.fetch(sender, unread_only=False):
            for key in {rec.get("reply_to"), rec.get("thread")} - {None}:
                answers.setdefault((key, rec["from"]), rec)  # id order: the first answer
    out = []
    for r in rows:
        m = r["message"]
        ans = answers.get((m["id"], m["to"]))
        row = {"id": m["id"], "to": m["to"], "created": m["created"], "urgent": bool(m.get("urgent")),
               "broadcast": bool(m.get("broadcast")), "text": clip(m["text"], 80), "delivered": m["created"],
               "read": bool(r["read"]), "shown": r["shown"], "via": r["via"], "set_aside": r["set_aside"],
               "answered": ans["created"] if ans else None, "answer": ans["id"] if ans else None}
        row["state"] = ("answered" if ans else "shown" if r["shown"] else "read" if r["read"]
                        else "set aside" if r["set_aside"] else "delivered")
        out.append(row)
    return out


def describe(row: dict) -> str:
    """One line: ``<id> to bob: shown via pi at ...; answered (<id>) at ... - "text"``."""
    bits = [f"delivered {row['delivered']}"]
    if row["set_aside"]:
        bits.append(f"set aside (session {row['set_aside']} of {row['to']} is gone; adopt with "
                    f"`pi-mesh inbox --adopt`)")
    if row["shown"]:
        bits.append(f"shown via {row['via']} at {row['shown']}")
    elif row["read"]:
        bits.append("read (not known to have reached its model)")
    if row["answered"]:
        bits.append(f"answered ({row['answer']}) at {row['answered']}")
    return f"{row['id']} to {row['to']}: {row['state']} - " + "; ".join(bits) + f" - {row['text']!r}"


def wait_shown(mesh: Mesh, ids: list[str], timeout: float) -> list[dict] | None:
    """Block until every recipient of these messages has been shown them (or answered); the rows, or ``None``
    when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        rows = receipts(mesh, ids)
        if rows and all(r["shown"] or r["answered"] for r in rows):
            return rows
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(POLL, left))
