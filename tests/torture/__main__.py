"""``python -m tests.torture [--full] [--only NAME ...] [--json PATH]``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from .common import REPO
from .scenarios import FULL, QUICK, concurrent_senders, killed_readers, killed_writers, reservation_exclusivity

SCENARIOS = ["concurrent_senders", "killed_writers", "killed_readers", "reservations", "model", "aliases", "names",
             "hand_placed_files", "stale_locks", "deep_nesting", "symlinks",
             "atomic_reserve"]


def machine(directory: str) -> dict:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        except OSError:
            return "?"

    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) // 1024} MiB"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "ram": mem, "kernel": platform.release(), "python": platform.python_version(),
            "fs_of_run_dir": sh("stat", "-f", "-c", "%T", directory),
            "mount_of_run_dir": sh("findmnt", "-n", "-o", "FSTYPE,OPTIONS", "-T", directory)}


def run(names: list[str], full: bool, base: str) -> dict:
    size = FULL if full else QUICK
    out: dict = {}
    for name in names:
        t = time.monotonic()
        if name == "concurrent_senders":
            f = concurrent_senders(base, size)
        elif name == "killed_writers":
            f = killed_writers(base, size)
        elif name == "killed_readers":
            f = killed_readers(base, size)
        elif name == "reservations":
            f = reservation_exclusivity(base, size)
        elif name == "atomic_reserve":
            from .atomic_reserve import atomic_reserve

            f = atomic_reserve(base, n=3000 if full else 120, kills=20 if full else 6)
        elif name == "model":
            from .model import run_model

            f = run_model(size.max_examples, size.step_count)
        else:
            from . import hostile, hostile_store

            f = getattr(hostile, name, None) or getattr(hostile_store, name)
            f = f(base)
        f.setdefault("wall_s", round(time.monotonic() - t, 2))
        out[name] = f
        print(("PASS " if f["ok"] else "FAIL ") + f["line"], flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.torture")
    ap.add_argument("--full", action="store_true", help="published sizes (default: the bounded make-test sizes)")
    ap.add_argument("--only", nargs="*", choices=SCENARIOS, default=None)
    ap.add_argument("--json", default=os.path.join(REPO, "build", "torture.json"))
    ap.add_argument("--dir", default=None, help="where to make the projects (default: a temp dir on /tmp)")
    ap.add_argument("--store", default=None, metavar="URL",
                    help="run against this store (postgresql://...; only concurrent_senders and reservations)")
    args = ap.parse_args(argv)
    if args.store:
        from . import common

        names = args.only or SCENARIOS
        if set(names) - {"concurrent_senders", "reservations"}:
            ap.error("--store runs only --only concurrent_senders reservations (the others inspect files)")
        common.STORE_URL.append(args.store)
    base = os.path.abspath(tempfile.mkdtemp(prefix="pi-mesh-torture-", dir=args.dir))
    t = time.monotonic()
    try:
        figures = run(args.only or SCENARIOS, args.full, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    doc = {"full": args.full, "store": args.store or "files", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(args.dir or tempfile.gettempdir()), "wall_s": round(time.monotonic() - t, 1),
           "scenarios": figures, "ok": all(f["ok"] for f in figures.values())}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{'ALL PASS' if doc['ok'] else 'FAILURES'} in {doc['wall_s']}s; figures in {args.json}")
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
