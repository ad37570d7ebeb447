"""A reserve of many paths is all or nothing, even when the reserving process is SIGKILLed.

A worker process (the agent's owner is the test process, so the agent stays live after the kill,
as an agent whose sidecar was killed mid-call would) reserves N paths and is killed:

* at each named crash point of the file store's reserve (``claim-written``: after the first claim
  file, ``claim-staged``: every claim file durable, no commit marker yet, ``claim-committed``:
  just after the marker), and at ``rename`` / ``dir-fsync`` of the first file;
* at random moments during the reserve (``kills``).

After each kill a fresh reader counts the agent's live claims among the N paths - through
``claims`` and through ``check`` of every path - and they must agree and be 0 or N.  Then the
same agent reserves again, which must succeed and leave no staged file behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from .common import new_project, worker_env

CRASH_POINTS = {"claim-written": 0, "claim-staged": 0, "claim-committed": 1, "rename": 0, "dir-fsync": 0}

_WORKER = r"""
import json, sys
from pi_mesh_plugin.mesh import Mesh
a = json.loads(sys.argv[1])
m = Mesh(a["root"], "bulk", cwd=a["root"])
m.join(pid=a["owner"])
if a["crash_at"]:
    from pi_mesh_plugin.store.files import fsio
    fsio.set_crash_point(a["crash_at"])  # armed after the join, for the reserve only
print("GO", flush=True)
m.reserve(a["paths"], "a reserve of many paths", ttl=600)
print("DONE", flush=True)
"""


def _run(root: str, paths: list[str], crash_at: str | None, kill_after: float | None) -> tuple[str, float]:
    import json

    env = worker_env()
    arg = json.dumps({"root": root, "owner": os.getpid(), "paths": paths, "crash_at": crash_at})
    p = subprocess.Popen([sys.executable, "-c", _WORKER, arg], env=env, cwd=root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if line != "GO":
        raise RuntimeError(f"worker did not start: {line} {p.stderr.read()[-2000:] if p.stderr else ''}")
    t = time.monotonic()
    if kill_after is not None:
        time.sleep(kill_after)
        os.kill(p.pid, signal.SIGKILL)
    out, err = p.communicate(timeout=300)
    took = time.monotonic() - t
    if p.returncode == 0:
        return "done", took
    if p.returncode == -signal.SIGKILL:
        return "killed", took
    raise RuntimeError(f"worker failed ({p.returncode}): {err[-2000:]}")


def _count(root: str, paths: list[str]) -> tuple[int, int, int]:
    """(claims listed live for the paths, paths check blocks, staged claim files) in a fresh reader."""
    from pi_mesh_plugin.mesh import Mesh

    with Mesh(root, "observer", cwd=root) as m:
        listed = sum(1 for r in m.reservations(live_only=True) if r.holder == "bulk")
        blocked = sum(1 for p in paths if m.check(p) is not None)
        staged = len(m.store.claims.index.current().pending)  # type: ignore[attr-defined]
    return listed, blocked, staged


def _release(root: str) -> None:
    from pi_mesh_plugin.mesh import Mesh

    with Mesh(root, "bulk", cwd=root) as m:
        m.join(pid=os.getpid())
        m.release()


def atomic_reserve(base: str, n: int = 120, kills: int = 6, seed: int = 1) -> dict:
    base = os.path.join(base, "atomic")
    os.makedirs(base)
    root = new_project(base, "proj")
    paths = [f"src/many/p{i:04d}.py" for i in range(n)]
    rng = random.Random(seed)
    results = []
    broken = []
    state, full_time = _run(root, paths, None, None)  # an uninterrupted reserve: how long one takes
    listed, blocked, _ = _count(root, paths)
    if (state, listed, blocked) != ("done", n, n):
        broken.append(f"uninterrupted reserve: {state}, listed {listed}, blocked {blocked}")
    _release(root)
    runs = [(cp, None) for cp in CRASH_POINTS] + [(None, rng.uniform(0.0, full_time)) for _ in range(kills)]
    for crash_at, after in runs:
        state, _ = _run(root, paths, crash_at, after)
        listed, blocked, staged = _count(root, paths)
        from pi_mesh_plugin.mesh import Mesh

        with Mesh(root, "observer", cwd=root) as m:
            unfinished = sum(1 for f in m.doctor(fix=False) if f["kind"] == "unfinished-reserve")
        ok = listed == blocked and listed in (0, n) and (state != "done" or listed == n)
        if crash_at is not None:
            ok = ok and state == "killed" and listed == CRASH_POINTS[crash_at] * n
        if staged and unfinished != staged:
            ok = False
        results.append({"crash_at": crash_at, "kill_after_s": None if after is None else round(after, 4),
                        "state": state, "listed": listed, "blocked": blocked, "staged_left": staged,
                        "doctor_reported": unfinished})
        if not ok:
            broken.append(results[-1])
        _release(root)
        # the same agent reserves again: it succeeds and sweeps the staged files of the killed one
        again, _ = _run(root, paths, None, None)
        listed2, _, staged2 = _count(root, paths)
        if again != "done" or listed2 != n or staged2 != 0:
            broken.append({"after": results[-1], "again": again, "listed": listed2, "staged": staged2})
        _release(root)
    killed = [r for r in results if r["state"] == "killed"]
    partial = [r for r in results if r["listed"] not in (0, n) or r["listed"] != r["blocked"]]
    f = {"paths_per_reserve": n, "runs": len(results), "killed": len(killed), "partial": len(partial),
         "none_in_force": sum(1 for r in killed if r["listed"] == 0),
         "all_in_force": sum(1 for r in killed if r["listed"] == n), "uninterrupted_s": round(full_time, 3),
         "results": results, "broken": broken, "ok": not broken and not partial}
    f["line"] = (f"atomic reserve: {len(results)} reserves of {n} paths, {len(killed)} SIGKILLed "
                 f"({len(CRASH_POINTS)} at named crash points, the rest at random moments); partial claim sets "
                 f"{len(partial)}; none in force {f['none_in_force']}, all in force {f['all_in_force']}; "
                 f"problems {len(broken)}")
    return f
