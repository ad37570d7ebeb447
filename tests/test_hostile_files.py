"""Files placed in .pi/mesh by hand or by a buggy agent, and locks left by killed processes."""

from __future__ import annotations

import os

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


def test_symlinks_in_the_mesh_are_refused_never_followed(tmp_path) -> None:
    from tests.torture.hostile_store import symlinks

    f = symlinks(str(tmp_path))
    print(f["line"])
    for c in f["cases"]:
        assert c["crashes"] == {}, c
        assert c["written_outside"] == [] and c["written_outside_after_fix"] == [], c
        assert c["refusals_not_naming_the_link"] == {}, c
        assert c["refused"] or c["link_replaced"], c
        assert c["doctor_reported"] or c["link_replaced"], c
        if c["entry"] not in (".pi", ".pi/mesh"):
            assert c["fixed_by_doctor"], c
    assert f["ok"]


def test_a_symlinked_feed_is_refused_in_one_line_by_the_cli(tmp_path) -> None:
    from tests.torture.common import new_project
    from tests.torture.hostile_store import cli

    root = new_project(str(tmp_path), "proj")
    assert cli(root, "alice", "join", "--pid", "0")[0] == 0
    assert cli(root, "bob", "join", "--pid", "0")[0] == 0
    feed = os.path.join(root, ".pi", "mesh", "feed.jsonl")
    secret = tmp_path / "somefile"
    secret.write_text("mine\n")
    os.unlink(feed)
    os.symlink(secret, feed)
    rc, out = cli(root, "alice", "send", "bob", "hello")
    assert rc != 0 and out.count("\n") == 1 and feed in out and "symlink" in out, out
    assert secret.read_text() == "mine\n"  # nothing appended to the link's target
    rc, out = cli(root, "alice", "doctor")
    assert "symlink" in out and "repair" in out and "feed.jsonl" in out, out
    assert cli(root, "alice", "doctor", "--fix")[0] == 0
    rc, out = cli(root, "alice", "send", "bob", "hello")
    assert rc == 0, out
    assert secret.read_text() == "mine\n" and not os.path.islink(feed)
