"""Code run in child processes by the multi-process tests (spawned: imports only pi_mesh_plugin).

Each worker is a real OS process with its own pid, so liveness, locks and
O_EXCL behave exactly as they do between agents.
"""

from __future__ import annotations

import os
import random
import time


def join_same_name(root: str, name: str, barrier, results) -> None:
    """Try to register ``name`` as this process; report who won; stay alive until everyone tried."""
    from pi_mesh_plugin.errors import NameTaken
    from pi_mesh_plugin.mesh import Mesh

    m = Mesh(root, name, cwd=root)
    barrier.wait()
    try:
        a = m.join(pid=os.getpid())
        results.put(("won", os.getpid(), a.session))
    except NameTaken as e:
        results.put(("taken", os.getpid(), str(e)))
    except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(("error", os.getpid(), f"{type(e).__name__}: {e}"))
    barrier.wait()


def claim_loop(root: str, name: str, targets: list[str], seconds: float, hold: float, seed: int, barrier,
               results) -> None:
    """Race for ``targets`` for ``seconds``; report ``(name, path_as_given, t0, t1)`` hold intervals."""
    from pi_mesh_plugin.errors import ReservationConflict
    from pi_mesh_plugin.mesh import Mesh

    rnd = random.Random(seed)
    m = Mesh(root, name, cwd=root)
    m.join(pid=os.getpid())
    held, refused, errors = [], 0, []
    barrier.wait()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        target = rnd.choice(targets)
        try:
            made = m.reserve([target], f"{name} racing", ttl="1m")
        except ReservationConflict:
            refused += 1
            continue
        except Exception as e:  # noqa: BLE001
            errors.append(f"{type(e).__name__}: {e}")
            continue
        t0 = time.monotonic()
        time.sleep(hold * rnd.random())
        t1 = time.monotonic()
        m.release([r.path + ("/" if r.kind == "dir" else "") for r in made])
        held.append((made[0].path, made[0].kind, t0, t1))
    results.put((name, held, refused, errors))
    barrier.wait()  # stay registered (and live) until every racer is done


def send_many(root: str, name: str, to: str, count: int, barrier, results) -> None:
    from pi_mesh_plugin.mesh import Mesh

    m = Mesh(root, name, cwd=root)
    m.join(pid=os.getpid())
    barrier.wait()
    ids = []
    for i in range(count):
        ids.append(m.send(to, f"{name}:{i}").id)
    results.put((name, ids))
    barrier.wait()


def write_forever(path: str, versions: list[bytes], seconds: float) -> None:
    """Replace ``path`` atomically with alternating contents for ``seconds``."""
    from pi_mesh_plugin.store.files import fsio

    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        fsio.write_atomic(path, versions[i % len(versions)], durable=False)
        i += 1


def claim_release_cycles(root: str, name: str, path: str, cycles: int, conn) -> None:
    """Reserve, tell the parent, wait; release, tell the parent, wait - ``cycles`` times."""
    from pi_mesh_plugin.mesh import Mesh

    m = Mesh(root, name, cwd=root)
    m.join(pid=os.getpid())
    conn.send("ready")
    conn.recv()
    for _ in range(cycles):
        m.reserve([path], "visibility")
        conn.send("held")
        conn.recv()
        m.release([path])
        conn.send("released")
        conn.recv()
    conn.send("done")
