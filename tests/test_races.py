"""Real OS processes racing on one mesh: claims on overlapping paths, concurrent senders."""

from __future__ import annotations

import multiprocessing
import os
import time

from pi_mesh_plugin import paths as P
from pi_mesh_plugin.mesh import Mesh
from tests import mesh_workers

TARGETS = ["src/", "src/a.py", "src/b.py", "src/sub/", "src/sub/c.py", "."]


def _run(target, args_for, n: int, timeout: float = 90):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(i), barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    try:
        got = [results.get(timeout=timeout) for _ in range(n)]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * n
    return got


def test_racing_claims_never_have_two_holders(project):
    os.makedirs(os.path.join(project, "src", "sub"))
    n = 4
    got = _run(mesh_workers.claim_loop,
               lambda i: (project, f"racer{i}", TARGETS, 2.0, 0.004, 1000 + i), n)
    intervals = []
    refused = 0
    for name, held, ref, errors in got:
        assert errors == [], errors
        refused += ref
        intervals += [(name, *h) for h in held]
    holders = {i[0] for i in intervals}
    # the race was real: everyone got something, and everyone was refused sometimes
    assert len(holders) == n and refused > 0 and len(intervals) > 4 * n, (len(intervals), refused)
    intervals.sort(key=lambda x: x[3])
    clashes = []
    for i, (n1, p1, k1, s1, e1) in enumerate(intervals):
        for n2, p2, k2, s2, e2 in intervals[i + 1:]:
            if s2 >= e1:
                break
            if n1 != n2 and P.overlap(p1, k1, p2, k2):
                clashes.append(((n1, p1, k1, s1, e1), (n2, p2, k2, s2, e2)))
    assert clashes == [], clashes[:3]
    # nothing left behind: every claim was released by its holder
    assert Mesh(project, None, cwd=project).reservations(live_only=False) == []


def test_concurrent_senders_lose_and_duplicate_nothing(project):
    sink = Mesh(project, "sink", cwd=project)
    sink.join()
    n, count = 4, 60
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=mesh_workers.send_many, args=(project, f"sender{i}", "sink", count, barrier, results))
             for i in range(n)]
    for p in procs:
        p.start()
    # read (and mark read) while they send: the union of all reads must be exact
    received = []
    deadline = time.monotonic() + 90
    while len(received) < n * count and time.monotonic() < deadline:
        received += sink.read_inbox()
        time.sleep(0.005)
    sent = dict(results.get(timeout=30) for _ in range(n))
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * n
    received += sink.read_inbox()
    assert sink.warnings == []
    ids = [m.id for m in received]
    assert len(ids) == len(set(ids)) == n * count
    assert sorted(ids) == sorted(i for v in sent.values() for i in v)
    texts = sorted((m.sender, m.text) for m in received)
    assert texts == sorted((f"sender{i}", f"sender{i}:{j}") for i in range(n) for j in range(count))
    # per sender, arrival order (id order) is the order of sending
    for name, sent_ids in sent.items():
        assert sent_ids == sorted(sent_ids)
        assert [m.text for m in sorted(received, key=lambda m: m.id) if m.sender == name] == \
            [f"{name}:{j}" for j in range(count)]
    assert os.listdir(os.path.join(project, ".pi", "mesh", "inbox", "sink", "tmp")) == []
    assert not os.path.exists(os.path.join(project, ".pi", "mesh", "inbox", "sink", "bad"))
