"""The torture scenarios.  Each returns a dict of figures with ``ok`` (all requirements met) and ``line``.

Sizes come from a :class:`Size`; ``FULL`` is the published run (``python -m tests.torture --full``),
``QUICK`` the bounded run inside ``make test``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

from .common import finish, kill9, new_project, read_lines, scan_store, spawn, wait_line, worker_env

os.environ.setdefault("PI_MESH_LIMITS", "off")  # floods on purpose: no governor in the way


class Size:
    def __init__(self, **kw: int) -> None:
        self.__dict__.update(kw)


FULL = Size(writers=8, per_writer=500, inboxes=4, readers=2,
            kill_writers=8, kill_per_writer=500, writer_kills=200,
            reader_prefill=1500, reader_extra=500, reader_kills=60,
            reservers=8, cycles=500, reserver_kills=24, victims=10, visibility_rounds=200,
            max_examples=200, step_count=50)
QUICK = Size(writers=4, per_writer=60, inboxes=4, readers=2,
             kill_writers=4, kill_per_writer=80, writer_kills=12,
             reader_prefill=200, reader_extra=60, reader_kills=6,
             reservers=4, cycles=60, reserver_kills=3, victims=2, visibility_rounds=20,
             max_examples=8, step_count=20)


# -- message bookkeeping ------------------------------------------------------
def writer_logs(logs: list[str]) -> tuple[int, dict[tuple[str, int], str]]:
    """(attempted, {(writer, seq): id} of acknowledged sends) from writer logs."""
    attempted, acked = 0, {}
    for i, path in enumerate(logs):
        for parts in read_lines(path):
            if parts[0] == "A":
                attempted += 1
            elif parts[0] == "K":
                acked[(f"w{i}", int(parts[1]))] = parts[2]
    return attempted, acked


def reader_logs(logs: list[str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """([(id, inbox, text)] in log order, warnings) from reader logs."""
    got, warns = [], []
    for path in logs:
        for parts in read_lines(path):
            if parts[0] == "R" and len(parts) == 4:
                got.append((parts[1], parts[2], parts[3]))
            elif parts[0] == "W":
                warns.append(" ".join(parts[1:]))
    return got, warns


def check_text(text: str) -> tuple[str, int] | None:
    """``(writer, seq)`` of an intact torture message, ``None`` if corrupt."""
    from .worker import body_hash

    try:
        d = json.loads(text)
        if body_hash(d["body"]) != d["h"]:
            return None
        return d["w"], int(d["seq"])
    except (ValueError, KeyError, TypeError):
        return None


def doctor_cleanup(root: str) -> dict:
    """``pi-mesh doctor`` then ``pi-mesh doctor --fix``, as a user would run them (real CLI processes)."""
    found, fixed = (json.loads(subprocess.run([sys.executable, "-m", "pi_mesh_plugin", "--root", root, "--json",
                                               "doctor", *extra], cwd=root, env=worker_env(), capture_output=True,
                                              text=True, check=True, timeout=120).stdout)
                    for extra in ([], ["--fix"]))
    after = scan_store(root)
    return {"temp_reported": sum(1 for f in found if f["kind"] == "temp-file"),
            "temp_fixed": sum(1 for f in fixed if f["kind"] == "temp-file" and f["fixed"]),
            "temp_left": len(after["tmp"]) + len(after["atomic_tmp"])}


def _register_inboxes(root: str, names: list[str]) -> list:
    from pi_mesh_plugin.mesh import Mesh

    out = []
    for n in names:
        m = Mesh(root, n, cwd=root)
        m.join(harness="torture")  # owner: this (supervisor) process, alive throughout
        out.append(m)
    return out


# -- 1. concurrent senders ------------------------------------------------------
def concurrent_senders(base: str, size: Size) -> dict:
    root = new_project(base, "s1")
    inboxes = [f"inbox{i}" for i in range(size.inboxes)]
    keep = _register_inboxes(root, inboxes)
    logs = os.path.join(base, "s1-logs")
    os.makedirs(logs)
    stop = os.path.join(logs, "stop")
    rlogs = [os.path.join(logs, f"r{i}.log") for i in range(size.readers)]
    readers = [spawn("reader", root=root, inboxes=inboxes[i::size.readers], log=rlogs[i], mode="read", stop=stop)
               for i in range(size.readers)]
    wlogs = [os.path.join(logs, f"w{i}.log") for i in range(size.writers)]
    t0 = time.monotonic()
    writers = [spawn("writer", root=root, name=f"w{i}", n=size.per_writer, inboxes=inboxes, log=wlogs[i], seed=i)
               for i in range(size.writers)]
    for p in writers:
        finish(p)
    open(stop, "w").close()
    for p in readers:
        finish(p)
    wall = time.monotonic() - t0
    attempted, acked = writer_logs(wlogs)
    got, warns = reader_logs(rlogs)
    seen: dict[tuple[str, int], int] = {}
    corrupt = 0
    for _id, _box, text in got:
        key = check_text(text)
        if key is None:
            corrupt += 1
        else:
            seen[key] = seen.get(key, 0) + 1
    store = scan_store(root)
    doc = doctor_cleanup(root)
    for m in keep:
        m.close()
    f = {"attempted": attempted, "acknowledged": len(acked), "delivered": len(seen),
         "lost": len(set(acked) - set(seen)), "duplicated": sum(c - 1 for c in seen.values()),
         "corrupt": corrupt, "invalid_files": len(store["invalid"]), "reader_warnings": len(warns),
         "unread_left": sum(1 for w in store["where"].values() if w == "new"),
         "temp_left_after_doctor_fix": doc["temp_left"], "msgs_per_s": round(len(acked) / wall, 1),
         "writers": size.writers, "per_writer": size.per_writer, "readers": size.readers,
         "inboxes": size.inboxes, "wall_s": round(wall, 2)}
    f["ok"] = (f["attempted"] == f["acknowledged"] == size.writers * size.per_writer and f["lost"] == 0
               and f["duplicated"] == 0 and f["corrupt"] == 0 and f["invalid_files"] == 0
               and f["delivered"] == f["acknowledged"] and f["temp_left_after_doctor_fix"] == 0)
    f["line"] = (f"concurrent-senders: {size.writers} writers x {size.per_writer} -> {size.inboxes} inboxes, "
                 f"{size.readers} readers: attempted {attempted} acknowledged {len(acked)} delivered {len(seen)} "
                 f"lost {f['lost']} duplicated {f['duplicated']} corrupt {corrupt} "
                 f"temp-left {doc['temp_left']} ({f['msgs_per_s']} msg/s, {wall:.1f}s)")
    return f


# -- 2. kill -9 of writers + named crash points -------------------------------------
CRASH_STEPS = ("temp-write", "file-fsync", "rename", "dir-fsync")


def _ready(log: str, pid: int) -> bool:
    return any(p[:2] == ["J", str(pid)] for p in read_lines(log))


def killed_writers(base: str, size: Size, seed: int = 2) -> dict:
    rng = random.Random(seed)
    root = new_project(base, "s2")
    inboxes = [f"inbox{i}" for i in range(size.inboxes)]
    keep = _register_inboxes(root, inboxes)
    logs = os.path.join(base, "s2-logs")
    os.makedirs(logs)
    stop = os.path.join(logs, "stop")
    rlog = os.path.join(logs, "r.log")
    reader = spawn("reader", root=root, inboxes=inboxes, log=rlog, mode="peek", stop=stop)
    wlogs = [os.path.join(logs, f"w{i}.log") for i in range(size.kill_writers)]

    def start(i: int) -> subprocess.Popen:
        # paced (6 ms between sends on average) so that the kills fall while there is work left
        return spawn("writer", root=root, name=f"w{i}", n=size.kill_per_writer, inboxes=inboxes, log=wlogs[i],
                     seed=i, pause=0.012)

    procs = {i: start(i) for i in range(size.kill_writers)}
    kills = restarts = 0
    t0 = time.monotonic()
    while kills < size.writer_kills:
        running = [i for i, p in procs.items() if p.poll() is None]
        if not running:
            break
        i = rng.choice(running)
        if not _ready(wlogs[i], procs[i].pid):
            time.sleep(0.005)
            continue
        time.sleep(rng.uniform(0, 0.04))
        kill9(procs[i])
        kills += 1
        procs[i] = start(i)
        restarts += 1
    kills_done_s = time.monotonic() - t0
    _, acked_at_last_kill = writer_logs(wlogs)  # how much work was left when the last kill fell
    for p in procs.values():
        finish(p)
    open(stop, "w").close()
    finish(reader)
    wall = time.monotonic() - t0
    attempted, acked = writer_logs(wlogs)
    store = scan_store(root)
    in_store: dict[tuple[str, int], list[str]] = {}
    corrupt = 0
    for mid, rec in store["messages"].items():
        key = check_text(rec["text"])
        if key is None:
            corrupt += 1
        else:
            in_store.setdefault(key, []).append(mid)
    lost = [k for k, mid in acked.items() if mid not in store["messages"]]
    orphans_before = len(store["tmp"]) + len(store["atomic_tmp"])

    # named crash points: each step x (send both ways, reserve, join) in its own child process
    crash = {}
    checks_failed = []
    from pi_mesh_plugin.mesh import Mesh

    for op in ("send", "send-rename", "reserve", "join"):
        for step in CRASH_STEPS:
            name = f"c-{op}-{step}".replace("-", "")[:30]
            before = scan_store(root)
            p = spawn("crasher", stdout=subprocess.PIPE, root=root, name=name, op=op, step=step, to="inbox0",
                      path="src/sub/")
            out, err = p.communicate(timeout=60)
            crash[f"{op}@{step}"] = p.returncode
            if p.returncode != -9:
                checks_failed.append(f"{op}@{step}: exit {p.returncode} {out.strip()} {err[-300:]}")
                continue
            after = scan_store(root)
            new_ids = set(after["messages"]) - set(before["messages"])
            if op.startswith("send"):
                want = 1 if step in ("rename", "dir-fsync") else 0
                if len(new_ids) != want:
                    checks_failed.append(f"{op}@{step}: {len(new_ids)} new messages, expected {want}")
                # the rename way leaves its temp file for doctor; the unnamed way (O_TMPFILE) leaves nothing
                left = len(after["tmp"]) - len(before["tmp"])
                if left != (1 if want == 0 and op == "send-rename" else 0):
                    checks_failed.append(f"{op}@{step}: {left} temp files left behind")
            if op == "reserve" and step in ("rename", "dir-fsync"):
                # the dead child's claim is on disk but must not count
                with Mesh(root, "inbox0", cwd=root) as m:
                    if m.check("src/sub/c.py") is not None:
                        checks_failed.append(f"reserve@{step}: claim of a dead process still blocks")
            if after["invalid"]:
                checks_failed.append(f"{op}@{step}: invalid files {after['invalid']}")
    # the documented switch itself: PI_MESH_CRASH_AT in the environment of a real `pi-mesh join`
    for step in CRASH_STEPS:
        name = "env" + step.replace("-", "")
        env = {**worker_env(), "PI_MESH_CRASH_AT": step}
        r = subprocess.run([sys.executable, "-m", "pi_mesh_plugin", "--root", root, "--agent", name, "join"],
                           cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False)
        crash[f"env:join@{step}"] = r.returncode
        registered = os.path.exists(os.path.join(root, ".pi", "mesh", "agents", name + ".json"))
        if r.returncode != -9 or registered != (step in ("rename", "dir-fsync")):
            checks_failed.append(f"PI_MESH_CRASH_AT={step} pi-mesh join: exit {r.returncode}, registered {registered}")
    # the crashed reservers held the reservations lock: the next reserve must not wedge
    with Mesh(root, "inbox1", cwd=root) as m:
        t = time.monotonic()
        m.reserve(["src/sub/"], "after crashes", ttl=60, cwd=root)
        reserve_after_s = time.monotonic() - t
        m.release()
    store2 = scan_store(root)
    orphans = len(store2["tmp"]) + len(store2["atomic_tmp"])
    doc = doctor_cleanup(root)
    for m in keep:
        m.close()
    f = {"kills": kills, "restarts": restarts, "attempted": attempted, "acknowledged": len(acked),
         "acknowledged_lost": len(lost), "stored_distinct": len(in_store),
         "duplicated": sum(len(v) - 1 for v in in_store.values()), "corrupt": corrupt,
         "partial_or_invalid_in_new_cur": len(store2["invalid"]), "orphan_temp_from_kills": orphans_before,
         "orphan_temp_total": orphans, "doctor_temp_reported": doc["temp_reported"],
         "doctor_temp_fixed": doc["temp_fixed"], "temp_left_after_doctor_fix": doc["temp_left"],
         "crash_points": crash, "crash_point_failures": checks_failed,
         "reserve_after_crashes_s": round(reserve_after_s, 3), "kills_done_s": round(kills_done_s, 2),
         "acknowledged_at_last_kill": len(acked_at_last_kill), "wall_s": round(wall, 2)}
    f["ok"] = (kills >= size.writer_kills and not lost and f["duplicated"] == 0 and corrupt == 0
               and not store2["invalid"] and not checks_failed and doc["temp_left"] == 0
               and doc["temp_reported"] == orphans and reserve_after_s < 5)
    f["line"] = (f"killed-writers: {kills} kills/restarts, attempted {attempted} acknowledged {len(acked)} "
                 f"acknowledged-lost {len(lost)} duplicated {f['duplicated']} corrupt {corrupt} partial/invalid "
                 f"{len(store2['invalid'])}; crash points {sum(1 for c in crash.values() if c == -9)}/{len(crash)} "
                 f"killed as armed, "
                 f"{len(checks_failed)} check failures; orphan temp {orphans} reported {doc['temp_reported']} "
                 f"cleaned {doc['temp_fixed']} left {doc['temp_left']}")
    return f


# -- 3. kill -9 of readers mid-read -----------------------------------------------
def killed_readers(base: str, size: Size, seed: int = 3) -> dict:
    """Two inboxes, one drained with ``read_inbox()`` (fetch-then-mark), one with ``peek`` + ``mark_read``
    after processing; the readers are SIGKILLed at random moments and restarted."""
    from pi_mesh_plugin.mesh import Mesh

    rng = random.Random(seed)
    root = new_project(base, "s3")
    modes = {"rread": "read", "rpeek": "peek"}
    keep = _register_inboxes(root, list(modes))
    logs = os.path.join(base, "s3-logs")
    os.makedirs(logs)
    stop = os.path.join(logs, "stop")
    # prefill from a writer identity of this process, then keep writing from a process while readers die
    from .worker import body_hash

    expected: dict[str, set[str]] = {box: set() for box in modes}
    with Mesh(root, "w0", cwd=root) as w:
        w.join(harness="torture")
        for seq in range(size.reader_prefill):
            for box in modes:
                body = os.urandom(rng.randint(8, 400)).hex()
                expected[box].add(w.send(box, json.dumps({"w": "w0", "seq": seq, "h": body_hash(body), "body": body},
                                       separators=(",", ":"))).id)
    wlog = os.path.join(logs, "w1.log")
    writer = spawn("writer", root=root, name="w1", n=size.reader_extra, inboxes=list(modes), log=wlog, seed=7,
                   pause=0.004)
    rlogs = {box: os.path.join(logs, f"{box}.log") for box in modes}

    def start(box: str) -> subprocess.Popen:
        return spawn("reader", root=root, inboxes=[box], log=rlogs[box], mode=modes[box], stop=stop, work=0.02)

    procs = {box: start(box) for box in modes}
    kills = {box: 0 for box in modes}
    t0 = time.monotonic()
    while sum(kills.values()) < size.reader_kills:
        box = rng.choice(list(modes))
        time.sleep(rng.uniform(0.15, 0.35))  # start-up takes ~0.1 s: most kills land inside reads
        kill9(procs[box])
        kills[box] += 1
        procs[box] = start(box)
    finish(writer)
    open(stop, "w").close()
    for p in procs.values():
        finish(p)
    wall = time.monotonic() - t0
    store = scan_store(root)
    for parts in read_lines(wlog):
        if parts[0] == "K":
            expected[parts[3]].add(parts[2])
    f: dict = {"kills": sum(kills.values()), "kills_by_mode": {modes[b]: k for b, k in kills.items()},
               "wall_s": round(wall, 2)}
    ok = f["kills"] >= size.reader_kills
    for box, mode in modes.items():
        ids = {mid for mid, rec in store["messages"].items() if rec["to"] == box}
        got, _ = reader_logs([rlogs[box]])
        logged = [g[0] for g in got]
        distinct = set(logged)
        by_key: dict[tuple[str, int], set[str]] = {}
        corrupt = 0
        for mid, _b, text in got:
            key = check_text(text)
            if key is None:
                corrupt += 1
            else:
                by_key.setdefault(key, set()).add(mid)
        unread = sum(1 for mid in ids if store["where"][mid] == "new")
        g = {"messages": len(ids), "store_lost": len(expected[box] - ids),
             "processed_distinct": len(distinct), "unprocessed": len(ids - distinct),
             "redelivered": len(logged) - len(distinct),
             "duplicates_after_dedup_by_id": sum(len(v) - 1 for v in by_key.values()),
             "corrupt": corrupt, "unread_left": unread}
        f[mode] = g
        ok = ok and g["store_lost"] == 0 and g["duplicates_after_dedup_by_id"] == 0 and corrupt == 0 \
            and unread == 0 and not store["invalid"]
        if mode == "peek":
            ok = ok and g["unprocessed"] == 0
    for m in keep:
        m.close()
    f["same_inbox_two_readers"] = _two_readers_one_inbox(base, size.reader_extra)
    f["invalid_files"] = len(store["invalid"])
    f["ok"] = ok
    pk, rd = f["peek"], f["read"]
    f["guarantee"] = ("peek+mark_read: at-least-once processing, unique ids (redelivered after a crash, "
                      "de-duplicate by id); read_inbox(): fetch-then-mark - a crash between marking and "
                      "processing leaves the message read but unprocessed (still kept in cur/)")
    f["line"] = (f"killed-readers: {f['kills']} kills; peek+mark: {pk['messages']} msgs, lost {pk['store_lost']}, "
                 f"unprocessed {pk['unprocessed']}, redelivered {pk['redelivered']}, dup-after-dedup "
                 f"{pk['duplicates_after_dedup_by_id']}; read_inbox: {rd['messages']} msgs, lost {rd['store_lost']}, "
                 f"read-but-unprocessed {rd['unprocessed']}, redelivered {rd['redelivered']}, dup-after-dedup "
                 f"{rd['duplicates_after_dedup_by_id']}")
    return f


def _two_readers_one_inbox(base: str, n: int) -> dict:
    """Informational: two ``read_inbox()`` readers draining one inbox at once (not the supported pattern)."""
    from pi_mesh_plugin.mesh import Mesh

    root = new_project(base, "s3b")
    with Mesh(root, "w0", cwd=root) as w, Mesh(root, "box", cwd=root) as box:
        w.join(harness="torture")
        box.join(harness="torture")
        sent = {w.send("box", f"m{i}").id for i in range(n)}
        stop = os.path.join(base, "s3b-stop")
        open(stop, "w").close()
        logs = [os.path.join(base, f"s3b-r{i}.log") for i in range(2)]
        for p in [spawn("reader", root=root, inboxes=["box"], log=lg, mode="read", stop=stop) for lg in logs]:
            finish(p)
    got, _ = reader_logs(logs)
    ids = [g[0] for g in got]
    return {"sent": len(sent), "received": len(ids), "distinct": len(set(ids)), "missing": len(sent - set(ids))}


# -- 4. reservation exclusivity ---------------------------------------------------
RES_PATHS = ["src/", "src/a.py", "src/b.py", "src/sub/", "src/sub/c.py"]


def _exiting(pid: int) -> bool:
    """Whether ``pid`` has already died: a zombie whose other threads are still being torn down is not reaped
    by ``waitpid`` yet (so ``poll()`` says running), but it is gone - and the mesh rightly judges it dead."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return True
    return raw[raw.rfind(b")") + 2:][:1] in (b"Z", b"X", b"x")


def _overlaps(intervals: list[tuple[str, str, str, float, float]]) -> list:
    """Pairs of hold intervals of different owners on overlapping paths that overlap in time."""
    from pi_mesh_plugin import paths as P

    def key(p: str) -> tuple[str, str]:
        return (p.rstrip("/"), P.DIR if p.endswith("/") else P.FILE)

    bad = []
    active: list[tuple[str, str, str, float, float]] = []
    for iv in sorted(intervals, key=lambda x: x[3]):
        active = [a for a in active if a[4] > iv[3]]
        for a in active:
            if a[0] != iv[0] and P.overlap(*key(a[1]), *key(iv[1])):
                bad.append((a, iv))
        active.append(iv)
    return bad


def claim_visibility(root: str, observer, rounds: int, rng: random.Random) -> dict:
    """A claim made in another process blocks the very next check - in a long-lived observer (cached index)
    and in a fresh one (as a hook process starts: from index/claims.json) - and a release unblocks it."""
    from pi_mesh_plugin.mesh import Mesh

    p = spawn("stepper", stdout=subprocess.PIPE, stdin=subprocess.PIPE, root=root, name="stepper")
    wait_line(p, "READY")
    stale_allow = stale_block = checks = 0
    for _ in range(rounds):
        path = rng.choice(RES_PATHS)
        probe = {"src/": "src/b.py", "src/sub/": "src/sub/c.py"}.get(path, path)
        for cmd, want in ((f"R {path}", True), ("U", False)):
            p.stdin.write(cmd + "\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
            wait_line(p, "OK")
            fresh = Mesh(root, "observer2", cwd=root)
            for m in (observer, fresh):
                checks += 1
                blocked = m.check(probe) is not None
                if want and not blocked:
                    stale_allow += 1
                elif blocked and not want:
                    stale_block += 1
            fresh.close()
    p.stdin.close()  # type: ignore[union-attr]
    p.wait(timeout=30)
    p.stdout.close()  # type: ignore[union-attr]
    p.stderr.close()  # type: ignore[union-attr]
    return {"checks": checks, "stale_allow": stale_allow, "stale_block": stale_block}


def pid_identity_checks() -> dict:
    """Liveness by (pid, start time): a live pid with a wrong start time is dead; a recycled pid does not
    revive a dead agent; a live owner is live."""
    from pi_mesh_plugin.liveness import boot_id, is_live, process_start, this_host

    def rec(pid: int, start: str | None) -> dict:
        return {"pid": pid, "pid_start": start, "host": this_host(), "boot_id": boot_id(), "last_seen": None}

    out = {"live_judged_live": is_live(rec(os.getpid(), process_start(os.getpid())), 60),
           "live_pid_wrong_start_judged_dead": not is_live(rec(os.getpid(), "1"), 60)}
    p = subprocess.Popen(["sleep", "60"])
    pid, start = p.pid, process_start(p.pid)
    r = rec(pid, start)
    out["child_live_judged_live"] = is_live(r, 60)
    time.sleep(0.05)  # the owner lives a few clock ticks, as any real agent does
    p.kill()
    p.wait()
    out["child_dead_judged_dead"] = not is_live(r, 60)
    # recycle the pid (as root: /proc/sys/kernel/ns_last_pid) and check the dead record stays dead
    reused = _reuse_pid(pid)
    if reused is not None:
        out["pid_recycled"] = True
        out["recycled_pid_does_not_revive"] = not is_live(r, 60)
        out["new_owner_of_recycled_pid_live"] = is_live(rec(pid, process_start(pid)), 60)
        reused.kill()
        reused.wait()
    else:
        out["pid_recycled"] = False  # could not force pid reuse here
    return out


def same_tick_reuse() -> bool | None:
    """Informational: a pid recycled within the same clock tick (10 ms) as the dead owner started carries
    the same start time - the identity's resolution.  True if such a record is (wrongly) judged live."""
    from pi_mesh_plugin.liveness import boot_id, is_live, process_start, this_host

    p = subprocess.Popen(["sleep", "60"])
    pid, start = p.pid, process_start(p.pid)
    p.kill()
    p.wait()
    q = _reuse_pid(pid)
    if q is None:
        return None
    fooled = process_start(pid) == start and is_live(
        {"pid": pid, "pid_start": start, "host": this_host(), "boot_id": boot_id()}, 60)
    q.kill()
    q.wait()
    return fooled


def _reuse_pid(pid: int) -> subprocess.Popen | None:
    for _ in range(200):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
                fh.write(str(pid - 1))
        except OSError:
            return None
        q = subprocess.Popen(["sleep", "60"])
        if q.pid == pid:
            return q
        q.kill()
        q.wait()
    return None


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200))
            tail = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return ""
    lines = tail.split("\n")
    return lines[-2] if len(lines) >= 2 else ""


def reservation_exclusivity(base: str, size: Size, seed: int = 4) -> dict:
    from pi_mesh_plugin.mesh import Mesh

    rng = random.Random(seed)
    root = new_project(base, "s4")
    logs = os.path.join(base, "s4-logs")
    os.makedirs(logs)
    rlogs = [os.path.join(logs, f"w{i}.log") for i in range(size.reservers)]
    incarnation: dict[int, int] = {}
    kill_times: dict[tuple[int, int], float] = {}

    def start(i: int) -> subprocess.Popen:
        incarnation[i] = incarnation.get(i, -1) + 1
        with open(rlogs[i], "a") as fh:
            fh.write(f"I {incarnation[i]}\n")
        return spawn("reserver", root=root, name=f"w{i}", cycles=size.cycles, paths=RES_PATHS, log=rlogs[i],
                     seed=i, hold=0.003)

    t0 = time.monotonic()
    procs = {i: start(i) for i in range(size.reservers)}
    kills = 0
    wrongly_dead = 0
    live_checks = 0
    observer = Mesh(root, None, cwd=root)
    while any(p.poll() is None for p in procs.values()):
        # every running, joined worker must be judged live
        agents = {a.name: a for a in observer.agents()}
        for i, p in procs.items():
            a = agents.get(f"w{i}")
            if p.poll() is None and a is not None and a.pid == p.pid:
                live_checks += 1
                if not a.live and p.poll() is None and not _exiting(p.pid):
                    wrongly_dead += 1
        if kills < size.reserver_kills:
            # kill a worker that is holding something right now
            holding = [i for i in range(size.reservers) if procs[i].poll() is None and _last_line(rlogs[i]).startswith("H ")]
            if holding:
                i = rng.choice(holding)
                kill_times[(i, incarnation[i])] = kill9(procs[i])
                kills += 1
                procs[i] = start(i)
                time.sleep(0.02)
                continue
        time.sleep(0.002 if kills < size.reserver_kills else 0.01)
    for p in procs.values():
        finish(p)
    wall = time.monotonic() - t0
    intervals = []
    holds = conflicts = open_at_kill = 0
    for i, path in enumerate(rlogs):
        inc = 0
        cur: dict[str, float] = {}
        for parts in read_lines(path):
            if parts[0] == "I":
                for p, t in cur.items():  # held when killed: the hold ends no earlier than the kill
                    intervals.append((f"w{i}", p, f"{i}.{inc}", t, kill_times[(i, inc)]))
                    open_at_kill += 1
                cur = {}
                inc = int(parts[1])
            elif parts[0] == "H":
                cur[parts[1]] = float(parts[2])
                holds += 1
            elif parts[0] == "U":
                intervals.append((f"w{i}", parts[1], f"{i}.{inc}", cur.pop(parts[1]), float(parts[2])))
            elif parts[0] == "C":
                conflicts += 1
    # owners are incarnations: a restarted worker is a new agent session
    bad = _overlaps([(iv[2], iv[1], iv[0], iv[3], iv[4]) for iv in intervals])

    # dedicated victims: hold, verify blocking, SIGKILL, verify the claim stops counting at once
    victim_fail = []
    for v in range(size.victims):
        path = RES_PATHS[v % len(RES_PATHS)]
        p = spawn("holder", stdout=subprocess.PIPE, root=root, name=f"victim{v}", path=path)
        wait_line(p, "HOLDING")
        probe = "src/sub/c.py" if path.startswith("src/sub") or path == "src/" else path
        if observer.check(probe) is None:
            victim_fail.append(f"victim{v}: live holder of {path} did not block {probe}")
        kill9(p)
        if observer.check(probe) is not None:
            victim_fail.append(f"victim{v}: dead holder of {path} still blocks")
        with Mesh(root, f"taker{v}", cwd=root) as t:
            t.join(harness="torture")
            try:
                t.reserve([path], "after the holder died", ttl=60, cwd=root)
                t.release()
            except Exception as e:  # noqa: BLE001
                victim_fail.append(f"victim{v}: reserve after death failed: {e}")
            t.leave()
    visibility = claim_visibility(root, observer, size.visibility_rounds, rng)
    observer.close()
    ids = pid_identity_checks()
    tick = same_tick_reuse()
    f = {"processes": size.reservers, "cycles_each": size.cycles, "holds": holds, "conflicts_refused": conflicts,
         "kills_while_holding": kills, "holds_open_at_kill": open_at_kill, "overlapping_holds": len(bad),
         "overlap_examples": [repr(b) for b in bad[:3]], "live_checks": live_checks,
         "live_wrongly_dead": wrongly_dead, "victims": size.victims, "victim_failures": victim_fail,
         "claim_visibility": visibility, "pid_identity": ids, "same_tick_pid_reuse_fools_identity": tick, "wall_s": round(wall, 2)}
    f["ok"] = (not bad and wrongly_dead == 0 and not victim_fail and kills >= size.reserver_kills
               and visibility["stale_allow"] == 0 and visibility["stale_block"] == 0
               and all(v for k, v in ids.items() if k != "pid_recycled") and holds > 0)
    f["line"] = (f"reservations: {size.reservers} procs x {size.cycles} cycles, {holds} holds, {conflicts} refused, "
                 f"{kills} killed while holding; overlapping holds {len(bad)}; claim visible at the next check "
                 f"{visibility['checks'] - visibility['stale_allow'] - visibility['stale_block']}/{visibility['checks']}; "
                 f"live wrongly dead {wrongly_dead} "
                 f"of {live_checks} checks; victims {size.victims} ({len(victim_fail)} failures); pid reuse "
                 f"{'tested' if ids.get('pid_recycled') else 'NOT forced'}: "
                 f"{'ok' if all(v for k, v in ids.items() if k != 'pid_recycled') else 'FAIL'}")
    return f
