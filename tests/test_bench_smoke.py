"""The benchmark harness runs end to end at toy sizes (no timing is asserted: figures at toy
sizes mean nothing; `make bench` publishes the real ones)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_quick_run_writes_the_table_and_the_json(tmp_path) -> None:
    md, js = tmp_path / "b.md", tmp_path / "b.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    cp = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "check,fresh,messages,inbox,growth",
                         "--scratch", str(tmp_path / "scratch"), "--md", str(md), "--json", str(js)],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in cp.stderr, cp.stderr
    result = json.loads(js.read_text())
    rows = {r["key"]: r for r in result["rows"]}
    for key in ("check_10", "check_100", "check_scaling", "fresh_state", "send_durable", "send_vs_maildir",
                "send_vs_sqlite", "broadcast_10", "read_inbox", "read_inbox_peek"):
        assert key in rows, f"row {key} missing: {sorted(rows)}"
        assert rows[key]["status"] in ("pass", "FAIL", "report"), rows[key]
    # the correctness row is not a timing: it must hold even at toy size
    assert rows["fresh_state"]["status"] == "pass", rows["fresh_state"]
    assert rows["fresh_state"]["data"]["stale_after_reserve"] == 0
    assert rows["send_durable"]["ratio"] > 0 and rows["broadcast_10"]["data"]["broadcast"]["n"] > 0
    # the disk's regime (file create and fsync) is on record next to the fsync-bound rows
    for when in ("disk_at_start", "disk_before_messages"):
        assert result["machine"][when]["create_s"] > 0 and result["machine"][when]["fsync_s"] > 0
    assert "right before the message rows" in md.read_text()
    assert [g["op"] for g in result["growth"]][:2] == ["check() unclaimed path", "reserve() + release()"]
    assert all(len(g["times_s"]) == 3 for g in result["growth"])
    text = md.read_text()
    assert "| row | baseline | target | measured | ratio | pass/fail |" in text and "QUICK RUN" in text
    for word in ("nproc", "kernel", "Python", "filesystem"):
        assert word in text
    assert "row" in cp.stdout and "pass/fail" in cp.stdout  # the table is printed too
    assert not os.path.exists(tmp_path / "scratch")  # scratch projects are removed


def test_bench_queue_rows_time_a_real_grant_on_both_stores(tmp_path) -> None:
    js = tmp_path / "q.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    cp = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "queue", "--scratch",
                         str(tmp_path / "scratch"), "--md", str(tmp_path / "q.md"), "--json", str(js)],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in cp.stderr, cp.stderr
    rows = {r["key"]: r for r in json.loads(js.read_text())["rows"]}
    assert rows["queue_grant"]["target"] == "median ≤ 20 ms"
    assert rows["queue_grant"]["data"]["n"] == 10, rows["queue_grant"]  # ten grants were timed, none lost
    pg = rows["queue_grant_pg"]
    if os.environ.get("PI_MESH_REQUIRE_PG") == "1" or pg["status"] != "n/a":
        assert pg["status"] == "report" and pg["data"]["n"] == 10, pg


def test_bench_sandbox_rows_time_a_wrapped_command_next_to_the_same_command(tmp_path) -> None:
    js = tmp_path / "s.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PI_MESH_")}
    cp = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "sandbox", "--scratch",
                         str(tmp_path / "scratch"), "--md", str(tmp_path / "s.md"), "--json", str(js)],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in cp.stderr, cp.stderr
    rows = {r["key"]: r for r in json.loads(js.read_text())["rows"]}
    row = rows["sandbox_cmd"]
    assert row["target"] == "≤ +10 ms median"
    if row["status"] != "n/a":  # bwrap can run here: both sides were timed, the same number of times
        assert row["data"]["wrapped"]["n"] == row["data"]["plain"]["n"] == 6, row
        assert rows["bash_guard_hook"]["data"]["guarded"]["n"] == 4, rows["bash_guard_hook"]
