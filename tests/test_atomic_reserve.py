"""A reserve of several paths is all or nothing: staged claim files and one commit marker.

The kill -9 proof at a bounded size (``python -m tests.torture --only atomic_reserve --full`` runs
3,000 paths and 20 random kills); the layout itself checked in-process.
"""

from __future__ import annotations

import json
import os

import pytest


@pytest.mark.slow
def test_reserve_of_many_paths_is_all_or_nothing_under_kill9(tmp_path) -> None:
    from tests.torture.atomic_reserve import atomic_reserve

    f = atomic_reserve(str(tmp_path), n=40, kills=3)
    print(f["line"])
    assert f["partial"] == 0 and f["broken"] == [], f
    named = {r["crash_at"]: r for r in f["results"] if r["crash_at"]}
    assert named["claim-staged"]["listed"] == 0 and named["claim-staged"]["staged_left"] == 40
    assert named["claim-staged"]["doctor_reported"] == 40
    assert named["claim-committed"]["listed"] == 40
    assert f["ok"]


def test_staged_claims_are_not_in_force_until_the_marker_exists(mesh_factory, project) -> None:
    alice, bob = mesh_factory("alice", cwd=project), mesh_factory("bob", cwd=project)
    made = alice.reserve(["src/x.py", "src/y.py", "docs/"], "three at once")
    rdir = os.path.join(alice.root, ".pi", "mesh", "reservations")
    markers = [n for n in os.listdir(rdir) if n.endswith(".batch")]
    assert len(markers) == 1
    with open(os.path.join(rdir, markers[0])) as f:
        marker = json.load(f)
    assert sorted(marker["claims"]) == sorted(r.id for r in made) and marker["holder"] == "alice"
    assert bob.check("src/x.py") is not None
    # take the marker away (as if the reserve had been killed just before making it): none is in force
    os.rename(os.path.join(rdir, markers[0]), os.path.join(str(alice.root), "marker.saved"))
    assert bob.check("src/x.py") is None and bob.check("docs/a.md") is None
    assert [r for r in bob.reservations() if r.holder == "alice"] == []
    assert sum(1 for f in bob.doctor() if f["kind"] == "unfinished-reserve") == 3
    os.rename(os.path.join(str(alice.root), "marker.saved"), os.path.join(rdir, markers[0]))
    assert bob.check("src/y.py") is not None  # back in force, all three
    assert len([r for r in bob.reservations() if r.holder == "alice"]) == 3
    # releasing all of them removes the marker too; a one-path reserve needs none
    alice.release()
    assert os.listdir(rdir) == []
    alice.reserve(["src/z.py"], "one path")
    assert [n for n in os.listdir(rdir) if n.endswith(".batch")] == []


def test_a_writer_sweeps_what_a_killed_reserve_staged(mesh_factory, project) -> None:
    from pi_mesh_plugin.store.files import fsio

    alice, bob = mesh_factory("alice", cwd=project), mesh_factory("bob", cwd=project)
    alice.reserve(["src/x.py", "src/y.py"], "two")
    rdir = os.path.join(alice.root, ".pi", "mesh", "reservations")
    for n in os.listdir(rdir):
        if n.endswith(".batch"):
            os.unlink(os.path.join(rdir, n))  # the state a kill at claim-staged leaves
    assert len(os.listdir(rdir)) == 2 and bob.check("src/x.py") is None
    bob.reserve(["src/x.py"], "free, since alice's reserve never committed")  # sweeps under the lock
    assert [fsio.read_json(os.path.join(rdir, n))["holder"] for n in os.listdir(rdir)] == ["bob"]
