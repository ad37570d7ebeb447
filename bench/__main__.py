"""``python -m bench`` (``make bench``): run the suite, print the table, write BENCHMARKS.md and build/bench.json.

Options:
  --quick          toy sizes (seconds, for the smoke test; figures are meaningless)
  --only A,B       only these row groups (check, fresh, hook, plugin_hook, sidecar, messages, inbox, delivery,
                   agents, postgres, queue, floor) and/or ``growth``
  --no-growth      skip the growth table
  --md PATH        where to write the Markdown report (default: BENCHMARKS.md at the repository root;
                   with --quick: build/bench-quick.md)
  --json PATH      where to write the JSON results (default: build/bench.json; --quick: build/bench-quick.json)
  --keep           keep the scratch projects under build/bench-tmp/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="pi_mesh_plugin benchmarks")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-growth", action="store_true")
    ap.add_argument("--md")
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--scratch", help="scratch directory (default: build/bench-tmp in the repository)")
    args = ap.parse_args(argv)

    sys.path.insert(0, REPO)
    from .growth import run_growth
    from .harness import disk_probe, machine
    from .report import markdown, table
    from .rows import ROWS, Ctx

    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(ROWS) - {"growth"}
    if unknown:
        print(f"bench: unknown row group(s): {', '.join(sorted(unknown))}; known: "
              f"{', '.join(list(ROWS) + ['growth'])}", file=sys.stderr)
        return 2
    build = os.path.join(REPO, "build")
    scratch = args.scratch or os.path.join(build, "bench-tmp")
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(scratch)
    for k in [k for k in os.environ if k.startswith("PI_MESH_")]:
        del os.environ[k]  # the benchmark builds its own projects
    os.environ["PI_MESH_LIMITS"] = "off"  # thousands of sends a second are the point here, not a flood to stop
    # Whole-process rows must not pay for compiling our sources: this environment may set
    # PYTHONDONTWRITEBYTECODE, so a module edited since the last compile would be compiled at every
    # start of `pi-mesh hook ...`. An installed wheel ships compiled; compile the checkout likewise.
    import compileall

    compileall.compile_dir(os.path.join(REPO, "pi_mesh_plugin"), quiet=1)
    ctx = Ctx(scratch, quick=args.quick)
    info = machine(scratch)
    info["disk_at_start"] = disk_probe(os.path.join(scratch, "probe-start"))
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"pi-mesh benchmarks{' (QUICK: toy sizes)' if args.quick else ''} - {info.get('cpu', '?')}, "
          f"{info['nproc']} CPUs, Python {info['python']}, {info['filesystem']}; file create "
          f"{info['disk_at_start']['create_s'] * 1e6:.0f} us, fsync {info['disk_at_start']['fsync_s'] * 1e6:.0f} us",
          flush=True)
    rows = []
    t0 = time.perf_counter()
    try:
        for key, fn in ROWS.items():
            if only and key not in only:
                continue
            t = time.perf_counter()
            try:
                got = fn(ctx)
            except Exception as e:  # noqa: BLE001 - report the row as failed, keep going
                from .rows import FAIL, Row

                got = [Row(key, key, measured=f"crashed: {type(e).__name__}: {e}", status=FAIL)]
            for r in got:
                print(f"  {r.status:<6} {r.what}: {r.measured}" + (f" [{r.ratio:.2f}×]" if r.ratio else ""),
                      flush=True)
            print(f"  ({key}: {time.perf_counter() - t:.1f} s)", flush=True)
            rows.extend(got)
        growth = []
        if not args.no_growth and (not only or "growth" in only):
            print("growth table:", flush=True)
            growth = run_growth(ctx)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    wall = time.perf_counter() - t0
    if "disk_before_messages" in ctx.shared:
        info["disk_before_messages"] = ctx.shared["disk_before_messages"]
    result = {"started": started, "quick": args.quick, "machine": info, "wall_s": wall,
              "rows": [r.to_dict() for r in rows], "growth": growth}
    print()
    print(table(rows, growth))
    md_path = args.md or (os.path.join(build, "bench-quick.md") if args.quick else os.path.join(REPO, "BENCHMARKS.md"))
    json_path = args.json_path or os.path.join(build, "bench-quick.json" if args.quick else "bench.json")
    for p in (md_path, json_path):
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(markdown(result))
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(f"\nwrote {os.path.relpath(md_path)} and {os.path.relpath(json_path)} ({wall:.0f} s)")
    failed = [r for r in rows if r.status == "FAIL"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
