"""One waiter of the multi-process queue test (a real OS process).

``python -m tests.contract.queue_worker ROOT NAME PATH MODE OUT_FILE`` (with ``PI_MESH_STORE`` for PostgreSQL):
joins as NAME (owned by this process), queues for PATH, and writes JSON lines to OUT_FILE (flushed and fsynced):
``queued`` (ticket id, place), ``granted`` (the claim: id, created) once the claim is its own, then in MODE
``normal`` holds briefly and writes ``released`` (wall time just before releasing) and releases; in MODE ``die``
it keeps the claim and sleeps until killed.  While waiting it polls ``settle()`` (the way ``reserve --wait``
does), which is also how a dead holder's claim is noticed.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    root, name, path, mode, out_file = argv
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.records import Queued

    out = open(out_file, "a")

    def log(**ev: object) -> None:
        out.write(json.dumps(ev) + "\n")
        out.flush()
        os.fsync(out.fileno())

    mesh = Mesh(root, name, cwd=root)
    mesh.join(harness="script")
    got = mesh.reserve([path], f"{name} queue test", ttl=300, queue=True)
    if isinstance(got, Queued):
        log(event="queued", ticket=got.id, position=got.position)
    deadline = time.monotonic() + 120
    while True:
        mine = [r for r in mesh.reservations() if r.holder == name and r.path == path.rstrip("/")]
        if mine:
            break
        if time.monotonic() > deadline:
            log(event="timeout")
            return 2
        time.sleep(0.01)
        mesh.settle()
    log(event="granted", claim=mine[0].id, created=mine[0].created,
        others=sorted({r.holder for r in mesh.reservations() if r.holder != name}))
    if mode == "die":
        while True:
            time.sleep(60)
    time.sleep(0.05)
    log(event="released", wall=time.time())
    mesh.release()
    mesh.leave()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
