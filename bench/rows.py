"""The rows of the benchmark table, one function each.

Each function returns one or more :class:`Row`.  A row whose component is not
there (no hook command, no sidecar, no PostgreSQL server) reports
``n/a`` with the reason instead of failing the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys

from .fixtures import CHECKED, Project, new_project
from .hook_floor import hook_floor_rows
from .plugin_hook import plugin_hook_rows
from .queue_grant import queue_rows
from .sandbox_cost import sandbox_rows
from .harness import Stats, fmt_ratio, fmt_time, disk_probe, paired, perf, run_process, sample

PASS, FAIL, REPORT, NA = "pass", "FAIL", "report", "n/a"


class Row:
    def __init__(self, key: str, what: str, baseline: str = "—", target: str = "report", measured: str = "",
                 ratio: float | None = None, status: str = REPORT, data: dict | None = None, note: str = "") -> None:
        self.key, self.what, self.baseline, self.target = key, what, baseline, target
        self.measured, self.ratio, self.status, self.data, self.note = measured, ratio, status, data or {}, note

    def to_dict(self) -> dict:
        return {"key": self.key, "what": self.what, "baseline": self.baseline, "target": self.target,
                "measured": self.measured, "ratio": self.ratio, "status": self.status, "data": self.data,
                "note": self.note}


def verdict(ok: bool) -> str:
    return PASS if ok else FAIL


class Ctx:
    """Sizes (full or toy), the scratch directory, and what the rows share."""

    def __init__(self, base: str, quick: bool = False) -> None:
        self.base, self.quick = base, quick
        self.shared: dict = {}

    def n(self, full: int, toy: int) -> int:
        return toy if self.quick else full

    def project(self, name: str) -> Project:
        return new_project(self.base, name)


def pi_mesh_argv() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m pi_mesh_plugin``."""
    script = os.path.join(os.path.dirname(sys.executable), "pi-mesh")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "pi_mesh_plugin"]


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    env.update(extra)
    return env


# -- check() -----------------------------------------------------------------
def check_rows(ctx: Ctx) -> list[Row]:
    sizes = [10, 100, 1000, 10000] if not ctx.quick else [10, 100]
    proj = ctx.project("check")
    proj.join(100 if not ctx.quick else 10)
    reps = ctx.n(5000, 300)
    rows, medians = [], {}
    for n in sizes:
        proj.clear_claims()
        proj.seed_claims(n)
        checker = proj.mesh("checker")  # a fresh Mesh: loads index/claims.json like any new process
        assert checker.check(CHECKED) is None, "the benchmark path must be unclaimed"
        claimed = "pkg0/mod0/deep/file.py"
        assert checker.check(claimed) is not None, "a path under a claimed directory must be blocked"
        st = sample(lambda: checker.check(CHECKED), reps, warmup=ctx.n(500, 30))  # noqa: B023 - called at once
        medians[n] = st.median
        target, status = "report", REPORT
        if n == 1000:
            target, status = "median ≤ 30 µs", verdict(st.median <= 30e-6)
        rows.append(Row(f"check_{n}", f"check() unclaimed path, warm process, fresh state, {n:,} claims / "
                        f"{len(proj.meshes)} agents", "—", target,
                        f"median {fmt_time(st.median)}, p99 {fmt_time(st.p99)}", None, status, st.to_dict()))
        ctx.shared.setdefault("growth_check", {})[n] = st.median
    hi, lo = max(sizes), 100
    r = medians[hi] / medians[lo]
    rows.append(Row("check_scaling", f"check() at {hi:,} claims vs at {lo} claims", f"check() at {lo} claims "
                    f"({fmt_time(medians[lo])})", "≤ 2×", f"{fmt_time(medians[hi])}", r, verdict(r <= 2.0)))
    return rows


def fresh_state_row(ctx: Ctx) -> list[Row]:
    """Another process reserves (then releases); this process's next check() must see it, every time."""
    tries = ctx.n(10000, 100)
    proj = ctx.project("fresh")
    proj.join(ctx.n(100, 5))
    proj.seed_claims(ctx.n(100, 10))
    peer = subprocess.Popen([sys.executable, "-m", "bench.peer", proj.root, "writer"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1, env=child_env(),
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert peer.stdin and peer.stdout
    if peer.stdout.readline().strip() != "ready":
        raise RuntimeError("bench.peer did not start")
    checker = proj.mesh("checker")
    stale_block = stale_allow = 0
    lat: list[float] = []
    t_start = perf()
    try:
        for i in range(tries):
            path = f"race/f{i % 50}.py"
            peer.stdin.write(f"r {path}\n")
            peer.stdin.flush()
            if peer.stdout.readline().strip() != "ok":
                raise RuntimeError("bench.peer failed to reserve")
            t0 = perf()
            b = checker.check(path)
            lat.append(perf() - t0)
            if b is None or b.holder != "writer":
                stale_allow += 1
            peer.stdin.write(f"u {path}\n")
            peer.stdin.flush()
            if peer.stdout.readline().strip() != "ok":
                raise RuntimeError("bench.peer failed to release")
            if checker.check(path) is not None:
                stale_block += 1
            if (i + 1) % 1000 == 0:
                print(f"    fresh state: {i + 1:,} tries, {stale_allow + stale_block} stale, "
                      f"{perf() - t_start:.0f} s", flush=True)
        peer.stdin.write("q\n")
        peer.stdin.flush()
    finally:
        peer.stdin.close()
        peer.wait(30)
    wall = perf() - t_start
    stale = stale_allow + stale_block
    st = Stats(lat)
    return [Row("fresh_state", "a claim made in another process is seen by the next check()", "—",
                f"0 stale answers in {tries:,} tries",
                f"{stale} stale of {tries:,} tries ({2 * tries:,} answers: claim seen, release seen)", None,
                verdict(stale == 0), {"tries": tries, "stale_after_reserve": stale_allow,
                                      "stale_after_release": stale_block, "check_after_claim": st.to_dict(),
                                      "wall_s": wall},
                f"check() right after another process's reserve: median {fmt_time(st.median)}")]


# -- whole processes ---------------------------------------------------------
def hook_row(ctx: Ctx) -> list[Row]:
    what = "`pi-mesh hook claude-code`, allowed path, 1,000 claims, whole process"
    if not has_module("pi_mesh_plugin.adapters.hooks.hookcmd"):
        return [Row("hook", what, "`python -c pass`", "≤ 3×", "not available (adapters/hooks/hookcmd.py absent)",
                    status=NA)]
    proj = ctx.shared.get("proj_hook") or ctx.project("hook")
    if not proj.meshes:
        proj.join(ctx.n(100, 5))
        proj.seed_claims(ctx.n(1000, 20))
        proj.join(1, prefix="claude")
    ctx.shared["proj_hook"] = proj
    argv = pi_mesh_argv() + ["hook", "claude-code"]
    env = child_env(PI_MESH_AGENT="claude0000")

    def event(path: str) -> bytes:
        return json.dumps({"session_id": "bench", "transcript_path": "/dev/null", "cwd": proj.root,
                           "hook_event_name": "PreToolUse", "tool_name": "Edit",
                           "tool_input": {"file_path": os.path.join(proj.root, path), "old_string": "pass",
                                          "new_string": "return 1"}, "tool_use_id": "t1"}).encode()

    allowed, blocked = event(CHECKED), event("pkg0/mod0/x.py")
    _, cp = run_process(argv, allowed, proj.root, env)
    if cp.returncode != 0 or cp.stdout.strip():
        return [Row("hook", what, "`python -c pass`", "≤ 3×", f"hook failed: rc={cp.returncode} "
                    f"{(cp.stdout + cp.stderr).decode(errors='replace')[:200]}", status=FAIL)]
    _, cp = run_process(argv, blocked, proj.root, env)
    if b"deny" not in cp.stdout:
        return [Row("hook", what, "`python -c pass`", "≤ 3×", "a claimed path was not denied", status=FAIL)]
    base_argv = [sys.executable, "-c", "pass"]
    ta: list[float] = []
    tb: list[float] = []
    tc: list[float] = []
    rounds = ctx.n(40, 4)
    for r in range(rounds + 2):
        runs = [(argv, allowed, ta), (base_argv, None, tb), (argv, blocked, tc)]
        for a, inp, acc in (runs if r % 2 == 0 else runs[::-1]):
            t, cp = run_process(a, inp, proj.root, env)
            if r >= 2:
                acc.append(t)
    sa, sb, sc = Stats(ta), Stats(tb), Stats(tc)
    ratio = sa.median / sb.median
    return [Row("hook", what, f"`python -c pass` ({fmt_time(sb.median)})", "≤ 3×",
                f"median {fmt_time(sa.median)}, p99 {fmt_time(sa.p99)}", ratio, verdict(ratio <= 3.0),
                {"hook": sa.to_dict(), "baseline": sb.to_dict(), "argv": argv}),
            Row("hook_blocked", "the same hook on a claimed path (blocked: holder lookup, deny JSON, feed line)",
                f"`python -c pass` ({fmt_time(sb.median)})", "report",
                f"median {fmt_time(sc.median)}, p99 {fmt_time(sc.p99)}", sc.median / sb.median, REPORT,
                {"hook_blocked": sc.to_dict(), "baseline": sb.to_dict()})]


def agents_cli_row(ctx: Ctx) -> list[Row]:
    what = "`pi-mesh agents`, 100 agents, 1,000 claims, 10,000 messages, whole process"
    proj = ctx.project("agents_cli")
    meshes = proj.join(ctx.n(100, 5))
    proj.seed_claims(ctx.n(1000, 20))
    per = ctx.n(100, 4)
    for m in meshes:
        proj.seed_messages(m.agent, per)
    argv = pi_mesh_argv() + ["--root", proj.root, "agents"]
    env = child_env()
    _, cp = run_process(argv, None, proj.root, env)
    if cp.returncode != 0 or cp.stdout.count(b" live ") < len(meshes):
        return [Row("agents_cli", what, "`python -c pass`", "≤ 300 ms", f"failed: rc={cp.returncode} "
                    f"{cp.stderr.decode(errors='replace')[:200]}", status=FAIL)]
    base_argv = [sys.executable, "-c", "pass"]
    ta: list[float] = []
    tb: list[float] = []
    rounds = ctx.n(15, 2)
    for r in range(rounds + 1):
        for a, acc in (((argv, ta), (base_argv, tb)) if r % 2 == 0 else ((base_argv, tb), (argv, ta))):
            t, _ = run_process(a, None, proj.root, env)
            if r >= 1:
                acc.append(t)
    sa, sb = Stats(ta), Stats(tb)
    return [Row("agents_cli", what, f"`python -c pass` ({fmt_time(sb.median)})", "≤ 300 ms",
                f"median {fmt_time(sa.median)}, p99 {fmt_time(sa.p99)}", sa.median / sb.median,
                verdict(sa.median <= 0.300), {"agents": sa.to_dict(), "baseline": sb.to_dict()})]


# -- the sidecar ---------------------------------------------------------------
def sidecar_row(ctx: Ctx) -> list[Row]:
    what = "sidecar (`pi-mesh serve`) round trip for a check"
    if not has_module("pi_mesh_plugin.adapters.servers.sidecar"):
        return [Row("sidecar", what, "—", "median ≤ 0.5 ms", "not available (adapters/servers/sidecar.py absent)",
                    status=NA)]
    from .sidecar_client import measure_sidecar

    proj = ctx.shared.get("proj_hook")
    if proj is None:
        proj = ctx.project("sidecar")
        proj.join(ctx.n(100, 5))
        proj.seed_claims(ctx.n(1000, 20))
    try:
        st, note = measure_sidecar(ctx, proj)
    except Exception as e:  # noqa: BLE001 - a sidecar that cannot be driven is a failed row, not a crash
        return [Row("sidecar", what, "—", "median ≤ 0.5 ms", f"could not drive the sidecar: {e}", status=FAIL)]
    return [Row("sidecar", what, "—", "median ≤ 0.5 ms", f"median {fmt_time(st.median)}, p99 {fmt_time(st.p99)}",
                None, verdict(st.median <= 0.5e-3), st.to_dict(), note)]


# -- messages ------------------------------------------------------------------
class BareDurable:
    """The baseline: temp write + fsync + rename + directory fsync, nothing else."""

    def __init__(self, base: str, size: int) -> None:
        self.tmp, self.new = os.path.join(base, "tmp"), os.path.join(base, "new")
        os.makedirs(self.tmp, exist_ok=True)
        os.makedirs(self.new, exist_ok=True)
        self.data = b"x" * size
        self.i = 0

    def __call__(self) -> None:
        self.i += 1
        name = f"{self.i:016d}.json"
        tmp = os.path.join(self.tmp, name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, self.data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, os.path.join(self.new, name))
        dfd = os.open(self.new, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)


def message_rows(ctx: Ctx) -> list[Row]:
    ctx.shared["disk_before_messages"] = disk_probe(os.path.join(ctx.base, "probe-messages"))
    proj = ctx.project("send")
    alice, bob = proj.join(2)
    text = "x" * 1024
    send = lambda: alice.send(bob.agent, text)  # noqa: E731
    size = len(json.dumps({"schema": 1, "id": "0" * 27, "from": alice.agent, "to": bob.agent, "text": text,
                           "urgent": False, "reply_to": None, "thread": None, "created": "x" * 27}, indent=1))
    bare = BareDurable(os.path.join(ctx.base, "bare"), size)
    rounds = ctx.n(600, 20)
    s_send, s_bare = paired(send, bare, rounds)
    ratio = s_send.median / s_bare.median
    rows = [Row("send_durable", "durable send() of a 1 KiB message",
                f"temp write + fsync + rename + dir fsync ({fmt_time(s_bare.median)})", "≤ 1.15×",
                f"median {fmt_time(s_send.median)}, p99 {fmt_time(s_send.p99)}", ratio, verdict(ratio <= 1.15),
                {"send": s_send.to_dict(), "baseline": s_bare.to_dict()})]
    ctx.shared["send_median"] = s_send.median

    import mailbox

    md = mailbox.Maildir(os.path.join(ctx.base, "maildir"), create=True)
    msg = b"From: alice\nTo: bob\n\n" + text.encode()
    s_send2, s_md = paired(send, lambda: md.add(msg), rounds)
    rows.append(Row("send_vs_maildir", "durable send() of 1 KiB vs stdlib mailbox.Maildir.add",
                    f"Maildir.add ({fmt_time(s_md.median)}; it does not fsync)", "report",
                    f"send() {fmt_time(s_send2.median)}", s_send2.median / s_md.median, REPORT,
                    {"send": s_send2.to_dict(), "maildir": s_md.to_dict()}))

    db = sqlite3.connect(os.path.join(ctx.base, "bench.sqlite3"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS msg (id INTEGER PRIMARY KEY, recipient TEXT, body TEXT)")
    body = text

    def sql() -> None:
        db.execute("BEGIN")
        db.execute("INSERT INTO msg (recipient, body) VALUES (?, ?)", ("bob", body))
        db.execute("COMMIT")

    s_send3, s_sql = paired(send, sql, rounds)
    db.close()
    rows.append(Row("send_vs_sqlite", "durable send() of 1 KiB vs sqlite3 (WAL, synchronous=FULL, a commit each)",
                    f"sqlite3 commit ({fmt_time(s_sql.median)})", "report", f"send() {fmt_time(s_send3.median)}",
                    s_send3.median / s_sql.median, REPORT, {"send": s_send3.to_dict(), "sqlite": s_sql.to_dict()}))

    # broadcast to 10 agents vs one send()
    bproj = ctx.project("broadcast")
    sender, *others = bproj.join(11)
    s_b, s_s = paired(lambda: sender.broadcast(text), lambda: sender.send(others[0].agent, text), ctx.n(300, 10))
    r = s_b.median / s_s.median
    rows.append(Row("broadcast_10", "broadcast() to 10 agents", f"one send() ({fmt_time(s_s.median)})", "≤ 3×",
                    f"median {fmt_time(s_b.median)}, p99 {fmt_time(s_b.p99)}", r, verdict(r <= 3.0),
                    {"broadcast": s_b.to_dict(), "send": s_s.to_dict()}))
    # For comparison, what a broadcast would cost as ten separate files (as it was before it became one
    # file linked into ten inboxes): ten bare durable writes into ten directories, every fsync of a
    # phase in flight at once, with no Python logic at all - against one.
    floor = BareFanout(os.path.join(ctx.base, "fanout"), size, 10)
    one = BareDurable(os.path.join(ctx.base, "fanout1"), size)
    s_f, s_1 = paired(floor, one, ctx.n(300, 10))
    rows.append(Row("broadcast_floor", "for comparison: 10 separate bare durable files (10 dirs, concurrent fsyncs)",
                    f"one bare durable write ({fmt_time(s_1.median)})", "report",
                    f"median {fmt_time(s_f.median)}", s_f.median / s_1.median, REPORT,
                    {"fanout": s_f.to_dict(), "one": s_1.to_dict()}))
    return rows


class BareFanout:
    """Ten bare durable writes: write all, fsync all concurrently, rename all, fsync the ten directories
    concurrently (the broadcast's syscalls without any of its Python)."""

    def __init__(self, base: str, size: int, n: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.dirs = [os.path.join(base, f"i{k}") for k in range(n)]
        for d in self.dirs:
            os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
            os.makedirs(os.path.join(d, "new"), exist_ok=True)
        self.data = b"x" * size
        self.i = 0
        self.pool = ThreadPoolExecutor(max_workers=n)

    def _fsync_all(self, fds: list[int]) -> None:
        for f in [self.pool.submit(os.fsync, fd) for fd in fds]:
            f.result()

    def __call__(self) -> None:
        self.i += 1
        name = f"{self.i:016d}.json"
        fds = []
        for d in self.dirs:
            fd = os.open(os.path.join(d, "tmp", name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, self.data)
            fds.append(fd)
        self._fsync_all(fds)
        for fd in fds:
            os.close(fd)
        for d in self.dirs:
            os.rename(os.path.join(d, "tmp", name), os.path.join(d, "new", name))
        dfds = [os.open(os.path.join(d, "new"), os.O_RDONLY | os.O_DIRECTORY) for d in self.dirs]
        self._fsync_all(dfds)
        for fd in dfds:
            os.close(fd)


def _unread_again(proj: Project, name: str) -> None:
    d = os.path.join(proj.mesh_dir, "inbox", name)
    for fn in os.listdir(os.path.join(d, "cur")):
        os.rename(os.path.join(d, "cur", fn), os.path.join(d, "new", fn))


def read_inbox_rows(ctx: Ctx) -> list[Row]:
    n = ctx.n(10000, 200)
    proj = ctx.project("inbox")
    (bob,) = proj.join(1)
    proj.seed_messages(bob.agent, n)
    got = bob.read_inbox(peek=True)
    assert len(got) == n
    reps = ctx.n(5, 2)
    s_peek = sample(lambda: bob.read_inbox(peek=True), reps, warmup=1)
    s_read = sample(lambda: bob.read_inbox(), reps, warmup=0, setup=lambda: _unread_again(proj, bob.agent))
    assert bob.unread_count() == 0
    return [Row("read_inbox", f"read_inbox() of {n:,} unread (parse, validate, mark read)", "—", "≤ 0.5 s",
                f"median {fmt_time(s_read.median)}", None, verdict(s_read.median <= 0.5), s_read.to_dict()),
            Row("read_inbox_peek", f"read_inbox(peek=True) of {n:,} unread", "—", "≤ 0.3 s",
                f"median {fmt_time(s_peek.median)}", None, verdict(s_peek.median <= 0.3), s_peek.to_dict())]


# -- delivery latency ----------------------------------------------------------
def delivery_row(ctx: Ctx) -> list[Row]:
    from .latency import measure_delivery

    what = "delivery latency: send() returns → recipient's watcher callback"
    try:
        st, how, data = measure_delivery(ctx)
    except Exception as e:  # noqa: BLE001
        return [Row("delivery", what, "—", "median ≤ 5 ms", f"could not measure: {type(e).__name__}: {e}",
                    status=FAIL)]
    return [Row("delivery", what, "—", "median ≤ 5 ms", f"median {fmt_time(st.median)}, p99 {fmt_time(st.p99)}",
                None, verdict(st.median <= 5e-3), data, how)]


# -- PostgreSQL ----------------------------------------------------------------
PG_URL = os.environ.get("PI_MESH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_rows(ctx: Ctx) -> list[Row]:
    what_c, what_s = "PostgreSQL backend: check() (1,000 claims)", "PostgreSQL backend: send() of 1 KiB"
    why = None
    if not has_module("pi_mesh_plugin.store.postgres"):
        why = "store/postgres/ absent"
    elif not has_module("psycopg"):
        why = "psycopg not installed"
    else:
        try:
            import psycopg

            psycopg.connect(PG_URL, connect_timeout=3).close()
        except Exception as e:  # noqa: BLE001
            why = f"no server at {PG_URL} ({type(e).__name__})"
    if why:
        return [Row("pg_check", what_c, "file store check()", "report", f"not available: {why}", status=NA),
                Row("pg_send", what_s, "file store send()", "report", f"not available: {why}", status=NA)]
    from .pg import measure_pg

    try:
        return measure_pg(ctx, PG_URL, Row, REPORT)
    except Exception as e:  # noqa: BLE001
        return [Row("pg_check", what_c, "file store check()", "report", f"failed: {type(e).__name__}: {e}",
                    status=FAIL)]


ROWS = {
    "check": check_rows,
    "fresh": fresh_state_row,
    "hook": hook_row,
    "plugin_hook": plugin_hook_rows,
    "sidecar": sidecar_row,
    "messages": message_rows,
    "inbox": read_inbox_rows,
    "delivery": delivery_row,
    "agents": agents_cli_row,
    "postgres": postgres_rows,
    "queue": queue_rows,
    "sandbox": sandbox_rows,
    "floor": hook_floor_rows,
}

__all__ = ["ROWS", "Row", "Ctx", "fmt_ratio", "fmt_time"]
