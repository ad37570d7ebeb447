"""Quick PostgreSQL-store figures on loopback: ``python -m bench.pg_store [URL]``.

Measures, through the Mesh API: check() on a path under another agent's claim
(blocked) and on a free path, send() (synchronous_commit as the server has it),
reserve+release cycles of one agent, and wake-up latency of wait_for_mail.
Uses a throwaway schema, dropped at the end.  Not a test: prints medians.

``python -m bench.pg_store --contention [PROCS] [CYCLES]`` instead runs PROCS
(default 8) real processes, each pretending to be its own host, that together
complete PROCS x CYCLES (default 4,000) reserve/release cycles on pairwise
overlapping paths, and counts overlapping hold intervals (must be 0).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

N = 2000


def med(samples: list[float]) -> str:
    s = sorted(samples)
    return (f"median {statistics.median(s) * 1e3:.3f} ms  p90 {s[int(len(s) * 0.9)] * 1e3:.3f} ms  "
            f"(n={len(s)})")


def contention(base: str, procs: int, cycles: int) -> int:
    import itertools
    import json

    import psycopg

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    schema = f"bench_c_{os.getpid()}"
    url = base + ("&" if "?" in base else "?") + f"schema={schema}"
    root = tempfile.mkdtemp(prefix="pi-mesh-bench-")
    os.makedirs(os.path.join(root, "src", "auth"))
    subprocess.run(["git", "init", "-q", root], check=True)
    paths = ["src/", "src/auth/", "src/auth/login.py", "."]
    env = {**os.environ, "PI_MESH_STORE": url, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = os.path.join(root, "go")
    workers = []
    try:
        for i in range(procs):
            out = os.path.join(root, f"w{i}.json")
            workers.append((out, subprocess.Popen(
                [sys.executable, "-m", "tests.contract.claim_worker", root, f"w{i}", f"host-{i}", paths[i % len(paths)],
                 str(cycles), start, out], env=env, cwd=repo)))
        time.sleep(1.5)
        t0 = time.perf_counter()
        with open(start, "w") as f:
            f.write("go")
        results = []
        for out, p in workers:
            if p.wait(600) != 0:
                print(f"worker failed: exit {p.returncode}")
                return 1
            with open(out) as f:
                results.append(json.load(f))
        wall = time.perf_counter() - t0
        spans = sorted((a, b) for r in results for a, b in r["intervals"])
        overlaps = sum(1 for x, y in itertools.pairwise(spans) if y[0] < x[1])
        refused = sum(r["refused"] for r in results)
        print(f"contention: {procs} processes on {procs} pretend hosts, {len(spans)} reserve/release cycles in "
              f"{wall:.1f} s ({len(spans) / wall:.0f}/s), {refused} refusals, {overlaps} overlapping holds")
        return 0 if overlaps == 0 else 1
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> int:
    import psycopg

    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.postgres import PostgresStore

    args = sys.argv[1:]
    base = os.environ.get("PI_MESH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    if args[:1] == ["--contention"]:
        procs = int(args[1]) if len(args) > 1 else 8
        cycles = int(args[2]) if len(args) > 2 else 4000 // procs
        return contention(base, procs, cycles)
    if args:
        base = args[0]
    schema = f"bench_{os.getpid()}"
    url = base + ("&" if "?" in base else "?") + f"schema={schema}"
    root = tempfile.mkdtemp(prefix="pi-mesh-bench-")
    os.makedirs(os.path.join(root, "src", "auth"))
    subprocess.run(["git", "init", "-q", root], check=True)
    admin = psycopg.connect(base, autocommit=True)
    try:
        sync = admin.execute("SHOW synchronous_commit").fetchone()[0]
        print(f"server {admin.execute('SHOW server_version').fetchone()[0]}, synchronous_commit={sync}")

        def mesh(name: str) -> Mesh:
            m = Mesh(root, name, cwd=root, store=PostgresStore(url, root))
            m.join()
            return m

        alice, bob = mesh("alice"), mesh("bob")
        alice.reserve(["src/auth/"], "bench")
        for label, path in (("check() blocked ", "src/auth/login.py"), ("check() free    ", "src/other/x.py")):
            for _ in range(50):
                bob.check(path)
            t = []
            for _ in range(N):
                t0 = time.perf_counter()
                bob.check(path)
                t.append(time.perf_counter() - t0)
            print(label, med(t))
        t = []
        for _ in range(50):
            bob.store.covering("src/auth/login.py")
        for _ in range(N):
            t0 = time.perf_counter()
            bob.store.covering("src/auth/login.py")
            t.append(time.perf_counter() - t0)
        print("store.covering()", med(t))
        t = []
        for i in range(N // 2):
            t0 = time.perf_counter()
            bob.send("alice", f"hello {i}")
            t.append(time.perf_counter() - t0)
        print("send()          ", med(t))
        t = []
        for _ in range(N // 4):
            t0 = time.perf_counter()
            bob.reserve(["src/other/"], "cycle")
            bob.release()
            t.append(time.perf_counter() - t0)
        print("reserve+release ", med(t))
        alice.read_inbox()
        lat = []
        for _ in range(20):
            got = threading.Event()
            res: list[float] = []

            def waiter(got: threading.Event = got, res: list[float] = res) -> None:
                got.set()
                alice.store.wait_for_mail("alice", 5)
                res.append(time.perf_counter())

            th = threading.Thread(target=waiter)
            th.start()
            got.wait()
            time.sleep(0.05)
            t0 = time.perf_counter()
            bob.send("alice", "wake")
            th.join()
            lat.append(res[0] - t0)
            alice.read_inbox()
        print("wait_for_mail wake after send() began", med(lat))
        alice.close()
        bob.close()
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
