"""Eight real processes queue on one claim; holders and waiters are killed -9 in the middle (both stores).

Counted as a queue checker counts: every waiter that stayed alive is granted exactly once (none lost, none
twice), in the order it joined the line, and no two hold the claim at once (each grant's claim was created
after the previous holder released or was killed, and no other live claim on the path existed at the grant).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time

from pi_mesh_plugin.clock import parse_iso
from pi_mesh_plugin.mesh import Mesh
from tests.conftest import REPO

N = 8
KILLED_WAITERS = (2, 5)  # killed -9 while in line
DIES_HOLDING = 3  # killed -9 while holding the claim: it goes on without a release


def _events(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def _wait_for(path: str, event: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in _events(path):
            if ev["event"] == event:
                return ev
        assert proc.poll() is None, f"worker exited {proc.returncode} before {event}: {_events(path)}"
        time.sleep(0.01)
    raise AssertionError(f"no {event} in {path}: {_events(path)}")


def test_eight_waiters_with_kills(backend, project, tmp_path, mesh_factory):
    path = "src/auth/"
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    first = mesh_factory("first", cwd=project)
    first.reserve([path], "holds it while the line forms")
    procs, outs = [], []
    try:
        for i in range(N):
            out = str(tmp_path / f"w{i}.jsonl")
            mode = "die" if i == DIES_HOLDING else "normal"
            p = subprocess.Popen([sys.executable, "-m", "tests.contract.queue_worker", project, f"w{i}", path, mode,
                                  out], cwd=REPO, env=env)
            procs.append(p)
            outs.append(out)
            q = _wait_for(out, "queued", p)  # one at a time: the line's order is the workers' order
            assert q["position"] == i + 1
        for i in KILLED_WAITERS:
            procs[i].kill()
            procs[i].wait()
        ends: dict[int, float] = {}
        t_release = time.time()
        first.release()
        _wait_for(outs[DIES_HOLDING], "granted", procs[DIES_HOLDING], timeout=120)
        ends[DIES_HOLDING] = time.time()
        procs[DIES_HOLDING].kill()  # dies holding: nobody releases; the waiters' polls notice
        procs[DIES_HOLDING].wait()
        for i, p in enumerate(procs):
            if i not in KILLED_WAITERS and i != DIES_HOLDING:
                assert p.wait(timeout=120) == 0, _events(outs[i])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    grants = []
    for i, out in enumerate(outs):
        evs = _events(out)
        got = [e for e in evs if e["event"] == "granted"]
        if i in KILLED_WAITERS:
            assert got == [], f"w{i} was killed in line but granted: {evs}"
            continue
        assert len(got) == 1, f"w{i}: granted {len(got)} times: {evs}"
        rel = [e["wall"] for e in evs if e["event"] == "released"]
        grants.append((parse_iso(got[0]["created"]), i, rel[0] if rel else ends[i], got[0]))
    grants.sort()
    expected = [i for i in range(N) if i not in KILLED_WAITERS]
    assert [i for _, i, _, _ in grants] == expected, grants  # granted in the order they queued
    assert grants[0][0] > t_release - 1  # (sanity: the first grant came with the first release)
    for (_, i0, end0, _), (c1, i1, _, g1) in itertools.pairwise(grants):
        assert c1 >= end0, f"w{i1} was granted at {c1} while w{i0} held it until {end0}"  # never two holders
        assert g1["others"] == [], g1
    check = Mesh(project, "checker", cwd=project)
    try:
        assert check.waiting() == []
        assert [r.holder for r in check.reservations()] == []
    finally:
        check.close()
