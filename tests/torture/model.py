"""5. Model-based test: a hypothesis state machine drives the real file store (real processes own the
agents; crashes are real SIGKILLs of a forked child at a named crash point) and checks it against an
in-memory model after every step."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from pi_mesh_plugin import paths as P
from pi_mesh_plugin.errors import NameTaken, NotJoined, ReservationConflict, UnknownAgent
from pi_mesh_plugin.mesh import Mesh

from .common import new_project

NAMES = st.sampled_from(["ann", "bob", "cy"])
# (as given, canonical, kind)
PATHS = st.sampled_from([("src/", "src", P.DIR), ("src/a.py", "src/a.py", P.FILE), ("src/sub/", "src/sub", P.DIR),
                         ("src/sub/c.py", "src/sub/c.py", P.FILE), (".", ".", P.DIR)])
STEPS = st.sampled_from(["temp-write", "file-fsync", "rename", "dir-fsync"])
COUNTS = {"examples": 0, "steps": 0, "crashes": 0, "rules": {}}


def _count(rule_name: str) -> None:
    COUNTS["steps"] += 1
    COUNTS["rules"][rule_name] = COUNTS["rules"].get(rule_name, 0) + 1


class MeshModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        COUNTS["examples"] += 1
        self.base = tempfile.mkdtemp(prefix="pi-mesh-model-")
        self.root = new_project(self.base, "p")
        from pi_mesh_plugin.store.files import FileStore

        FileStore(self.root).ensure_layout()  # so a crash point hits the operation, not the first .gitignore
        self.owners: dict[str, subprocess.Popen] = {}
        self.meshes: dict[str, Mesh] = {}
        self.alive: dict[str, bool] = {}          # registered agents -> live?
        self.unread: dict[str, dict[str, str]] = {}
        self.claims: dict[tuple[str, str], tuple[str, float]] = {}  # (holder, canonical) -> (kind, expires)

    # -- helpers ------------------------------------------------------------
    def _owner(self) -> subprocess.Popen:
        return subprocess.Popen(["sleep", "3600"])

    def _mesh(self, name: str) -> Mesh:
        if name not in self.meshes:
            self.meshes[name] = Mesh(self.root, name, cwd=self.root)
        return self.meshes[name]

    def _counting(self) -> set[tuple[str, str]]:
        now = time.time()
        return {k for k, (_kind, exp) in self.claims.items() if exp > now and self.alive.get(k[0])}

    def _took_over(self, name: str) -> None:
        """A dead name taken over: its claims drop.  Every join here is the same harness in the same checkout (a
        restart, pi_mesh_plugin/store/takeover.py), so its unread mail stays the name's."""
        for k in [k for k in self.claims if k[0] == name]:
            del self.claims[k]

    # -- rules --------------------------------------------------------------
    @rule(name=NAMES)
    def register(self, name: str) -> None:
        _count("register")
        owner = self._owner()
        m = Mesh(self.root, name, cwd=self.root)
        try:
            m.join(pid=owner.pid, harness="model")
        except NameTaken:
            assert self.alive.get(name), f"{name} refused although the model has it dead or absent"
            owner.kill()
            owner.wait()
            m.close()
            return
        assert not self.alive.get(name), f"{name} taken although its holder is alive"
        if name in self.alive:
            self._took_over(name)
            self.owners[name].wait()
        self.owners[name] = owner
        self.alive[name] = True
        self.unread.setdefault(name, {})
        self.meshes[name] = m

    @precondition(lambda self: bool(self.alive))
    @rule(frm=NAMES, to=NAMES, text=st.text(min_size=1, max_size=40).filter(lambda t: t.strip() != ""))
    def send(self, frm: str, to: str, text: str) -> None:
        _count("send")
        if frm not in self.alive:
            return
        try:
            msg = self._mesh(frm).send(to, text)
        except UnknownAgent:
            assert to not in self.alive
            return
        assert to in self.alive
        self.unread[to][msg.id] = text

    @precondition(lambda self: bool(self.alive))
    @rule(frm=NAMES, text=st.text(min_size=1, max_size=40).filter(lambda t: t.strip() != ""))
    def broadcast(self, frm: str, text: str) -> None:
        """One file linked into every live recipient's inbox; each reads (and marks) only its own."""
        _count("broadcast")
        if frm not in self.alive:
            return
        sent = self._mesh(frm).broadcast(text)
        assert sorted(m.to for m in sent) == self._live_others(frm), (sent, self.alive)
        for m in sent:
            self.unread[m.to][m.id] = text

    def _live_others(self, name: str) -> list[str]:
        return sorted(n for n, live in self.alive.items() if live and n != name)

    @rule(name=NAMES)
    def read(self, name: str) -> None:
        _count("read")
        if name not in self.alive:
            return
        got = {m.id: m.text for m in self._mesh(name).read_inbox()}
        assert got == self.unread[name], f"inbox of {name}: got {got}, model {self.unread[name]}"
        self.unread[name] = {}

    def _expect_reserve(self, name: str, canonical: str, kind: str) -> bool:
        for (h, p) in self._counting():
            if h != name and P.overlap(canonical, kind, p, self.claims[(h, p)][0]):
                return False
        return True

    def _reserve(self, name: str, given: str, canonical: str, kind: str, ttl: float) -> bool:
        m = self._mesh(name)
        try:
            m.reserve([given], "model", ttl=ttl)
        except NotJoined:
            assert not self.alive[name]
            return False
        except ReservationConflict:
            assert self.alive[name] and not self._expect_reserve(name, canonical, kind), "refused wrongly"
            return False
        assert self.alive[name] and self._expect_reserve(name, canonical, kind), "granted wrongly"
        self.claims[(name, canonical)] = (kind, time.time() + ttl)
        return True

    @rule(name=NAMES, path=PATHS)
    def reserve(self, name: str, path: tuple[str, str, str]) -> None:
        _count("reserve")
        if name in self.alive:
            self._reserve(name, *path, ttl=600)

    @rule(name=NAMES, path=st.one_of(st.none(), PATHS))
    def release(self, name: str, path: tuple[str, str, str] | None) -> None:
        _count("release")
        if name not in self.alive:
            return
        counting = self._counting()
        gone = {r.path for r in self._mesh(name).release(None if path is None else [path[0]])}
        for k in [k for k in self.claims if k[0] == name and (path is None or k[1] == path[1])]:
            assert k not in counting or k[1] in gone, f"{k} was not released"
            del self.claims[k]

    @rule(name=NAMES, path=PATHS)
    def expire(self, name: str, path: tuple[str, str, str]) -> None:
        """A claim with a short TTL lapses: afterwards it blocks nobody."""
        _count("expire")
        if name in self.alive and self._reserve(name, *path, ttl=0.02):
            time.sleep(0.03)

    @precondition(lambda self: any(self.alive.values()))
    @rule(name=NAMES)
    def kill_agent(self, name: str) -> None:
        _count("kill_agent")
        if not self.alive.get(name):
            return
        self.owners[name].send_signal(signal.SIGKILL)
        self.owners[name].wait()
        self.alive[name] = False

    @rule(op=st.sampled_from(["send", "register", "broadcast"]), step=STEPS, frm=NAMES, to=NAMES)
    def crash_and_reopen(self, op: str, step: str, frm: str, to: str) -> None:
        """A forked child SIGKILLs itself at a named crash point; then every handle is reopened."""
        _count("crash_and_reopen")
        if op == "send" and (frm not in self.alive or to not in self.alive):
            return
        if op == "broadcast" and (frm not in self.alive or not self._live_others(frm)):
            return
        if op == "register" and frm in self.alive:
            return
        owner = self._owner() if op == "register" else None
        text = f"crash at {step}"
        pid = os.fork()
        if pid == 0:  # child
            try:
                from pi_mesh_plugin.store.files import fsio

                m = Mesh(self.root, frm, cwd=self.root)
                fsio.set_crash_point(step)
                if op == "send":
                    m.send(to, text)
                elif op == "broadcast":
                    m.broadcast(text)
                else:
                    m.join(pid=owner.pid, harness="model")  # type: ignore[union-attr]
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"{op}@{step} did not crash"
        COUNTS["crashes"] += 1
        landed = step in ("rename", "dir-fsync")
        for m in self.meshes.values():  # reopen: nothing cached survives
            m.close()
        self.meshes = {}
        if op == "send":
            box = {m.id: m.text for m in self._mesh(to).read_inbox(peek=True)}
            new = {i: t for i, t in box.items() if i not in self.unread[to]}
            assert len(new) == (1 if landed else 0) and all(t == text for t in new.values()), (op, step, new)
            self.unread[to].update(new)
        elif op == "broadcast":
            # killed before the file was named: nobody has it; right after naming it in the first inbox:
            # exactly one recipient; after the last step: every live recipient (one id, one text)
            recipients = self._live_others(frm)
            got = {}
            for r in recipients:
                box = {m.id: m.text for m in self._mesh(r).read_inbox(peek=True)}
                got[r] = {i: t for i, t in box.items() if i not in self.unread[r]}
            have = [r for r in recipients if got[r]]
            want = 0 if not landed else 1 if step == "rename" else len(recipients)
            assert len(have) == want, (op, step, got)
            assert all(len(g) == 1 and list(g.values()) == [text] for g in got.values() if g), got
            assert len({i for g in got.values() for i in g}) <= 1, got
            for r in have:
                self.unread[r].update(got[r])
        else:
            if landed:
                self.alive[frm] = True
                self.owners[frm] = owner  # type: ignore[assignment]
                self.unread[frm] = {}
            else:
                owner.kill()  # type: ignore[union-attr]
                owner.wait()  # type: ignore[union-attr]

    # -- invariants -----------------------------------------------------------
    @invariant()
    def matches_model(self) -> None:
        if not self.alive:
            return
        observer = self._mesh(next(iter(self.alive)))
        agents = {a.name: a.live for a in observer.agents()}
        assert agents == self.alive, f"agents {agents} != model {self.alive}"
        for name in self.alive:
            assert observer.unread_count(name) == len(self.unread[name]), f"unread count of {name}"
        store = {(r.holder, r.path) for r in observer.reservations(live_only=True)}
        model = self._counting()
        # claims that expire between the two reads are the only tolerated difference
        assert store == model or store - model == set() and all(
            self.claims[k][1] <= time.time() + 0.05 for k in model - store), f"claims {store} != model {model}"

    def teardown(self) -> None:
        for m in self.meshes.values():
            m.close()
        for p in self.owners.values():
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def run_model(max_examples: int, step_count: int) -> dict:
    for k in ("examples", "steps", "crashes"):
        COUNTS[k] = 0
    COUNTS["rules"] = {}
    t0 = time.monotonic()
    run_state_machine_as_test(MeshModel, settings=settings(
        max_examples=max_examples, stateful_step_count=step_count, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
    f = {"max_examples": max_examples, "stateful_step_count": step_count, "examples_run": COUNTS["examples"],
         "steps_run": COUNTS["steps"], "real_crashes": COUNTS["crashes"], "rules": dict(COUNTS["rules"]),
         "failures": 0, "wall_s": round(time.monotonic() - t0, 2), "ok": True}
    f["line"] = (f"model: max_examples {max_examples} stateful_step_count {step_count}: {f['examples_run']} examples, "
                 f"{f['steps_run']} steps, {f['real_crashes']} real crashes, 0 divergences ({f['wall_s']}s)")
    return f
