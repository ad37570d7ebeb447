"""A hypothesis state machine: reserve / release / expire / die / rejoin / check against a small model.

Agents: ``a`` and ``b`` live as long as this process; ``c`` is owned by a real
child process that a rule kills (and a new one replaces on rejoin); ``d`` is a
heartbeat-only agent "on another host" (``PI_MESH_HOSTNAME``) whose heartbeat a
rule makes stale.  Expiry is driven through the ``expires`` field the test
controls: a claim is rewritten (new file, as the store does) with an
``expires`` in the past, or made with a TTL of one millisecond.

``PI_MESH_STATEFUL_EXAMPLES`` / ``PI_MESH_STATEFUL_STEPS`` scale it up for long runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pi_mesh_plugin.clock import iso, new_id
from pi_mesh_plugin.errors import NotJoined, ReservationConflict
from pi_mesh_plugin.mesh import Mesh
from pi_mesh_plugin.store.files import fsio

AGENTS = ["a", "b", "c", "d"]
PATHS = [".", "x", "x/y", "x/y/z", "x/w", "v", "v/u"]


def covers(claim: str, kind: str, path: str) -> bool:
    c = () if claim == "." else tuple(claim.split("/"))
    q = () if path == "." else tuple(path.split("/"))
    return q == c or (kind == "dir" and q[:len(c)] == c)


def overlap(a: str, ak: str, b: str, bk: str) -> bool:
    return covers(a, ak, b) or covers(b, bk, a)


def spelled(path: str, kind: str) -> str:
    return path + "/" if kind == "dir" and path != "." else path


class MeshMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.base = tempfile.mkdtemp(prefix="pi-mesh-stateful-")
        self.root = os.path.join(self.base, "p")
        os.makedirs(self.root)
        self.owner: subprocess.Popen | None = None
        self.d_pid = 5000
        self.meshes = {n: Mesh(self.root, n, cwd=self.root) for n in AGENTS}
        self.alive = {n: False for n in AGENTS}
        self.claims: set[tuple[str, str, str]] = set()  # live claims: (holder, path, kind)
        for n in AGENTS:
            self._join(n)

    def teardown(self) -> None:
        if getattr(self, "owner", None) is not None:
            self.owner.kill()
            self.owner.wait()
        if getattr(self, "base", None):
            shutil.rmtree(self.base, ignore_errors=True)

    def _join(self, name: str) -> None:
        m = self.meshes[name]
        if name == "c":
            self.owner = subprocess.Popen(["sleep", "300"])
            m.join(pid=self.owner.pid)
        elif name == "d":
            self.d_pid += 1  # a new process over there: a new session
            old = os.environ.get("PI_MESH_HOSTNAME")
            os.environ["PI_MESH_HOSTNAME"] = "another-host"
            try:
                m.join(pid=self.d_pid)
            finally:
                if old is None:
                    del os.environ["PI_MESH_HOSTNAME"]
                else:
                    os.environ["PI_MESH_HOSTNAME"] = old
        else:
            m.join(pid=os.getpid())
        self.alive[name] = True

    # -- rules ------------------------------------------------------------------------
    @rule(who=st.sampled_from(AGENTS), path=st.sampled_from(PATHS), kind=st.sampled_from(["dir", "file"]),
          tiny=st.booleans())
    def reserve(self, who, path, kind, tiny) -> None:
        kind = "dir" if path == "." else kind
        m = self.meshes[who]
        if not self.alive[who]:
            with pytest.raises(NotJoined):
                m.reserve([spelled(path, kind)], "dead men claim nothing")
            return
        conflict = sorted({h for h, p, k in self.claims if h != who and overlap(path, kind, p, k)})
        try:
            made = m.reserve([spelled(path, kind)], f"{who} at work", ttl="0.001" if tiny else "10m")
        except ReservationConflict as e:
            assert conflict, f"refused without a conflict: {e}"
            assert sorted({r.holder for r in e.conflicts}) == conflict
            return
        assert not conflict, f"{who} got {path} ({kind}) although {conflict} hold overlapping claims"
        assert [(r.holder, r.path, r.kind) for r in made] == [(who, path, kind)]
        self.claims.discard((who, path, kind))
        if tiny:
            time.sleep(0.002)
        else:
            self.claims.add((who, path, kind))

    @rule(who=st.sampled_from(AGENTS), path=st.none() | st.sampled_from(PATHS))
    def release(self, who, path) -> None:
        gone = self.meshes[who].release(None if path is None else [path])
        assert all(r.holder == who for r in gone)
        assert {(r.holder, r.path, r.kind) for r in gone} >= {c for c in self.claims
                                                              if c[0] == who and path in (None, c[1])}
        self.claims -= {c for c in self.claims if c[0] == who and path in (None, c[1])}

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data())
    def expire(self, data) -> None:
        """Rewrite one live claim with an ``expires`` in the past (a new file, as the store writes)."""
        holder, path, kind = data.draw(st.sampled_from(sorted(self.claims)))
        store = self.meshes[holder].store
        with store.claims._lock():
            [rec] = [r for r in store.reservations() if (r["holder"], r["path"], r["kind"]) == (holder, path, kind)]
            rec = {**rec, "id": new_id(), "expires": iso(time.time() - 1)}
            fsio.create_exclusive(os.path.join(store.claims.directory, rec["id"] + ".json"), fsio.dumps(rec))
            store.claims._unlink([r for r in store.reservations()
                                  if (r["holder"], r["path"], r["kind"]) == (holder, path, kind) and r["id"] != rec["id"]][:1])
        self.claims.discard((holder, path, kind))

    @precondition(lambda self: self.alive["c"])
    @rule()
    def kill_c(self) -> None:
        self.owner.kill()
        self.owner.wait()
        self.owner = None
        self.alive["c"] = False
        self.claims = {x for x in self.claims if x[0] != "c"}

    @precondition(lambda self: self.alive["d"])
    @rule()
    def d_goes_silent(self) -> None:
        self.meshes["d"].store.update_agent("d", None, {"last_seen": "2001-01-01T00:00:00.000000Z"})
        self.alive["d"] = False
        self.claims = {x for x in self.claims if x[0] != "d"}

    @precondition(lambda self: not (self.alive["c"] and self.alive["d"]))
    @rule(who=st.sampled_from(["c", "d"]))
    def rejoin(self, who) -> None:
        if self.alive[who]:
            return
        self._join(who)  # a new session under the old name: nothing of the old one comes back
        assert not any(h == who for h, _, _ in self.claims)

    @rule()
    def doctor_fix(self) -> None:
        self.meshes["a"].doctor(fix=True)
        left = {(r.holder, r.path, r.kind) for r in self.meshes["a"].reservations(live_only=False)}
        assert left == self.claims, "doctor --fix must remove exactly the claims that do not count"

    @rule(who=st.sampled_from(AGENTS + [None]), path=st.sampled_from(PATHS), kind=st.sampled_from(["dir", "file"]))
    def check(self, who, path, kind) -> None:
        m = self.meshes[who] if who else Mesh(self.root, None, cwd=self.root)
        block = m.check(spelled(path, kind))
        if kind == "dir" or path == ".":
            holders = {h for h, p, k in self.claims if h != who and overlap(path, "dir", p, k)}
        else:
            holders = {h for h, p, k in self.claims if h != who and covers(p, k, path)}
        assert (block is not None) == bool(holders), (who, path, kind, self.claims)
        if block is not None:
            assert block.holder in holders and block.holder in block.message

    # -- invariants -----------------------------------------------------------------
    @invariant()
    def live_claims_match_the_model(self) -> None:
        if not hasattr(self, "meshes"):
            return
        got = {(r.holder, r.path, r.kind) for r in self.meshes["b"].reservations()}
        assert got == self.claims

    @invariant()
    def liveness_matches_the_model(self) -> None:
        if not hasattr(self, "meshes"):
            return
        listed = {a.name: a.live for a in self.meshes["a"].agents()}
        assert {n for n, live in listed.items() if live} == {n for n, live in self.alive.items() if live}
        # a dead agent is listed as gone until doctor --fix (or a rejoin) removes its record
        assert set(listed) <= set(AGENTS)


MeshMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("PI_MESH_STATEFUL_EXAMPLES", "20")),
    stateful_step_count=int(os.environ.get("PI_MESH_STATEFUL_STEPS", "25")),
    deadline=None,
)
test_mesh_state_machine = MeshMachine.TestCase
