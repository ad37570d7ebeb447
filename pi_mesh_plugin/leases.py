"""Claims that live as long as the work: renewal, expiry warnings, auto-claims.

* **Renewal.**  :meth:`Mesh.touch_activity` (called on each guarded call of
  the agent) renews each of the agent's claims that has less than half of
  ``reservation_ttl`` left, to ``reservation_ttl`` left, but never past
  ``max_reservation`` after the claim was first made.  Only work renews: the
  periodic heartbeat of a sidecar keeps the agent *live* but not its claims,
  so an agent that stops working (idle at a prompt, stuck) loses its claims
  after at most ``reservation_ttl`` and they go to the waiting line.  Writes
  happen at most once per half TTL per claim; a call with nothing due costs
  one look at the claims.
* **Warnings.**  On each touch and heartbeat, a claim of the agent that
  expires within ``expiry_warning`` and will not be renewed (it reached
  ``max_reservation``, or - seen from a heartbeat - the agent is not working)
  earns the holder one message from ``mesh`` saying when it goes and who
  waits for it.  "One" is kept by a marker per claim (``store.mark_once``).
* **Auto-claims** (``auto_claim = true``).  :meth:`Mesh.auto_claim` after an
  allowed guarded write claims each written file that the agent does not
  already hold, for ``auto_claim_ttl`` with the reason :data:`AUTO_REASON`;
  a further write renews it (when less than half is left).  Leaving the mesh
  releases them with every other claim.
"""

from __future__ import annotations

from . import paths as P
from .clock import format_duration, iso, now, parse_iso
from .errors import ReservationConflict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .mesh import Mesh
    from .records import Reservation

AUTO_REASON = "editing (auto-claim on first write)"


def _me(mesh: Mesh) -> dict | None:
    rec = mesh.store.get_agent(mesh.agent or "")
    return rec if rec is not None and mesh.store.is_live(rec) else None


def _mine(mesh: Mesh, me: dict, t: float) -> list[dict]:
    out = []
    for r in mesh.store.reservations():
        if r["holder"] != me["name"] or (r.get("session") and r["session"] != me["session"]):
            continue
        try:
            if parse_iso(r["expires"]) > t:
                out.append(r)
        except ValueError:
            continue
    return out


def upkeep(mesh: Mesh, active: bool) -> None:
    """Renew (when ``active``) and warn; then let the waiting line take what expired or died."""
    if not mesh.agent:
        return
    me = _me(mesh)
    if me is None:
        return
    cfg = mesh.config
    t = now()
    mine = _mine(mesh, me, t)
    for r in mine:
        try:
            left = parse_iso(r["expires"]) - t
            cap = parse_iso(r["created"]) + cfg.max_reservation - t
        except ValueError:
            continue
        renewable = active and r["reason"] != AUTO_REASON and cap > left + 1.0
        if renewable and left < cfg.reservation_ttl / 2:
            try:
                mesh.store.claim(me["name"], me["session"], [(r["path"], r["kind"])], r["reason"],
                                 min(cfg.reservation_ttl, cap))
            except ReservationConflict:
                pass  # cannot happen for a live claim of one's own; never fail the call that renews
            continue
        if left <= cfg.expiry_warning and not renewable and r["reason"] != AUTO_REASON:
            _warn(mesh, r, left, t, at_cap=cap <= left + 1.0)
    mesh.settle()


def _warn(mesh: Mesh, r: dict, left: float, t: float, at_cap: bool) -> None:
    if not mesh.store.mark_once(f"expiry-{r['id']}"):
        return
    from .store.queue_rules import shown, system_message

    waiters = [w["agent"] for w in mesh.waiting()
               if any(P.overlap(p, k, r["path"], r["kind"]) for p, k in w["paths"])]
    why = (f"it reached max_reservation ({format_duration(mesh.config.max_reservation)}): reserve it again to keep it"
           if at_cap else "it renews only while you work (guarded calls): reserve it again if you still need it")
    who = f"; waiting for it: {', '.join(waiters)}" if waiters else ""
    text = (f"your claim on {shown(r['path'], r['kind'])} expires in {format_duration(left)} "
            f"(at {r['expires']}); {why}{who}.")
    try:
        mesh.store.deliver([system_message(r["holder"], text, False, t)])
    except OSError:
        pass


def auto_claim(mesh: Mesh, canonical_paths: list[str]) -> list[Reservation]:
    """Claim or renew each written file (see the module docstring); the claims made."""
    from .records import Reservation

    me = _me(mesh)
    if me is None:
        return []
    t = now()
    ttl = mesh.config.auto_claim_ttl
    due: list[tuple[str, str]] = []
    for path in dict.fromkeys(canonical_paths):
        if path is None or path == P.ROOT:
            continue
        held = False
        taken = False
        for r in mesh.store.covering(path, P.FILE):
            try:
                left = parse_iso(r["expires"]) - t
            except ValueError:
                continue
            if left <= 0:
                continue
            if r["holder"] == me["name"] and r.get("session") in (me["session"], None):
                # a claim of one's own covers it: an auto-claim is renewed when short, any other is left alone
                held = True
                if r["reason"] == AUTO_REASON and r["path"] == path and left < ttl / 2:
                    due.append((path, P.FILE))
            elif mesh._counts(r, t):
                taken = True
        if not held and not taken:
            due.append((path, P.FILE))
    made: list[dict] = []
    for pair in due:  # one by one: a path another agent took meanwhile must not cost the others theirs
        try:
            made += mesh.store.claim(me["name"], me["session"], [pair], AUTO_REASON, ttl)
        except ReservationConflict:
            continue
    if made:
        mesh.record("auto_claim", paths=[r["path"] for r in made], until=iso(t + ttl))
    return [Reservation.from_dict(r) for r in made]
