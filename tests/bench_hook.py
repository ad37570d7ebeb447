"""Benchmark (not a test): wall time of ``pi-mesh hook claude-code`` on an allowed path
with 1,000 live claims present, side by side with a bare ``python3 -c pass``.

    .venv/bin/python tests/bench_hook.py [--runs 200] [--claims 1000]

Runs each command alternately (so machine noise hits both alike) and prints
min / median / p90 in milliseconds and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--claims", type=int, default=1000)
    ns = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, repo)
    from pi_mesh_plugin.mesh import Mesh

    tmp = tempfile.mkdtemp(prefix="pi-mesh-bench-")
    holder = subprocess.Popen(["sleep", "3600"])
    try:
        root = os.path.join(tmp, "project")
        os.makedirs(os.path.join(root, "src"))
        subprocess.run(["git", "init", "-q", root], check=True)
        agents = 10
        per = ns.claims // agents
        for a in range(agents):
            m = Mesh(root, f"holder{a}", cwd=root)
            m.join(pid=holder.pid)
            m.reserve([f"area{a}/file{j}.py" for j in range(per)], f"bench claims of holder{a}", ttl="2h")
        count = len(Mesh(root, None).reservations())
        event = json.dumps({"session_id": "bench", "cwd": root, "hook_event_name": "PreToolUse",
                            "tool_name": "Write", "tool_input": {"file_path": os.path.join(root, "src", "free.py"),
                                                                 "content": "x"}}).encode()
        python3 = shutil.which("python3") or "python3"
        real_python3 = os.path.realpath(subprocess.run([python3, "-c", "import sys; print(sys.executable)"], check=False,
                                                       capture_output=True, text=True).stdout.strip())
        env = {**os.environ, "PYTHONPATH": repo}
        env.pop("PI_MESH_AGENT", None)
        # As installed from a wheel: byte-compiled (this checkout may run with PYTHONDONTWRITEBYTECODE=1).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(repo, "pi_mesh_plugin")], check=True,
                       env=env)
        cmds = {
            "hook (python -m pi_mesh_plugin hook claude-code)": [sys.executable, "-m", "pi_mesh_plugin", "hook",
                                                                 "claude-code"],
            "hook (pi-mesh console script)": [os.path.join(os.path.dirname(sys.executable), "pi-mesh"), "hook",
                                              "claude-code"],
            "python3 -c pass (PATH python3)": [python3, "-c", "pass"],
            f"python3 -c pass ({real_python3})": [real_python3, "-c", "pass"],
            "venv python -c pass": [sys.executable, "-c", "pass"],
        }
        first = subprocess.run(cmds["hook (python -m pi_mesh_plugin hook claude-code)"], input=event, env=env, check=False,
                               capture_output=True, cwd=root)
        assert first.returncode == 0 and first.stdout == b"", (first.returncode, first.stdout, first.stderr)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(ns.runs):
            for name, cmd in cmds.items():
                t = time.perf_counter()
                subprocess.run(cmd, input=event, env=env, stdout=subprocess.DEVNULL, cwd=root, check=False)
                times[name].append((time.perf_counter() - t) * 1000)
        print(f"{count} live claims, {ns.runs} runs each (ms):")
        for name, ts in times.items():
            ts.sort()
            print(f"  {name:60s} min {ts[0]:6.1f}  median {statistics.median(ts):6.1f}  "
                  f"p90 {ts[int(len(ts) * 0.9)]:6.1f}")
        hook = statistics.median(times["hook (python -m pi_mesh_plugin hook claude-code)"])
        for name in list(cmds)[2:]:
            print(f"  ratio hook / {name}: {hook / statistics.median(times[name]):.2f}x")
    finally:
        holder.kill()
        holder.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
