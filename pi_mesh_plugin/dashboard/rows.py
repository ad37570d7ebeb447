"""The dashboard's model: the rows of the agents and claims tables, computed without a terminal."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..clock import format_duration, parse_iso

if TYPE_CHECKING:
    from ..mesh import Mesh

Row = dict[str, Any]

OPERATOR = "human"


def _ago(ts: str | None, t: float) -> str:
    if not ts:
        return "-"
    try:
        return format_duration(max(0.0, t - parse_iso(ts)))
    except (ValueError, TypeError):
        return "?"


def snapshot(mesh: Mesh, t: float | None = None) -> dict[str, list[Row]]:
    """Rows for the agents and claims tables: ``{"agents": [...], "claims": [...]}`` (plain dicts)."""
    t = time.time() if t is None else t
    store = mesh.store
    agents = {}
    for rec in store.list_agents():
        agents[rec["name"]] = {**rec, "live": bool(store.is_live(rec))}
    claims = []
    held: dict[str, int] = {}
    for r in store.reservations():
        holder = agents.get(r["holder"])
        try:
            expired = parse_iso(r["expires"]) <= t
        except (ValueError, TypeError):
            expired = True
        if holder is None or (r.get("session") and holder["session"] != r["session"]):
            state = "holder gone"
        elif not holder["live"]:
            state = "holder stale"
        elif expired:
            state = "expired"
        else:
            state = "live"
            held[r["holder"]] = held.get(r["holder"], 0) + 1
        shown = r["path"] + "/" if r.get("kind") == "dir" and r["path"] != "." else r["path"]
        try:
            left = format_duration(parse_iso(r["expires"]) - t)
        except (ValueError, TypeError):
            left = "?"
        claims.append({"id": r["id"], "holder": r["holder"], "path": shown, "reason": r.get("reason", ""),
                       "age": _ago(r.get("created"), t), "expires": left, "state": state,
                       "counts": state == "live"})
    tickets = mesh.waiting()
    if tickets:
        from .. import paths as P

        raw = {r["id"]: r for r in store.reservations()}
        for c in claims:
            r = raw[c["id"]]
            c["waiters"] = [w["agent"] for w in tickets if w["agent"] != r["holder"] and
                            any(P.overlap(p, k, r["path"], r["kind"]) for p, k in w["paths"])]
    for r in claims:
        if not r["counts"] and r["holder"] in agents:
            agents[r["holder"]].setdefault("stale_claims", 0)
            agents[r["holder"]]["stale_claims"] += 1
    rows = []
    for name, a in agents.items():
        act = a.get("activity") or {}
        if act.get("last"):
            last = f"{act['last']} ({_ago(act.get('last_at'), t)} ago)"
        else:
            last = f"seen {_ago(a.get('last_seen'), t)} ago"
        try:
            unread = store.unread_count(name)
            aside = sum(store.orphaned(name).values())  # mail of an earlier session, set aside until adopted
        except (OSError, ValueError):
            unread = aside = 0
        rows.append({"name": name, "live": a["live"], "state": "live" if a["live"] else "stale",
                     "harness": a.get("harness") or "-", "model": a.get("model") or "-", "last": last,
                     "claims": held.get(name, 0), "stale_claims": a.get("stale_claims", 0), "unread": unread, "aside": aside,
                     "status": a.get("status") or "", "pid": a.get("pid"), "host": a.get("host"),
                     "cwd": a.get("cwd"), "activity": act})
    rows.sort(key=lambda r: (not r["live"], r["name"] == OPERATOR, r["name"]))
    claims.sort(key=lambda r: (not r["counts"], r["holder"], r["path"]))
    return {"agents": rows, "claims": claims}
