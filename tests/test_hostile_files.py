"""Files placed in .pi/mesh by hand or by a buggy agent, and locks left by killed processes."""

from __future__ import annotations

from tests.torture.hostile import hand_placed_files, stale_locks


def test_hand_placed_files_are_quarantined_and_reported(tmp_path) -> None:
    f = hand_placed_files(str(tmp_path))
    print(f["line"])
    assert f["crashed"] is None
    assert f["valid_delivered"] == f["valid_sent"]      # no message lost
    assert f["doctor_unreported"] == []                 # doctor reports each placed file
    assert f["quarantined_in_bad"] >= 7                 # set aside, never deleted
    assert f["reader_warnings"] >= 7
    assert f["real_claim_kept"] and "bob" in f["agents_listed"]
    assert f["bad_files_after_fix"] == 0
    if f["unreadable"]["tested"]:                       # needs root to drop to uid 65534
        assert f["unreadable"]["quarantined"] and f["unreadable"]["doctor_reported"]
    assert f["ok"]


def test_stale_locks_do_not_wedge(tmp_path) -> None:
    f = stale_locks(str(tmp_path))
    print(f["line"])
    assert f["ok"], f


def test_deeply_nested_json_crashes_no_reader_server_or_hook(tmp_path) -> None:
    from tests.torture.hostile_store import deep_nesting

    f = deep_nesting(str(tmp_path))
    print(f["line"])
    assert f["crashed"] == {}, f["crashed"]
    assert f["failed"] == [], {k: f["exit_codes"][k] for k in f["failed"]}
    assert f["doctor_missed"] == []
    assert f["sidecar_answered_after"] and f["mcp_answered_after"]
    assert f["real_claim_still_enforced"] and f["earlier_mail_delivered"]
    assert f["ok"], f
