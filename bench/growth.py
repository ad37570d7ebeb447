"""The growth table: each operation at 1×, 10× and 100× the work, so a super-linear cost shows.

Every operation states the cost it should have (``O(1)`` per call or ``O(n)``
in the work); a measured growth more than twice (O(1)) or 1.5 times (O(n))
the expected factor is flagged.
"""

from __future__ import annotations

import json
import os
import sys

from .fixtures import CHECKED
from .harness import fmt_time, run_process, sample

OPS = []


def op(name: str, unit: str, expected: str, sizes: tuple[int, int, int], toy: tuple[int, int, int]):
    def deco(fn):
        OPS.append((name, unit, expected, sizes, toy, fn))
        return fn
    return deco


@op("check() unclaimed path", "live claims", "O(1)", (100, 1000, 10000), (10, 100, 1000))
def g_check(ctx, n: int) -> float:
    proj = _proj_with_agents(ctx, "g_check", 100)
    proj.clear_claims()
    proj.seed_claims(n)
    m = proj.mesh("checker")
    return sample(lambda: m.check(CHECKED), ctx.n(2000, 200), warmup=100).median


@op("reserve() + release()", "live claims", "O(n)", (10, 100, 1000), (10, 100, 1000))
def g_reserve(ctx, n: int) -> float:
    proj = _proj_with_agents(ctx, "g_reserve", 100)
    proj.clear_claims()
    proj.seed_claims(n)
    me = proj.meshes[0]
    return sample(lambda: (me.reserve(["free/zone.py"], "growth"), me.release(["free/zone.py"])),
                  ctx.n(40, 5), warmup=2).median


@op("send() 1 KiB", "unread messages already in the inbox", "O(1)", (100, 1000, 10000), (10, 100, 1000))
def g_send(ctx, n: int) -> float:
    proj = ctx.project(f"g_send_{n}")
    alice, bob = proj.join(2)
    proj.seed_messages(bob.agent, n)
    text = "x" * 1024
    return sample(lambda: alice.send(bob.agent, text), ctx.n(200, 10), warmup=5).median


@op("broadcast() 1 KiB", "recipients", "O(n)", (1, 10, 100), (1, 10, 20))
def g_broadcast(ctx, n: int) -> float:
    proj = ctx.project(f"g_broadcast_{n}")
    sender, *_ = proj.join(n + 1)
    text = "x" * 1024
    return sample(lambda: sender.broadcast(text), ctx.n(max(5, 600 // n), 3), warmup=1).median


@op("read_inbox(peek=True)", "unread messages", "O(n)", (100, 1000, 10000), (10, 100, 1000))
def g_peek(ctx, n: int) -> float:
    proj = ctx.project(f"g_peek_{n}")
    (bob,) = proj.join(1)
    proj.seed_messages(bob.agent, n)
    return sample(lambda: bob.read_inbox(peek=True), ctx.n(max(3, 3000 // n), 2), warmup=1).median


@op("read_inbox() (marks read)", "unread messages", "O(n)", (100, 1000, 10000), (10, 100, 1000))
def g_read(ctx, n: int) -> float:
    from .rows import _unread_again

    proj = ctx.project(f"g_read_{n}")
    (bob,) = proj.join(1)
    proj.seed_messages(bob.agent, n)
    return sample(lambda: bob.read_inbox(), ctx.n(max(3, 3000 // n), 2), warmup=0,
                  setup=lambda: _unread_again(proj, bob.agent)).median


@op("agents()", "registered agents", "O(n)", (10, 100, 1000), (5, 50, 200))
def g_agents(ctx, n: int) -> float:
    proj = ctx.project(f"g_agents_{n}")
    proj.join(n)
    m = proj.meshes[0]
    return sample(lambda: m.agents(), ctx.n(max(3, 2000 // n), 2), warmup=1).median


@op("reservations()", "live claims", "O(n)", (100, 1000, 10000), (10, 100, 1000))
def g_reservations(ctx, n: int) -> float:
    proj = _proj_with_agents(ctx, "g_check", 100)
    proj.clear_claims()
    proj.seed_claims(n)
    m = proj.mesh("lister")
    return sample(lambda: m.reservations(), ctx.n(max(3, 20000 // n), 2), warmup=1).median


@op("`pi-mesh hook claude-code` process", "live claims", "O(n)", (100, 1000, 10000), (10, 100, 1000))
def g_hook(ctx, n: int) -> float | None:
    from .rows import child_env, has_module, pi_mesh_argv

    if not has_module("pi_mesh_plugin.adapters.hooks.hookcmd"):
        return None
    proj = _proj_with_agents(ctx, "g_hook", 100)
    proj.clear_claims()
    proj.seed_claims(n)
    event = json.dumps({"session_id": "g", "cwd": proj.root, "hook_event_name": "PreToolUse", "tool_name": "Edit",
                        "tool_input": {"file_path": os.path.join(proj.root, CHECKED)}}).encode()
    argv = pi_mesh_argv() + ["hook", "claude-code"]
    env = child_env(PI_MESH_AGENT="checker")
    times = []
    for _ in range(ctx.n(15, 2)):
        t, cp = run_process(argv, event, proj.root, env)
        if cp.returncode != 0:
            raise RuntimeError(cp.stderr.decode(errors="replace")[:200])
        times.append(t)
    times.sort()
    return times[len(times) // 2]


def _proj_with_agents(ctx, name: str, agents: int):
    key = "growth_proj_" + name
    proj = ctx.shared.get(key)
    if proj is None:
        proj = ctx.project(name)
        proj.join(ctx.n(agents, 10))
        ctx.shared[key] = proj
    return proj


def run_growth(ctx, only: set[str] | None = None, log=print) -> list[dict]:
    out = []
    for name, unit, expected, sizes, toy, fn in OPS:
        if only and not any(k in name for k in only):
            continue
        use = toy if ctx.quick else sizes
        times: list[float | None] = []
        for n in use:
            try:
                times.append(fn(ctx, n))
            except Exception as e:  # noqa: BLE001 - one broken operation must not sink the table
                print(f"bench: growth {name} at {n}: {type(e).__name__}: {e}", file=sys.stderr)
                times.append(None)
        row = {"op": name, "unit": unit, "expected": expected, "sizes": list(use), "times_s": times}
        t1, t10, t100 = times
        row["x10"] = t10 / t1 if t1 and t10 else None
        row["x100"] = t100 / t1 if t1 and t100 else None
        size_factor = use[2] / use[0]
        if row["x100"] is None:
            row["verdict"] = "n/a"
        elif expected == "O(1)":
            row["verdict"] = "flat" if row["x100"] <= 2.0 else "GROWS"
        else:
            row["verdict"] = "linear or better" if row["x100"] <= 1.5 * size_factor else "SUPER-LINEAR"
        log(f"  growth: {name:<36} " + "  ".join(fmt_time(t) for t in times) + f"  {row['verdict']}")
        out.append(row)
    return out
