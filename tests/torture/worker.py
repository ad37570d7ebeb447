"""Worker processes of the torture suite: ``python -m tests.torture.worker ROLE JSON``.

Each worker is a real OS process that uses the public :class:`Mesh` API and
appends what it did to a log with one ``write(2)`` per line (``O_APPEND``), so
a SIGKILL at any moment leaves every line that was written whole.  A writer
logs ``A <seq>`` before ``send()`` and ``K <seq> <id>`` only after ``send()``
returned: only ``K`` lines count as acknowledged.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time


def _log(path: str):  # -> callable(str)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(line: str) -> None:
        os.write(fd, (line + "\n").encode())

    return write


def body_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def writer(a: dict) -> None:
    from pi_mesh_plugin.mesh import Mesh

    start = 0
    if os.path.exists(a["log"]):  # a restarted writer resumes after the last attempt
        with open(a["log"]) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "A" and parts[1].isdigit():
                    start = max(start, int(parts[1]) + 1)
    log = _log(a["log"])
    rng = random.Random(f"{a['seed']}-{os.getpid()}")
    m = Mesh(a["root"], a["name"], cwd=a["root"])
    m.join(harness="torture")
    log(f"J {os.getpid()}")
    for seq in range(start, a["n"]):
        body = os.urandom(rng.randint(8, 1500)).hex()
        to = rng.choice(a["inboxes"])
        text = json.dumps({"w": a["name"], "seq": seq, "h": body_hash(body), "body": body}, separators=(",", ":"))
        log(f"A {seq} {to}")
        msg = m.send(to, text)
        log(f"K {seq} {msg.id} {to}")
        if a.get("pause"):
            time.sleep(rng.uniform(0, a["pause"]))
    log("DONE")


def reader(a: dict) -> None:
    """Drain ``inboxes`` until ``stop`` exists and a last pass finds nothing.

    ``mode`` ``read``: ``read_inbox()`` (fetch, then mark read, then log).
    ``mode`` ``peek``: ``read_inbox(peek=True)``, log, then ``mark_read(ids)``.
    """
    from pi_mesh_plugin.mesh import Mesh

    log = _log(a["log"])
    meshes = {n: Mesh(a["root"], n, cwd=a["root"]) for n in a["inboxes"]}
    peek = a["mode"] == "peek"
    while True:
        stopping = os.path.exists(a["stop"])
        got = 0
        for name, m in meshes.items():
            msgs = m.read_inbox(peek=peek)
            for w in m.warnings:
                log("W " + w.replace("\n", " "))
            m.warnings.clear()
            if msgs:
                got += len(msgs)
                if not peek:
                    time.sleep(a.get("work", 0))  # processing time: read_inbox() has already marked them
                log("\n".join(f"R {msg.id} {name} {msg.text}" for msg in msgs))
                if peek:
                    time.sleep(a.get("work", 0))  # processed (logged), not yet acknowledged
                    m.mark_read([msg.id for msg in msgs])
        if stopping and not got:
            break
        if not got:
            time.sleep(0.005)
    log("DONE")


def reserver(a: dict) -> None:
    """``cycles`` reserve/hold/release cycles over overlapping paths; logs hold intervals (monotonic)."""
    from pi_mesh_plugin.errors import ReservationConflict
    from pi_mesh_plugin.mesh import Mesh

    done = 0
    if os.path.exists(a["log"]):
        with open(a["log"]) as f:
            done = sum(1 for line in f if line.startswith(("C ", "H ")))
    log = _log(a["log"])
    rng = random.Random(f"{a['seed']}-{os.getpid()}")
    m = Mesh(a["root"], a["name"], cwd=a["root"])
    m.join(harness="torture")
    log(f"J {os.getpid()}")
    for _ in range(done, a["cycles"]):
        p = rng.choice(a["paths"])
        try:
            m.reserve([p], "torture hold", ttl=600, cwd=a["root"])
        except ReservationConflict:
            log(f"C {p}")
            continue
        log(f"H {p} {time.monotonic():.9f}")
        time.sleep(rng.uniform(0, a.get("hold", 0.002)))
        log(f"U {p} {time.monotonic():.9f}")
        m.release([p], cwd=a["root"])
    log("DONE")


def holder(a: dict) -> None:
    """Join, reserve ``path``, say so, then hold it until killed."""
    from pi_mesh_plugin.mesh import Mesh

    m = Mesh(a["root"], a["name"], cwd=a["root"])
    m.join(harness="torture")
    m.reserve([a["path"]], "held until killed", ttl=600, cwd=a["root"])
    print("HOLDING", flush=True)
    time.sleep(3600)


def crasher(a: dict) -> None:
    """Arm a crash point (``PI_MESH_CRASH_AT`` semantics, in-process), then run one operation."""
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.files import fsio

    m = Mesh(a["root"], a["name"], cwd=a["root"])
    if a["op"] != "join":
        m.join(harness="torture")
    fsio.set_crash_point(a["step"])
    if a["op"] == "send-rename":
        from pi_mesh_plugin.store.files import delivery

        delivery.use_unnamed(False)  # the fallback way, as on a file system without O_TMPFILE
        m.send(a["to"], "crash test " + a["step"])
    elif a["op"] == "send":
        m.send(a["to"], "crash test " + a["step"])
    elif a["op"] == "reserve":
        m.reserve([a["path"]], "crash test", ttl=600, cwd=a["root"])
    elif a["op"] == "join":
        m.join(harness="torture")
    print("SURVIVED", flush=True)


def lock_holder(a: dict) -> None:
    """Take the reservations lock (as a writer does) and sit on it until killed."""
    from filelock import FileLock

    lock = FileLock(os.path.join(a["root"], ".pi", "mesh", "locks", a.get("lock", "reservations.lock")))
    lock.acquire()
    print("LOCKED", flush=True)
    time.sleep(3600)


def stepper(a: dict) -> None:
    """Reserve or release on command (stdin ``R <path>`` / ``U``), answering ``OK`` once the call returned."""
    from pi_mesh_plugin.mesh import Mesh

    m = Mesh(a["root"], a["name"], cwd=a["root"])
    m.join(harness="torture")
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "R":
            m.reserve([cmd[1]], "stepper", ttl=600, cwd=a["root"])
        else:
            m.release()
        print("OK", flush=True)


ROLES = {"stepper": stepper, "writer": writer, "reader": reader, "reserver": reserver, "holder": holder, "crasher": crasher,
         "lock_holder": lock_holder}

if __name__ == "__main__":
    ROLES[sys.argv[1]](json.loads(sys.argv[2]))
