"""What a claim is and when two conflict, the same for every backend: each backend's ``claim`` finds the
conflicts with :func:`find_conflicts`, makes its records with :func:`new_claim` and words a refusal with
:func:`conflict_message`; only how the records are stored and locked differs."""

from __future__ import annotations

from .. import paths as P
from ..clock import iso, new_id, parse_iso


def find_conflicts(holder: str, wanted: list[tuple[str, str]], alive: list[dict]) -> list[dict]:
    """The claims in ``alive`` of holders other than ``holder`` that overlap a wanted ``(path, kind)``, each once."""
    conflicts: list[dict] = []
    for path, kind in wanted:
        for r in alive:
            if r["holder"] != holder and P.overlap(path, kind, r["path"], r["kind"]) and r not in conflicts:
                conflicts.append(r)
    return conflicts


def new_claim(holder: str, session: str | None, path: str, kind: str, reason: str, now: float, expires: str,
              alive: list[dict]) -> tuple[dict, list[dict]]:
    """``(validated claim record, the holder's claims in alive on exactly (path, kind) that it renews)``; a renewal
    keeps the first one's ``created``."""
    from ..schema import validate

    old = [r for r in alive if r["holder"] == holder and r["path"] == path and r["kind"] == kind]
    rec = {"schema": 1, "id": new_id(now), "holder": holder, "session": session, "path": path, "kind": kind,
           "reason": reason, "created": old[0]["created"] if old else iso(now), "expires": expires}
    validate("reservation", rec)
    return rec, old


def conflict_message(wanted: list[tuple[str, str]], conflicts: list[dict], now: float) -> str:
    from ..clock import format_duration

    parts = []
    for r in conflicts:
        shown = r["path"] + ("/" if r["kind"] == P.DIR and r["path"] != P.ROOT else "")
        try:
            left = format_duration(parse_iso(r["expires"]) - now)
        except ValueError:
            left = "?"
        parts.append(f'{shown} is reserved by {r["holder"]} ("{r["reason"]}", expires in {left})')
    asked = ", ".join(p + ("/" if k == P.DIR and p != P.ROOT else "") for p, k in wanted)
    return f"cannot reserve {asked}: " + "; ".join(parts) + ". Nothing was reserved; message the holder to coordinate."
