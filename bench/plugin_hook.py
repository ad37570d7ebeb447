"""The per-call hook with one third-party plugin loaded, side by side with the mesh-only hook.

The plugin is a real distribution (a module and a ``.dist-info`` with an entry point in the group
``pi_mesh``, on ``PYTHONPATH``) that vetoes writes to ``*.lock`` and registers one tool - the one
the plugin tests build.  Two projects with the same claims differ only in hooks.toml: ``plugins =
["mesh", "nolock"]`` against ``["mesh"]``; both hooks run with the same environment (the
distribution on the path of both), interleaved, on an allowed ``Edit``.  Target: ≤ 1.2x.
"""

from __future__ import annotations

import json
import os

NOLOCK = '''
from pi_mesh_plugin import hookimpl
from pi_mesh_plugin.records import Block


@hookimpl
def pi_mesh_pre_tool_call(call):
    for path in call.paths:
        if path.endswith(".lock"):
            return Block(tool=call.tool, message=f"BLOCKED by nolock: lock files are the package manager's ({path})")
    return None


@hookimpl
def pi_mesh_register_tools(register):
    register("lock_policy", "Say which files nolock protects.", {"type": "object", "properties": {}},
             lambda mesh: "*.lock files are the package manager's")
'''


def make_distribution(site: str) -> str:
    """``site`` holding the ``nolock`` module and its dist-info (entry point ``nolock`` in ``pi_mesh``)."""
    info = os.path.join(site, "pi_mesh_nolock-1.0.dist-info")
    os.makedirs(info, exist_ok=True)
    files = {os.path.join(site, "pi_mesh_nolock.py"): NOLOCK,
             os.path.join(info, "METADATA"): "Metadata-Version: 2.1\nName: pi-mesh-nolock\nVersion: 1.0\n",
             os.path.join(info, "entry_points.txt"): "[pi_mesh]\nnolock = pi_mesh_nolock\n",
             os.path.join(info, "RECORD"): ""}
    for path, text in files.items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return site


def plugin_hook_rows(ctx) -> list:  # -> list[Row]; the "plugin_hook" row group of ``make bench``
    from .fixtures import CHECKED
    from .harness import Stats, fmt_time, run_process
    from .rows import FAIL, Row, child_env, pi_mesh_argv, verdict

    what = "`pi-mesh hook claude-code` with one third-party plugin (a real distribution) loaded, allowed path"
    site = make_distribution(os.path.join(ctx.base, "plugin-site"))
    projects = {}
    for name, plugins in (("with_plugin", '["mesh", "nolock"]'), ("mesh_only", '["mesh"]')):
        proj = ctx.project(f"plugin_hook_{name}")
        proj.join(ctx.n(20, 3))
        proj.seed_claims(ctx.n(200, 10))
        with open(os.path.join(proj.root, "hooks.toml"), "w", encoding="utf-8") as f:
            f.write(f"[defaults]\nplugins = {plugins}\n")
        old = os.stat(f.name).st_mtime - 60  # old enough for the parsed-config cache, as in real use
        os.utime(f.name, (old, old))
        projects[name] = proj
    argv = pi_mesh_argv() + ["hook", "claude-code"]
    env = child_env(PI_MESH_AGENT="bench-agent", PYTHONPATH=site)

    def event(root: str, path: str) -> bytes:
        return json.dumps({"session_id": "bench", "transcript_path": "/dev/null", "cwd": root,
                           "hook_event_name": "PreToolUse", "tool_name": "Edit",
                           "tool_input": {"file_path": os.path.join(root, path), "old_string": "pass",
                                          "new_string": "return 1"}, "tool_use_id": "t1"}).encode()

    with_root, only_root = projects["with_plugin"].root, projects["mesh_only"].root
    # the plugin is really loaded: it vetoes a lock file in its project and not in the other
    _, cp = run_process(argv, event(with_root, "poetry.lock"), with_root, env)
    _, cq = run_process(argv, event(only_root, "poetry.lock"), only_root, env)
    if b"BLOCKED by nolock" not in cp.stdout or cq.stdout.strip() or cq.returncode != 0:
        return [Row("plugin_hook", what, "the mesh-only hook", "≤ 1.2×", "the plugin's veto was not seen: "
                    f"{(cp.stdout + cp.stderr + cq.stdout + cq.stderr).decode(errors='replace')[:200]}", status=FAIL)]
    subject = (argv, event(with_root, CHECKED), with_root)
    baseline = (argv, event(only_root, CHECKED), only_root)
    for a, inp, cwd in (subject, baseline):
        _, cp = run_process(a, inp, cwd, env)
        if cp.returncode != 0 or cp.stdout.strip():
            return [Row("plugin_hook", what, "the mesh-only hook", "≤ 1.2×", f"hook failed: rc={cp.returncode} "
                        f"{(cp.stdout + cp.stderr).decode(errors='replace')[:200]}", status=FAIL)]
    ta: list[float] = []
    tb: list[float] = []
    rounds = ctx.n(40, 4)
    for r in range(rounds + 2):
        runs = [(subject, ta), (baseline, tb)]
        for (a, inp, cwd), acc in (runs if r % 2 == 0 else runs[::-1]):
            t, _ = run_process(a, inp, cwd, env)
            if r >= 2:
                acc.append(t)
    sa, sb = Stats(ta), Stats(tb)
    ratio = sa.median / sb.median
    return [Row("plugin_hook", what, f"the mesh-only hook ({fmt_time(sb.median)})", "≤ 1.2×",
                f"median {fmt_time(sa.median)}, p99 {fmt_time(sa.p99)}", ratio, verdict(ratio <= 1.2),
                {"with_plugin": sa.to_dict(), "mesh_only": sb.to_dict(), "argv": argv},
                "both hooks interleaved, same environment (the distribution on PYTHONPATH of both); "
                "hooks.toml differs only in `plugins`")]
