"""Grant latency: from the holder's ``release()`` call to the waiter being told "it is yours".

``python -m bench.queue_grant [-n N] [--pg URL]``: alice holds ``src/auth/``; bob is a real ``pi-mesh serve``
(the Pi sidecar) that queued for it; the time runs from just before alice's ``release()`` (the grant is made
inside it, under the claims lock or in its transaction) until the sidecar's ``{"event": "message"}`` line for
the grant is read from its stdout.  Then bob acks the message and releases, alice takes the claim again,
bob queues again.  Run on the file store, and on PostgreSQL when ``--pg`` (or ``$PI_MESH_TEST_PG``) reaches
a server (a fresh schema each run).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(root: str, n: int, store_url: str | None):  # -> Stats
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.records import Queued

    from .harness import Stats, perf
    from .sidecar_client import Sidecar
    from .rows import child_env, pi_mesh_argv

    env = child_env(**({"PI_MESH_STORE": store_url} if store_url else {}))
    if store_url:
        os.environ["PI_MESH_STORE"] = store_url
    alice = Mesh(root, "alice", cwd=root)
    alice.join(pid=os.getpid(), harness="bench")
    sc = Sidecar(pi_mesh_argv() + ["--root", root, "serve"], root, env)
    sc.request("hello", name="bob", pid=os.getpid(), cwd=root)
    bob = Mesh(root, "bob", cwd=root)  # the sidecar's agent, driven from here for reserve/release
    lat = []
    try:
        time.sleep(0.3)
        for _ in range(n):
            alice.reserve(["src/auth/"], "bench: holding")
            q = bob.reserve(["src/auth/"], "bench: waiting", queue=True)
            assert isinstance(q, Queued), q
            while True:  # drain the notices of earlier rounds
                try:
                    sc.wait_event(0.05)
                except TimeoutError:
                    break
            t0 = perf()
            alice.release()
            while True:
                ev, t = sc.wait_event(5.0)
                if ev.get("event") == "message" and "is now yours" in ev.get("text", ""):
                    break
            lat.append(t - t0)
            sc.request("ack", ids=[ev["id"]], stage="delivered")
            bob.release()
            alice.read_inbox()
    finally:
        sc.close()
        alice.leave()
        alice.close()
        bob.close()
        os.environ.pop("PI_MESH_STORE", None)
    return Stats(lat)


def queue_rows(ctx) -> list:  # -> list[Row]; the "queue" row group of ``make bench``
    """One row per store: the grant's latency, target median ≤ 20 ms on the file store (PostgreSQL: report)."""
    from .harness import fmt_time
    from .rows import FAIL, NA, PG_URL, REPORT, Row, verdict

    n = ctx.n(200, 10)
    rows = []
    what = "queue grant: holder's release() → the waiting agent's sidecar emits \"…is now yours\""
    proj = ctx.project("queue")
    try:
        st = measure(proj.root, n, None)
        rows.append(Row("queue_grant", f"{what}, file store", "—", "median ≤ 20 ms",
                        f"median {fmt_time(st.median)}, p99 {fmt_time(st.p99)}", None, verdict(st.median <= 20e-3),
                        st.to_dict(), f"n={n}; the waiter is a real `pi-mesh serve` that queued with reserve(queue=True)"))
    except Exception as e:  # noqa: BLE001
        rows.append(Row("queue_grant", f"{what}, file store", "—", "median ≤ 20 ms",
                        f"could not measure: {type(e).__name__}: {e}", status=FAIL))
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as e:  # noqa: BLE001
        return rows + [Row("queue_grant_pg", f"{what}, PostgreSQL", "—", "report",
                           f"not available: {type(e).__name__}", status=NA)]
    schema = f"bench_q{os.getpid()}"
    url = PG_URL + ("&" if "?" in PG_URL else "?") + f"schema={schema}"
    try:
        st = measure(ctx.project("queue_pg").root, n, url)
        rows.append(Row("queue_grant_pg", f"{what}, PostgreSQL (LISTEN/NOTIFY)", "—", "report",
                        f"median {fmt_time(st.median)}, p99 {fmt_time(st.p99)}", None, REPORT, st.to_dict(),
                        f"n={n}"))
    except Exception as e:  # noqa: BLE001
        rows.append(Row("queue_grant_pg", f"{what}, PostgreSQL", "—", "report",
                        f"could not measure: {type(e).__name__}: {e}", status=FAIL))
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.queue_grant")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--pg", default=os.environ.get("PI_MESH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args(argv)
    sys.path.insert(0, REPO)
    from .fixtures import new_project
    from .harness import fmt_time

    base = tempfile.mkdtemp(prefix="bench-queue-")
    runs = [("file store", None)]
    try:
        import psycopg

        psycopg.connect(args.pg, connect_timeout=3).close()
        sep = "&" if "?" in args.pg else "?"
        runs.append(("PostgreSQL", f"{args.pg}{sep}schema=bench_{uuid.uuid4().hex[:10]}"))
    except Exception as e:  # noqa: BLE001
        print(f"PostgreSQL skipped: {type(e).__name__}: {e}")
    for label, url in runs:
        proj = new_project(base, label.replace(" ", "-"))
        st = measure(proj.root, args.n, url)
        print(f"{label}: release() → waiter's sidecar told: median {fmt_time(st.median)}, p99 {fmt_time(st.p99)} "
              f"(n={st.n})")
        if url:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as c:  # the scratch schema goes
                c.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("schema=", 1)[1]}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
