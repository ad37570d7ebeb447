"""Helpers shared by the torture scenarios: projects, worker processes, store scans."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


STORE_URL: list[str] = []  # set by ``--store URL``: projects get ``[store] url`` in their hooks.toml


def new_project(base: str, name: str) -> str:
    root = os.path.join(base, name)
    if STORE_URL:
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "hooks.toml"), "w") as fh:
            fh.write(f'[store]\nurl = "{STORE_URL[0]}"\n')
    os.makedirs(os.path.join(root, "src", "sub"), exist_ok=True)
    for f in ("src/a.py", "src/b.py", "src/sub/c.py"):
        with open(os.path.join(root, f), "w") as fh:
            fh.write("x = 1\n")
    os.makedirs(os.path.join(root, ".git"), exist_ok=True)  # marks the project root
    return root


def worker_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PI_MESH_LIMITS"] = "off"  # the floods here are on purpose: the governors would refuse them
    return env


def spawn(role: str, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, **args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.torture.worker", role, json.dumps(args)], cwd=REPO,
                            env=worker_env(), stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, text=True)


def wait_line(proc: subprocess.Popen, expect: str, timeout: float = 30) -> None:
    """Wait until ``proc`` prints ``expect`` on stdout (needs ``stdout=PIPE``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() == expect:
            return
        if not line and proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode}: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    raise TimeoutError(f"worker did not print {expect}")


def kill9(proc: subprocess.Popen) -> float:
    """SIGKILL ``proc``; returns ``time.monotonic()`` taken just before the signal was sent."""
    t = time.monotonic()
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if proc.stderr:
        proc.stderr.close()
    if proc.stdout:
        proc.stdout.close()
    return t


def finish(proc: subprocess.Popen, timeout: float = 600) -> None:
    """Wait for a worker that must end by itself; raise with its stderr if it failed."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill9(proc)
        raise RuntimeError("worker timed out") from None
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}): {(err or '')[-2000:]}")


def read_lines(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(" ", 3) for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


def scan_store(root: str) -> dict:
    """Every message file in every inbox, checked: ``{"messages": {id: rec}, "where": {id: sub}, "invalid": [...],
    "tmp": [...], "atomic_tmp": [...]}``.  ``invalid`` lists files in new/ or cur/ that are not a complete, valid
    message (a partial write would land here)."""
    from pi_mesh_plugin.schema import validate
    from pi_mesh_plugin.store.files import fsio

    mesh = os.path.join(root, ".pi", "mesh")
    out: dict = {"messages": {}, "where": {}, "invalid": [], "tmp": [], "atomic_tmp": []}
    ibox = os.path.join(mesh, "inbox")
    for name in sorted(os.listdir(ibox)) if os.path.isdir(ibox) else []:
        for sub in ("new", "cur"):
            d = os.path.join(ibox, name, sub)
            for fn in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                full = os.path.join(d, fn)
                try:
                    rec = validate("message", fsio.read_json(full), full)
                    if rec["id"] + ".json" != fn:
                        raise ValueError("misnamed")
                    out["messages"][rec["id"]] = rec
                    out["where"][rec["id"]] = sub
                except (ValueError, OSError) as e:
                    out["invalid"].append(f"{full}: {e}")
        tmpd = os.path.join(ibox, name, "tmp")
        out["tmp"] += [os.path.join(tmpd, f) for f in os.listdir(tmpd)] if os.path.isdir(tmpd) else []
    for sub in ("agents", "reservations", "index"):
        d = os.path.join(mesh, sub)
        out["atomic_tmp"] += [os.path.join(d, f) for f in os.listdir(d) if f.startswith(".tmp-")] \
            if os.path.isdir(d) else []
    return out


@contextlib.contextmanager
def env(**values: str | None):
    """Set (or, with ``None``, unset) environment variables for the block, then put them back."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
