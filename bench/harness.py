"""A small ``perf_counter`` harness: warm-up, repeats, median and p99, paired baselines.

These machines are shared and noisy, so every row that has a baseline
measures it *in the same run, interleaved with the subject* (A, B, A, B …),
and the table quotes medians and ratios rather than a lone absolute time.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

perf = time.perf_counter


class Stats:
    """Per-operation times in seconds."""

    __slots__ = ("times",)

    def __init__(self, times: list[float]) -> None:
        if not times:
            raise ValueError("no samples")
        self.times = sorted(times)

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p99(self) -> float:
        t = self.times
        return t[min(len(t) - 1, int(round(0.99 * (len(t) - 1))))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    def to_dict(self) -> dict:
        return {"n": self.n, "median_s": self.median, "p99_s": self.p99, "mean_s": self.mean,
                "min_s": self.times[0], "max_s": self.times[-1]}


def sample(fn: Callable[[], object], repeats: int, warmup: int = 0, setup: Callable[[], object] | None = None) -> Stats:
    """Time ``fn`` once per repeat (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        if setup:
            setup()
        fn()
    gc.collect()
    out = []
    for _ in range(repeats):
        if setup:
            setup()
        t0 = perf()
        fn()
        out.append(perf() - t0)
    return Stats(out)


def sample_batched(fn: Callable[[], object], repeats: int, batch: int, warmup: int = 0) -> Stats:
    """For very fast operations: time batches of ``batch`` calls, report per-call figures."""
    for _ in range(warmup):
        fn()
    gc.collect()
    out = []
    rng = range(batch)
    for _ in range(repeats):
        t0 = perf()
        for _ in rng:
            fn()
        out.append((perf() - t0) / batch)
    return Stats(out)


def paired(a: Callable[[], object], b: Callable[[], object], rounds: int, per_round: int = 1,
           warmup: int = 2) -> tuple[Stats, Stats]:
    """Interleave ``a`` and ``b`` (ABBA order per round) so drift and noise hit both alike."""
    for _ in range(warmup):
        a()
        b()
    gc.collect()
    ta: list[float] = []
    tb: list[float] = []
    for r in range(rounds):
        order = ((a, ta), (b, tb)) if r % 2 == 0 else ((b, tb), (a, ta))
        for fn, acc in order:
            for _ in range(per_round):
                t0 = perf()
                fn()
                acc.append(perf() - t0)
    return Stats(ta), Stats(tb)


def run_process(argv: list[str], input: bytes | None = None, cwd: str | None = None,
                env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of one whole process (spawn to exit)."""
    t0 = perf()
    cp = subprocess.run(argv, input=input, cwd=cwd, env=env, capture_output=True)
    return perf() - t0, cp


# -- formatting ------------------------------------------------------------
def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}×"


# -- the machine -----------------------------------------------------------
def disk_probe(directory: str, n: int = 30, size: int = 1400) -> dict:
    """Medians of creating a new file and of one small write + fsync in ``directory`` (seconds).

    Both move every fsync-bound ratio, and both drift on a virtual machine.  Creating a file is the
    surprising one: on ext4 without a journal (this machine's root file system) a new inode is found
    by skipping inodes deleted in the last ~30 s whose table blocks are not written back yet, so for
    half a minute after a large deletion (a test run's temporary trees) a create can cost 0.5 ms of
    kernel time instead of 30 us.  The report quotes this probe at the start and right before the
    message rows, so a reader can see which regime a figure was taken in.
    """
    os.makedirs(directory, exist_ok=True)
    creates, fsyncs = [], []
    for i in range(n):
        path = os.path.join(directory, f"probe-{i}")
        t0 = perf()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        t1 = perf()
        os.write(fd, b"x" * size)
        t2 = perf()
        os.fsync(fd)
        t3 = perf()
        os.close(fd)
        creates.append(t1 - t0)
        fsyncs.append(t3 - t2)
    return {"create_s": Stats(creates).median, "fsync_s": Stats(fsyncs).median}


def machine(repo: str) -> dict:
    info: dict = {"nproc": os.cpu_count(), "kernel": platform.release(), "python": sys.version.split()[0],
                  "implementation": platform.python_implementation(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["ram_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
                    break
    except OSError:
        pass
    info["filesystem"] = filesystem_of(repo)
    try:
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def filesystem_of(path: str) -> str:
    """``<type> on <device> (<mount point>)`` for the mount holding ``path``."""
    path = os.path.realpath(path)
    best = ("", "?", "?")
    try:
        with open("/proc/self/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                dev, mnt, fstype = parts[0], parts[1].replace("\\040", " "), parts[2]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                    best = (mnt, fstype, dev)
    except OSError:
        return "unknown"
    mnt, fstype, dev = best
    return f"{fstype}{_journal(fstype, dev)} on {dev} (mounted at {mnt})"


def _journal(fstype: str, dev: str) -> str:
    """`` without a journal`` for an ext4 file system that has none (it changes what create and fsync cost)."""
    name = os.path.basename(dev)
    if fstype != "ext4" or not os.path.isdir(f"/proc/fs/ext4/{name}"):
        return ""
    try:
        journals = os.listdir("/proc/fs/jbd2")
    except OSError:
        journals = []
    return "" if any(j.startswith(name + "-") for j in journals) else " without a journal"
