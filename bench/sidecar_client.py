"""Drive a real ``pi-mesh serve`` over its JSON-lines pipes, as the Pi extension does."""

from __future__ import annotations

import json
import os
import select
import subprocess

from .fixtures import CHECKED
from .harness import Stats, perf


class Sidecar:
    def __init__(self, argv: list[str], cwd: str, env: dict) -> None:
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  cwd=cwd, env=env, bufsize=0)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _line(self, timeout: float) -> dict:
        fd = self.p.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self.buf:
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                raise TimeoutError("the sidecar did not answer in time")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                err = self.p.stderr.read().decode(errors="replace")[:300]  # type: ignore[union-attr]
                raise RuntimeError(f"the sidecar exited: {err}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, op: str, timeout: float = 10.0, **fields: object) -> dict:
        self.next_id += 1
        rid = self.next_id
        self.p.stdin.write(json.dumps({"id": rid, "op": op, **fields}).encode() + b"\n")  # type: ignore[union-attr]
        while True:
            msg = self._line(timeout)
            if msg.get("id") == rid:
                if not msg.get("ok"):
                    raise RuntimeError(f"{op}: {msg.get('error')}")
                return msg["result"]  # type: ignore[no-any-return]
            if "event" in msg:
                self.events.append(msg)

    def wait_event(self, timeout: float) -> tuple[dict, float]:
        """The next unsolicited event and when it was read."""
        if self.events:
            return self.events.pop(0), perf()
        while True:
            msg = self._line(timeout)
            if "event" in msg:
                return msg, perf()

    def close(self) -> None:
        try:
            self.p.stdin.close()  # type: ignore[union-attr]
            self.p.wait(10)
        except Exception:  # noqa: BLE001
            self.p.kill()
            self.p.wait()


def start(proj, name: str):  # -> Sidecar
    from .rows import child_env, pi_mesh_argv

    sc = Sidecar(pi_mesh_argv() + ["--root", proj.root, "serve"], proj.root, child_env())
    sc.request("hello", name=name, pid=os.getpid(), cwd=proj.root)
    return sc


def measure_sidecar(ctx, proj) -> tuple[Stats, str]:
    sc = start(proj, "pi-sidecar")
    try:
        allowed = {"tool": "edit", "input": {"path": CHECKED, "edits": []}, "cwd": proj.root}
        res = sc.request("pre_tool_call", **allowed)
        if not res.get("allow"):
            raise RuntimeError(f"the unclaimed path was blocked: {res}")
        blocked = sc.request("pre_tool_call", tool="edit", input={"path": "pkg0/mod0/x.py", "edits": []},
                             cwd=proj.root)
        if blocked.get("allow"):
            raise RuntimeError("a claimed path was allowed")
        for _ in range(ctx.n(200, 10)):
            sc.request("pre_tool_call", **allowed)
        times = []
        for _ in range(ctx.n(3000, 100)):
            t0 = perf()
            sc.request("pre_tool_call", **allowed)
            times.append(perf() - t0)
    finally:
        sc.close()
    return Stats(times), (f"{len(proj.meshes)} agents, {ctx.n(1000, 20)} claims; request written to the sidecar's "
                          "stdin → response line read, pre_tool_call edit of an unclaimed path")
