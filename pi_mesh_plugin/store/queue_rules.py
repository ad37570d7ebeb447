"""The waiting line for claims: rules shared by every backend.

A *ticket* is one queued request: ``{"schema": 1, "id", "agent", "session",
"paths": [[path, kind], ...], "reason", "ttl", "queued"}``.  Its ``id`` sorts
by the time it joined the line (:func:`~pi_mesh_plugin.clock.new_id`), so
"first in line" is "smallest id".  Backends store tickets (the file store as
``queue/<path key>/<id>-<agent>.json``, PostgreSQL as rows of ``queue``) and
call :func:`plan` under the same lock (or in the same transaction) as the
release or expiry that may free a claim, so a grant is atomic with the
change that made it possible.

The rules:

* **FIFO per path.**  Tickets are considered in id order.  A ticket is
  granted when none of its paths overlaps a live claim of another agent *and*
  none overlaps a path wanted by an earlier ticket of another agent that is
  still waiting (nobody jumps the line).
* **Never two holders.**  Each grant is added to the live claims before the
  next ticket is judged, so two overlapping tickets can never both be granted.
* **Only live waiters.**  A ticket whose agent is gone (or re-registered under
  a new session) is dropped, never granted.
* **No deadlock.**  :func:`find_cycle` refuses a ticket that would close a
  waiting cycle (alice waits for bob's claim while bob waits for alice's).

The grant is pushed to the waiter as an urgent message from the reserved
sender :data:`SYSTEM_SENDER` (``mesh``); holders are told (a normal message)
when someone queues behind them.
"""

from __future__ import annotations

from .. import paths as P

SYSTEM_SENDER = "mesh"  # the sender of the mesh's own notices; no agent may join under this name


def shown(path: str, kind: str) -> str:
    return path + ("/" if kind == P.DIR and path != P.ROOT else "")


def shown_all(pairs: list[tuple[str, str]] | list[list[str]]) -> str:
    return ", ".join(shown(p, k) for p, k in pairs)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _overlaps(a: list, b: list) -> bool:
    return any(P.overlap(p, k, q, j) for p, k in a for q, j in b)


def conflicting_holders(agent: str, wanted: list, alive: list[dict]) -> list[str]:
    """Other agents whose live claims overlap ``wanted``, in first-seen order."""
    out: list[str] = []
    for r in alive:
        if r["holder"] != agent and r["holder"] not in out and _overlaps(wanted, [(r["path"], r["kind"])]):
            out.append(r["holder"])
    return out


def plan(tickets: list[dict], alive: list[dict], waiter_live: object) -> tuple[list[dict], list[dict]]:
    """``(tickets to grant now, tickets of dead waiters to drop)``; ``tickets`` in any order, ``alive`` the live
    claims.  ``waiter_live(agent, session) -> bool``."""
    granted: list[dict] = []
    dead: list[dict] = []
    spoken: list[tuple[str, list]] = []  # (agent, paths) of earlier tickets still waiting
    current = [(r["holder"], [(r["path"], r["kind"])]) for r in alive]
    for t in sorted(tickets, key=lambda t: t["id"]):
        if not waiter_live(t["agent"], t.get("session")):  # type: ignore[operator]
            dead.append(t)
            continue
        wanted = t["paths"]
        blocked = any(a != t["agent"] and _overlaps(wanted, ps) for a, ps in current) or \
            any(a != t["agent"] and _overlaps(wanted, ps) for a, ps in spoken)
        if blocked:
            spoken.append((t["agent"], wanted))
        else:
            granted.append(t)
            current.append((t["agent"], wanted))
    return granted, dead


def waits_for(tickets: list[dict], alive: list[dict]) -> dict[str, set[str]]:
    """The waiting graph: agent -> the holders it waits for."""
    graph: dict[str, set[str]] = {}
    for t in tickets:
        graph.setdefault(t["agent"], set()).update(conflicting_holders(t["agent"], t["paths"], alive))
    return graph


def find_cycle(agent: str, holders: list[str], tickets: list[dict], alive: list[dict]) -> list[str] | None:
    """The cycle ``[agent, h, ..., agent]`` that waiting for ``holders`` would close, or ``None``."""
    graph = waits_for(tickets, alive)
    for h in holders:
        stack: list[tuple[str, list[str]]] = [(h, [agent, h])]
        seen = {h}
        while stack:
            node, path = stack.pop()
            if node == agent:
                return path
            for nxt in sorted(graph.get(node, ())):
                if nxt == agent:
                    return [*path, agent]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return None


def deadlock_text(wanted: list, cycle: list[str]) -> str:
    return (f"cannot queue for {shown_all(wanted)}: waiting would close a cycle {' -> '.join(cycle)} "
            f"(each waits for the next one's claim), so nobody would ever get it. Nothing was queued; "
            f"release what you hold that {cycle[-2]} needs, or message {cycle[1]} to agree who goes first.")


def position(ticket: dict, tickets: list[dict]) -> tuple[int, list[str]]:
    """``(place in line, the agents ahead)`` among ``tickets`` of other agents overlapping its paths."""
    ahead = [t["agent"] for t in sorted(tickets, key=lambda t: t["id"])
             if t["id"] < ticket["id"] and t["agent"] != ticket["agent"] and _overlaps(t["paths"], ticket["paths"])]
    return len(ahead) + 1, ahead


def queued_text(ticket: dict, place: int, ahead: list[str], holders: list[str]) -> str:
    behind = ", ".join(holders) or "nobody"
    more = f"; ahead of you: {', '.join(dict.fromkeys(ahead))}" if ahead else ""
    return (f"queued, {ordinal(place)} in line behind {behind} on {shown_all(ticket['paths'])}{more}. "
            f"You will be told (urgent message from {SYSTEM_SENDER}) when it is yours; work on something else "
            f"meanwhile. release(paths=[...]) of a path you are queued for leaves the line.")


def holder_notice(ticket: dict, place: int) -> str:
    quoted = ", ".join(f'"{shown(p, k)}"' for p, k in ticket["paths"])
    return (f"{ticket['agent']} is waiting for {shown_all(ticket['paths'])} ({ordinal(place)} in line) "
            f"(reason: \"{ticket['reason']}\"). When you are done there, release it: "
            f"release(paths=[{quoted}]) - it goes to them at once.")


def grant_text(claims: list[dict], queued: str) -> str:
    what = ", ".join(shown(r["path"], r["kind"]) for r in claims)
    verb = "is" if len(claims) == 1 else "are"
    return (f"{what} {verb} now yours, reserved for you at {claims[0]['created'] if claims else '?'} "
            f"until {claims[0]['expires'] if claims else '?'} (you queued at {queued}). Retry your edit; "
            f"release it when you are done.")


def path_key(path: str) -> str:
    """A file name for a canonical path: ``/`` and ``%`` escaped, the root spelled ``%2E``."""
    if path == P.ROOT:
        return "%2E"
    return path.replace("%", "%25").replace("/", "%2F")


def system_message(to: str, text: str, urgent: bool, now: float) -> dict:
    from ..clock import iso, new_id

    return {"schema": 1, "id": new_id(now), "from": SYSTEM_SENDER, "to": to, "text": text, "urgent": bool(urgent),
            "reply_to": None, "thread": None, "created": iso(now)}
