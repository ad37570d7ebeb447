"""The per-call hook at the interpreter's floor, and the CLI verbs agents call through their shell.

Every row here runs whole processes, interleaved in one loop (A B C ... then reversed), so that the
machine's drift hits subject and baseline alike; the verdicts are on medians.

* the installed hook command (:mod:`pi_mesh_plugin.adapters.installers.launch`, ``-I -S``) of each harness,
  allowed and blocked, 1,000 claims, the agent named (so the allowed path also renews its claims), against
  ``python -c pass`` (target ≤ 1.5×) and, reported, ``python -I -S -c pass``, the interpreter's own floor;
* the same with ``PYTHONDONTWRITEBYTECODE=1`` in the environment (target ≤ 1.5× as well);
* the first call after another process changed a claim (the index is revalidated): target ≤ 2×;
* ``pi-mesh reserve``, ``release``, ``send``, ``check`` and ``inbox`` through the installed console script:
  each at most 2× the hook.
"""

from __future__ import annotations

import json
import os
import sys

from .fixtures import CHECKED
from .harness import Stats, fmt_time, run_process


def _interleaved(cmds: dict[str, tuple[list[str], bytes | None, dict]], cwd: str, rounds: int,
                 before: dict | None = None) -> dict[str, Stats]:
    """Run each command once per round, order reversed every other round; ``before[name]()`` runs untimed
    just before that command (to change a claim, say)."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    names = list(cmds)
    for r in range(rounds + 2):
        for name in (names if r % 2 == 0 else names[::-1]):
            argv, data, env = cmds[name]
            if before and name in before:
                before[name]()
            t, cp = run_process(argv, data, cwd, env)
            if cp.returncode not in (0, 1, 3):
                raise RuntimeError(f"{name}: exit {cp.returncode}: {cp.stderr.decode(errors='replace')[:200]}")
            if r >= 2:
                times[name].append(t)
    return {k: Stats(v) for k, v in times.items()}


def hook_floor_rows(ctx):  # -> list[Row]
    from pi_mesh_plugin.adapters.installers import launch

    from .rows import Row, child_env, pi_mesh_argv, verdict

    proj = ctx.project("hook_floor")
    proj.join(ctx.n(100, 5))
    proj.seed_claims(ctx.n(1000, 20))
    (agent,) = proj.join(1, prefix="claude")
    agent.reserve(["own/"], "bench: the hook's agent holds a claim of its own (renewed with its work)")
    env = child_env(PI_MESH_AGENT=agent.agent)
    env_nobyte = {**env, "PYTHONDONTWRITEBYTECODE": "1"}

    def event(harness: str, path: str) -> bytes:
        full = os.path.join(proj.root, path)
        if harness == "codex":
            body = {"tool_name": "apply_patch", "tool_input": {"command": f"*** Begin Patch\n*** Update File: {full}\n"
                                                                           "@@\n-a\n+b\n*** End Patch\n"}}
        elif harness == "gemini":
            body = {"tool_name": "write_file", "tool_input": {"file_path": full, "content": "x"}}
        else:
            body = {"tool_name": "Edit", "tool_input": {"file_path": full, "old_string": "a", "new_string": "b"}}
        return json.dumps({"session_id": "bench", "transcript_path": "/dev/null", "cwd": proj.root,
                           "hook_event_name": "BeforeTool" if harness == "gemini" else "PreToolUse",
                           **body}).encode()

    hook = {h: launch.argv(["hook", h]) for h in ("claude-code", "codex", "gemini")}
    for h, argv in hook.items():  # each answers as it must before it is timed
        _, cp = run_process(argv, event(h, CHECKED), proj.root, env)
        assert cp.returncode == 0 and not cp.stdout.strip(), (h, cp.stdout, cp.stderr)
        _, cp = run_process(argv, event(h, "pkg0/mod0/x.py"), proj.root, env)
        assert b"deny" in cp.stdout, (h, cp.stdout, cp.stderr)
    py = sys.executable
    cmds = {"pass": ([py, "-c", "pass"], None, env), "floor": ([py, "-I", "-S", "-c", "pass"], None, env),
            "claude": (hook["claude-code"], event("claude-code", CHECKED), env),
            "claude_blocked": (hook["claude-code"], event("claude-code", "pkg0/mod0/x.py"), env),
            "codex": (hook["codex"], event("codex", CHECKED), env),
            "gemini": (hook["gemini"], event("gemini", CHECKED), env),
            "nobytecode": (hook["claude-code"], event("claude-code", CHECKED), env_nobyte)}
    rounds = ctx.n(40, 3)
    st = _interleaved(cmds, proj.root, rounds)
    base, floor = st["pass"].median, st["floor"].median
    rows = []
    for key, what in (("claude", "`pi-mesh hook claude-code` as installed, allowed, 1,000 claims, agent named"),
                      ("claude_blocked", "the same hook, blocked (holder lookup, deny JSON, feed line)"),
                      ("codex", "`pi-mesh hook codex` as installed, allowed, 1,000 claims"),
                      ("gemini", "`pi-mesh hook gemini` as installed, allowed, 1,000 claims"),
                      ("nobytecode", "the claude-code hook with PYTHONDONTWRITEBYTECODE=1 in the environment")):
        s = st[key]
        ratio = s.median / base
        rows.append(Row(f"floor_{key}", what, f"`python -c pass` ({fmt_time(base)})", "≤ 1.5×",
                        f"median {fmt_time(s.median)}, p99 {fmt_time(s.p99)}; {s.median / floor:.2f}× "
                        f"`python -I -S -c pass` ({fmt_time(floor)})", ratio, verdict(ratio <= 1.5),
                        {key: s.to_dict(), "baseline": st["pass"].to_dict(), "floor": st["floor"].to_dict()}))

    # the first call after another process changed a claim: the index is revalidated
    churn = proj.mesh("churner")
    churn.join()
    flip = [0]

    def change() -> None:
        flip[0] += 1
        if flip[0] % 2:
            churn.reserve([f"churn/{flip[0]}/"], "bench: a claim changes before each timed call")
        else:
            churn.release()

    st2 = _interleaved({"pass": cmds["pass"], "after_change": cmds["claude"]}, proj.root, ctx.n(30, 3),
                       before={"after_change": change})
    r = st2["after_change"].median / st2["pass"].median
    rows.append(Row("floor_after_change", "the claude-code hook right after another process reserved or released",
                    f"`python -c pass` ({fmt_time(st2['pass'].median)})", "≤ 2×",
                    f"median {fmt_time(st2['after_change'].median)}, p99 {fmt_time(st2['after_change'].p99)}", r,
                    verdict(r <= 2.0), {"after_change": st2["after_change"].to_dict()}))

    # the CLI verbs an agent calls through its shell, each against the hook, side by side
    cli = pi_mesh_argv() + ["--root", proj.root]
    benv = child_env(PI_MESH_AGENT="shellagent")
    run_process(cli + ["join", "--name", "shellagent", "--pid", str(os.getpid())], None, proj.root, benv)
    verbs = {"hook": cmds["claude"],
             "reserve": (cli + ["reserve", "verbs/x.py", "--reason", "bench"], None, benv),
             "release": (cli + ["release", "verbs/x.py"], None, benv),
             "send": (cli + ["send", agent.agent, "bench: hello"], None, benv),
             "check": (cli + ["check", CHECKED], None, benv),
             "inbox": (cli + ["inbox"], None, child_env(PI_MESH_AGENT=agent.agent))}
    st3 = _interleaved(verbs, proj.root, ctx.n(20, 2))
    hook_t = st3["hook"].median
    for verb in ("reserve", "release", "send", "check", "inbox"):
        s = st3[verb]
        ratio = s.median / hook_t
        rows.append(Row(f"cli_{verb}", f"`pi-mesh {verb}` from a shell, whole process",
                        f"the claude-code hook ({fmt_time(hook_t)})", "≤ 2×",
                        f"median {fmt_time(s.median)}, p99 {fmt_time(s.p99)}", ratio, verdict(ratio <= 2.0),
                        {verb: s.to_dict(), "hook": st3["hook"].to_dict()}))
    return rows
