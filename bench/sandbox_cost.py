"""The sandbox's cost per shell command, and what guarding ``bash`` by default costs a hook call.

``python -m bench.sandbox_cost [-n N]``.  Rows (the "sandbox" row group of ``make bench``):

* ``sandbox_cmd``: one shell command (``git status --short``, and ``true`` for the bare overhead) run by
  ``/bin/sh -c`` as a harness runs it - as the core rewrote it (bwrap, 10 claims of another agent: dirs,
  files, one that does not exist yet) versus the same command unwrapped, interleaved; target: the median
  wrapped costs at most 10 ms more;
* ``bash_guard_hook``: ``pi-mesh hook claude-code`` on a Bash call (parsed, wrapped: bash guarded, the
  default) versus the same call with ``guard = ["edit", "write"]`` (bash unguarded), whole process; report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLAIMS = ["src/auth/", "docs/spec.md", "src/api/", "src/db/models.py", "web/", "src/new/plan.py",
          "scripts/deploy.sh", "src/jobs/", "README.md", "src/util/"]


def _setup(root: str):  # -> (alice Mesh, bob Mesh)
    from pi_mesh_plugin.mesh import Mesh

    for d in ("docs", "src/api", "src/db", "web", "scripts", "src/jobs", "src/util"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for f in ("docs/spec.md", "src/db/models.py", "scripts/deploy.sh", "README.md"):
        with open(os.path.join(root, f), "w") as fh:
            fh.write("x\n")
    alice = Mesh(root, "alice", cwd=root)
    alice.join(pid=os.getpid(), harness="bench")
    alice.reserve(CLAIMS, "bench: holding")
    bob = Mesh(root, "bob", cwd=root)
    bob.join(pid=os.getpid(), harness="bench")
    return alice, bob


def command_cost(root: str, command: str, rounds: int):  # -> (wrapped Stats, plain Stats, wrapped line)
    import subprocess

    from pi_mesh_plugin.host import decide
    from pi_mesh_plugin.records import Allow, ToolCall

    from .harness import paired

    from pi_mesh_plugin.mesh import Mesh

    bob = Mesh(root, "bob", cwd=root)
    answer = decide(bob, ToolCall(tool="bash", input={"command": command}, agent="bob", cwd=root))
    bob.close()
    if not isinstance(answer, Allow):
        raise RuntimeError(f"the core did not wrap the command ({answer!r})")
    wrapped = answer.input["command"]

    def run(line: str):
        def go() -> None:
            cp = subprocess.run(["/bin/sh", "-c", line], cwd=root, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, check=False)
            if cp.returncode != 0:
                raise RuntimeError(f"{line[:60]}...: rc={cp.returncode} {cp.stderr[:200]!r}")
        return go

    sw, sp = paired(run(wrapped), run(command), rounds)
    return sw, sp, wrapped


def hook_cost(root: str, rounds: int):  # -> (guarded Stats, unguarded Stats)
    from .harness import Stats, run_process
    from .rows import child_env, pi_mesh_argv

    event = json.dumps({"session_id": "bench", "transcript_path": "/dev/null", "cwd": root,
                        "hook_event_name": "PreToolUse", "tool_name": "Bash",
                        "tool_input": {"command": "python3 -m pytest -q tests/ && git status --short",
                                       "description": "run the tests"}, "tool_use_id": "t1"}).encode()
    argv = pi_mesh_argv() + ["hook", "claude-code"]
    unguarded = os.path.join(root, "unguarded.toml")
    with open(unguarded, "w") as f:
        f.write('[defaults]\nguard = ["edit", "write"]\n')
    past = 1_000_000_000  # an old mtime: the parsed hooks.toml is cached, as it is for a settled project
    os.utime(unguarded, (past, past))
    envs = {"guarded": child_env(PI_MESH_AGENT="bob"), "unguarded": child_env(PI_MESH_AGENT="bob",
                                                                               PI_MESH_CONFIG=unguarded)}
    _, cp = run_process(argv, event, root, envs["guarded"])
    if b"updatedInput" not in cp.stdout:
        raise RuntimeError(f"the guarded hook did not wrap the command: {(cp.stdout + cp.stderr)[:200]!r}")
    _, cp = run_process(argv, event, root, envs["unguarded"])
    if cp.stdout.strip() or cp.returncode != 0:
        raise RuntimeError(f"the unguarded hook answered: {(cp.stdout + cp.stderr)[:200]!r}")
    times: dict[str, list[float]] = {"guarded": [], "unguarded": []}
    for r in range(rounds + 2):
        order = ("guarded", "unguarded") if r % 2 == 0 else ("unguarded", "guarded")
        for which in order:
            t, _ = run_process(argv, event, root, envs[which])
            if r >= 2:
                times[which].append(t)
    return Stats(times["guarded"]), Stats(times["unguarded"])


def sandbox_rows(ctx) -> list:  # -> list[Row]; the "sandbox" row group of ``make bench``
    from pi_mesh_plugin.sandbox import unavailable

    from .harness import fmt_time
    from .rows import FAIL, NA, REPORT, Row, verdict

    what = "a shell command wrapped in the sandbox (bwrap, 10 claims of another agent) vs the same command"
    why = unavailable()
    proj = ctx.project("sandbox")
    if why is not None:
        return [Row("sandbox_cmd", what, "unwrapped", "≤ +10 ms median", f"not available: {why}", status=NA)]
    rows = []
    alice, bob = _setup(proj.root)
    try:
        rounds = ctx.n(100, 6)
        for key, command in (("sandbox_cmd", "git status --short"), ("sandbox_true", "true")):
            try:
                sw, sp, _ = command_cost(proj.root, command, rounds)
                extra = sw.median - sp.median
                rows.append(Row(key, f"{what}: `{command}`, via /bin/sh -c", f"unwrapped ({fmt_time(sp.median)})",
                                "≤ +10 ms median", f"median {fmt_time(sw.median)} (+{fmt_time(extra)}), "
                                f"p99 {fmt_time(sw.p99)}", sw.median / sp.median, verdict(extra <= 10e-3),
                                {"wrapped": sw.to_dict(), "plain": sp.to_dict(), "extra_median_s": extra},
                                f"n={rounds} each, interleaved"))
            except Exception as e:  # noqa: BLE001
                rows.append(Row(key, what, "unwrapped", "≤ +10 ms median",
                                f"could not measure: {type(e).__name__}: {e}", status=FAIL))
        try:
            sg, su = hook_cost(proj.root, ctx.n(30, 4))
            rows.append(Row("bash_guard_hook", "`pi-mesh hook claude-code` on a Bash call, bash guarded (the "
                            "default: parsed, then wrapped) vs unguarded, whole process",
                            f"unguarded ({fmt_time(su.median)})", "report",
                            f"median {fmt_time(sg.median)} (+{fmt_time(sg.median - su.median)})",
                            sg.median / su.median, REPORT, {"guarded": sg.to_dict(), "unguarded": su.to_dict()}))
        except Exception as e:  # noqa: BLE001
            rows.append(Row("bash_guard_hook", "hook on a Bash call, guarded vs unguarded", "unguarded", "report",
                            f"could not measure: {type(e).__name__}: {e}", status=FAIL))
    finally:
        for m in (alice, bob):
            m.leave()
            m.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sandbox_cost")
    ap.add_argument("-n", type=int, default=100)
    args = ap.parse_args(argv)
    sys.path.insert(0, REPO)
    from .rows import Ctx

    ctx = Ctx(tempfile.mkdtemp(prefix="bench-sandbox-"))
    ctx.n = lambda full, toy: args.n  # type: ignore[method-assign]
    for row in sandbox_rows(ctx):
        print(f"{row.key:<16} {row.status:<6} {row.measured}  [baseline {row.baseline}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
