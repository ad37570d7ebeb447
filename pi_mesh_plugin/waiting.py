"""Waiting for a queued claim: what ``pi-mesh reserve --wait DURATION`` does, for scripts.

:func:`wait_for_grant` polls with backoff (20 ms doubling to 250 ms): each
poll first settles the line (:meth:`Mesh.settle`), since an expiry or a
holder's death is only noticed by someone touching the claims, then looks
whether the ticket is gone and the claims are the caller's.  On timeout the
caller leaves the line, so a script that gave up is never granted a claim it
no longer waits for.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import paths as P

if TYPE_CHECKING:
    from .mesh import Mesh
    from .records import Queued, Reservation


def wait_for_grant(mesh: Mesh, queued: Queued, timeout: float) -> list[Reservation] | None:
    """The claims granted for ``queued`` within ``timeout`` seconds, or ``None`` (then the ticket is withdrawn)."""
    deadline = time.monotonic() + timeout
    step = 0.02
    while True:
        mesh.settle()
        if not any(t["id"] == queued.id for t in mesh.waiting()):
            held = _held(mesh, queued)
            if held is not None:
                return held
            return None  # the ticket was dropped (this agent left or was replaced)
        left = deadline - time.monotonic()
        if left <= 0:
            mesh.store.withdraw(mesh.agent or "", [p.rstrip("/") or P.ROOT for p in queued.paths])
            # granted in the instant between the last look and the withdrawal: it is ours after all
            return _held(mesh, queued)
        time.sleep(min(step, left))
        step = min(step * 2, 0.25)


def _held(mesh: Mesh, queued: Queued) -> list[Reservation] | None:
    wanted = {p.rstrip("/") or P.ROOT for p in queued.paths}
    mine = [r for r in mesh.reservations() if r.holder == mesh.agent and r.path in wanted]
    return mine if {r.path for r in mine} >= wanted else None
