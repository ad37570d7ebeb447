"""The other process of the "fresh state" row: reserves and releases on command.

``python -m bench.peer ROOT AGENT`` joins ``AGENT`` (owned by this process),
then reads commands from stdin, one per line, and answers each on stdout
only after the API call has returned:

* ``r PATH`` - ``reserve([PATH])``, answers ``ok``
* ``u PATH`` - ``release([PATH])``, answers ``ok``
* ``q`` - leave and exit
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    root, agent = sys.argv[1], sys.argv[2]
    from pi_mesh_plugin.mesh import Mesh

    mesh = Mesh(root, agent, cwd=root)
    mesh.join(pid=os.getpid(), harness="bench-peer")
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        cmd, _, arg = line.rstrip("\n").partition(" ")
        if cmd == "r":
            mesh.reserve([arg], "bench: fresh-state row")
        elif cmd == "u":
            mesh.release([arg])
        elif cmd == "q":
            break
        out.write("ok\n")
        out.flush()
    mesh.leave()
    return 0


if __name__ == "__main__":
    sys.exit(main())
