"""The torture suite at a bounded size (the full run: ``python -m tests.torture --full``).

Every scenario runs real OS processes against the file store; each asserts the scenario's
requirements (0 lost, 0 duplicated, 0 corrupt, 0 overlapping holds, ...).  The analysis helpers are
checked on bad data first, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.torture.common import REPO, scan_store
from tests.torture.scenarios import (
    QUICK,
    _overlaps,
    check_text,
    concurrent_senders,
    killed_readers,
    killed_writers,
    reservation_exclusivity,
)

pytestmark = pytest.mark.slow


def _show(f: dict) -> None:
    print(f["line"])
    assert f["ok"], json.dumps({k: v for k, v in f.items() if k != "line"}, indent=1, default=str)[:4000]


def test_overlap_checker_finds_overlaps() -> None:
    assert _overlaps([("w0", "src/", "", 1.0, 2.0), ("w1", "src/a.py", "", 1.5, 2.5)])
    assert _overlaps([("w0", "src/a.py", "", 1.0, 2.0), ("w1", "src/a.py", "", 1.9, 3.0)])
    assert not _overlaps([("w0", "src/", "", 1.0, 2.0), ("w1", "src/a.py", "", 2.0, 3.0)])
    assert not _overlaps([("w0", "src/a.py", "", 1.0, 2.0), ("w1", "src/b.py", "", 1.0, 2.0)])
    assert not _overlaps([("w0", "src/", "", 1.0, 2.0), ("w0", "src/a.py", "", 1.5, 2.5)])  # same owner


def test_checkers_find_corrupt_and_partial_messages(tmp_path, mesh_factory) -> None:
    from tests.torture.worker import body_hash

    assert check_text(json.dumps({"w": "w0", "seq": 1, "h": body_hash("ab"), "body": "ab"})) == ("w0", 1)
    assert check_text(json.dumps({"w": "w0", "seq": 1, "h": body_hash("ab"), "body": "ac"})) is None
    assert check_text('{"w": "w0", "seq"') is None
    a, b = mesh_factory("alice"), mesh_factory("bob")
    msg = a.send("bob", "hello")
    root = a.root
    new = os.path.join(root, ".pi", "mesh", "inbox", "bob", "new")
    with open(os.path.join(new, msg.id + ".json"), "rb") as f:
        data = f.read()
    with open(os.path.join(new, "1234567890123456-aaaaaaaaaa.json"), "wb") as f:
        f.write(data[:30])
    scan = scan_store(root)
    assert msg.id in scan["messages"] and len(scan["invalid"]) == 1
    b.close()


def test_concurrent_senders(tmp_path) -> None:
    _show(concurrent_senders(str(tmp_path), QUICK))


def test_killed_writers_and_crash_points(tmp_path) -> None:
    _show(killed_writers(str(tmp_path), QUICK))


def test_killed_readers(tmp_path) -> None:
    _show(killed_readers(str(tmp_path), QUICK))


def test_reservation_exclusivity(tmp_path) -> None:
    _show(reservation_exclusivity(str(tmp_path), QUICK))


def test_model_based() -> None:
    from tests.torture.model import run_model

    _show(run_model(QUICK.max_examples, QUICK.step_count))


def test_runner_writes_figures(tmp_path) -> None:
    out = tmp_path / "t.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    r = subprocess.run([sys.executable, "-m", "tests.torture", "--only", "names", "stale_locks", "--json", str(out),
                        "--dir", str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("PASS names:") and lines[1].startswith("PASS stale locks:"), r.stdout
    doc = json.loads(out.read_text())
    assert doc["ok"] and doc["full"] is False and set(doc["scenarios"]) == {"names", "stale_locks"}
    assert doc["machine"]["nproc"] == os.cpu_count()


@pytest.mark.pg
def test_senders_and_reservations_on_postgresql(tmp_path, pg_url) -> None:
    """The store-agnostic scenarios against the PostgreSQL store (every worker's hooks.toml names it)."""
    from tests.torture import common

    common.STORE_URL.append(pg_url)
    try:
        _show(concurrent_senders(str(tmp_path), QUICK))
        _show(reservation_exclusivity(str(tmp_path), QUICK))
    finally:
        common.STORE_URL.clear()
    assert not (tmp_path / "s1" / ".pi" / "mesh" / "inbox").exists()  # nothing went to the file store
