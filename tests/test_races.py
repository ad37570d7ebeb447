"""Real OS processes racing on one mesh: claims on overlapping paths, concurrent senders."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from pi_mesh_plugin import paths as P
from pi_mesh_plugin.errors import ReservationConflict
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


def test_a_warm_reader_sees_each_claim_and_release_the_moment_it_returns(project):
    """No stale cache: a long-lived reader (index warm in memory) checks right after another process's
    reserve() / release() returned, many times in quick succession (inside the mtime 'racy' window)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    cycles = 150
    proc = ctx.Process(target=mesh_workers.claim_release_cycles, args=(project, "writer", "src/", cycles, child))
    proc.start()
    reader = Mesh(project, "reader", cwd=project)
    fresh_reads = 0
    try:
        assert parent.recv() == "ready"
        assert reader.check("src/x.py") is None
        parent.send("go")
        for i in range(cycles):
            assert parent.recv() == "held"
            blk = reader.check("src/x.py")
            assert blk is not None and blk.holder == "writer", f"cycle {i}: claim not seen"
            if i % 25 == 0:  # and a fresh process's view (index file path) agrees
                assert Mesh(project, None, cwd=project).check("src/x.py") is not None
                fresh_reads += 1
            parent.send("ok")
            assert parent.recv() == "released"
            assert reader.check("src/x.py") is None, f"cycle {i}: release not seen"
            parent.send("ok")
        assert parent.recv() == "done"
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0 and fresh_reads == 6


def test_claims_expire_at_their_ttl(mesh_factory, project):
    a, b = mesh_factory("a", cwd=project), mesh_factory("b", cwd=project)
    [r] = a.reserve(["src/"], "short", ttl=0.5)
    assert b.check("src/x") is not None
    with pytest.raises(ReservationConflict):
        b.reserve(["src/x"], "mine")
    time.sleep(0.6)
    assert b.check("src/x") is None
    assert b.reserve(["src/x"], "mine")[0].holder == "b"
    assert [x.holder for x in b.reservations()] == ["b"]
    assert not os.path.exists(os.path.join(project, ".pi", "mesh", "reservations", r.id + ".json"))  # cleaned up
