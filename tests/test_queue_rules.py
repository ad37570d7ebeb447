"""Properties of the waiting line's rules (store/queue_rules.py), checked against a brute-force model.

Random claims, tickets (one or two paths, files and directories) and dead waiters:

* no two granted tickets overlap, and no grant overlaps a live claim of another agent;
* FIFO: a waiting ticket never lets a later overlapping ticket of another agent through;
* a ticket is granted when, and only when, nothing of another agent stands in its way (a claim, or an
  earlier live ticket - granted now, or still waiting): nobody waits for nothing;
* dead waiters are dropped, never granted;
* find_cycle reports a cycle exactly when the waiting graph plus the new edges has one through the asker.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pi_mesh_plugin import paths as P
from pi_mesh_plugin.store import queue_rules as Q

AGENTS = ["a", "b", "c", "d"]
PATHS = [("src", "dir"), ("src/x.py", "file"), ("src/y.py", "file"), ("docs", "dir"), (".", "dir"),
         ("src/sub", "dir"), ("src/sub/z.py", "file")]

claims_st = st.lists(st.tuples(st.sampled_from(AGENTS), st.sampled_from(PATHS)), max_size=4)
tickets_st = st.lists(st.tuples(st.sampled_from(AGENTS), st.lists(st.sampled_from(PATHS), min_size=1, max_size=2,
                                                                   unique=True)), max_size=7)
dead_st = st.sets(st.sampled_from(AGENTS), max_size=2)


def _build(claims, tickets):
    alive = [{"holder": h, "path": p, "kind": k} for h, (p, k) in claims]
    ts = [{"id": f"{i:04d}", "agent": a, "session": None, "paths": [list(x) for x in ps]}
          for i, (a, ps) in enumerate(tickets)]
    return alive, ts


def _ov(a, b):
    return any(P.overlap(p, k, q, j) for p, k in a for q, j in b)


@settings(max_examples=400, deadline=None)
@given(claims_st, tickets_st, dead_st)
def test_plan_grants_safely_in_order(claims, tickets, gone):
    alive, ts = _build(claims, tickets)
    granted, dead = Q.plan(ts, alive, lambda name, s: name not in gone)
    gids = {t["id"] for t in granted}
    assert sorted(t["id"] for t in dead) == [t["id"] for t in ts if t["agent"] in gone]
    assert not any(t["id"] in gids for t in dead)
    for i, t in enumerate(granted):
        for u in granted[i + 1:]:
            if t["agent"] != u["agent"]:
                assert not _ov(t["paths"], u["paths"]), (t, u)  # never two holders
        assert not any(c["holder"] != t["agent"] and _ov(t["paths"], [(c["path"], c["kind"])]) for c in alive)
    live = [t for t in ts if t not in dead]
    for i, t in enumerate(live):
        in_way = any(c["holder"] != t["agent"] and _ov(t["paths"], [(c["path"], c["kind"])]) for c in alive) or \
            any(u["agent"] != t["agent"] and _ov(t["paths"], u["paths"]) for u in live[:i])  # granted or waiting
        assert (t["id"] in gids) == (not in_way), (t, in_way)  # FIFO, and nobody waits for nothing


@settings(max_examples=300, deadline=None)
@given(claims_st, tickets_st, st.sampled_from(AGENTS), st.lists(st.sampled_from(AGENTS), min_size=1, max_size=2))
def test_find_cycle_matches_reachability(claims, tickets, asker, holders):
    alive, ts = _build(claims, tickets)
    holders = [h for h in holders if h != asker]
    graph = Q.waits_for(ts, alive)
    seen, todo = set(), list(holders)
    while todo:  # brute force: can the asker be reached from the holders it would wait for?
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += list(graph.get(n, ()))
    cycle = Q.find_cycle(asker, holders, ts, alive)
    assert (cycle is not None) == (asker in seen)
    if cycle:
        assert cycle[0] == cycle[-1] == asker and cycle[1] in holders
        for x, y in zip(cycle[1:], cycle[2:]):
            assert y in graph.get(x, ())  # every step is a real wait


def test_ordinals_and_keys():
    assert [Q.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert Q.path_key("src/auth") == "src%2Fauth" and Q.path_key(".") == "%2E" and Q.path_key("a%b") == "a%25b"
    assert len({Q.path_key(p) for p in ("a/b", "a%2Fb", "a%b")}) == 3  # the key is one-to-one
