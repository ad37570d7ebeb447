"""One contender of the multi-process exclusivity test (a real OS process pretending to be its own machine).

``python -m tests.contract.claim_worker ROOT NAME HOST PATH CYCLES START_FILE OUT_FILE``
with ``PI_MESH_STORE`` set: joins as NAME on host HOST, waits for START_FILE,
then until it has held PATH CYCLES times (heartbeating every 5 s): reserve (retrying on conflict), take
a monotonic timestamp, hold briefly, take another, release.  Writes the hold
intervals (CLOCK_MONOTONIC ns, comparable across processes on Linux) and the
number of refusals to OUT_FILE as JSON.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time


def main(argv: list[str]) -> int:
    root, name, host, path, cycles, start_file, out_file = argv
    os.environ["PI_MESH_HOSTNAME"] = host
    from pi_mesh_plugin.errors import ReservationConflict
    from pi_mesh_plugin.mesh import Mesh

    mesh = Mesh(root, name, cwd=root)
    mesh.join(harness="script")
    deadline = time.monotonic() + 30
    while not os.path.exists(start_file):
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.005)
    intervals, refused = [], 0
    beat = time.monotonic()
    while len(intervals) < int(cycles):
        if time.monotonic() - beat > 5:  # as a live agent does: others judge this "remote host" by heartbeat
            mesh.heartbeat()
            beat = time.monotonic()
        try:
            mesh.reserve([path], "exclusivity test", ttl=60)
        except ReservationConflict:
            refused += 1
            time.sleep(random.random() * 0.002)
            continue
        t0 = time.monotonic_ns()
        end = time.perf_counter() + 0.0005
        while time.perf_counter() < end:
            pass
        t1 = time.monotonic_ns()
        mesh.release()
        intervals.append((t0, t1))
    mesh.leave()
    mesh.close()
    with open(out_file, "w") as f:
        json.dump({"name": name, "path": path, "intervals": intervals, "refused": refused}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
