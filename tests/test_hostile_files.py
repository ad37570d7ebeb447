"""Files placed in .pi/mesh by hand or by a buggy agent, and locks left by killed processes."""

from __future__ import annotations

import os
import time

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


def test_claims_lists_as_live_exactly_what_check_enforces(tmp_path) -> None:
    """Random claim files placed by hand - spellings of a path, kinds, holders, sessions, expiry -
    against a fresh reader each time: the live listing and the enforcement never disagree."""
    import shutil
    import unicodedata

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pi_mesh_plugin.clock import iso, new_id
    from pi_mesh_plugin.mesh import Mesh
    from pi_mesh_plugin.store.files import fsio
    from tests.torture.common import new_project

    root = new_project(str(tmp_path), "proj")
    for i in range(4):
        os.makedirs(os.path.join(root, f"d{i}"))
        os.symlink(f"d{i}", os.path.join(root, f"lnk{i}"))
    alice = Mesh(root, "alice", cwd=root)
    alice.join(pid=0)
    session = alice.me().session
    rdir = os.path.join(root, ".pi", "mesh", "reservations")
    nfc = unicodedata.normalize("NFC", "fé")
    nfd = unicodedata.normalize("NFD", "fé")

    def spell(i: int, how: str) -> str:
        b = f"d{i}/{nfc}"
        return {"plain": b, "dot": "./" + b, "double": b.replace("/", "//"), "trailing": b + "/",
                "inner-dot": f"d{i}/./{nfc}", "absolute": root + "/" + b, "nfd": f"d{i}/{nfd}",
                "dotdot": f"d{i}/x/../{nfc}", "outside": "/elsewhere/" + b, "symlink": f"lnk{i}/{nfc}",
                "slashes": "//" + root.lstrip("/") + "//" + b + "//"}[how]

    claim = st.tuples(st.sampled_from(["plain", "dot", "double", "trailing", "inner-dot", "absolute", "nfd",
                                       "dotdot", "outside", "symlink", "slashes"]),
                      st.sampled_from(["file", "dir"]), st.sampled_from(["alice", "ghost"]),
                      st.sampled_from(["mine", None, "other"]), st.booleans())

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(claim, min_size=1, max_size=4))
    def prop(claims) -> None:
        shutil.rmtree(rdir)
        os.makedirs(rdir)
        t = time.time()
        for i, (how, kind, holder, sess, expired) in enumerate(claims):
            rid = new_id()
            rec = {"schema": 1, "id": rid, "holder": holder, "session": {"mine": session, "other": "s-other"}.get(
                sess) if sess else None, "path": spell(i, how), "kind": kind, "reason": "placed by hand",
                "created": iso(t - 100), "expires": iso(t - 10 if expired else t + 600)}
            with open(os.path.join(rdir, rid + ".json"), "wb") as f:
                f.write(fsio.dumps(rec))
        with Mesh(root, "intruder", cwd=root) as reader:
            listed = {r.id: r for r in reader.reservations(live_only=True)}
            enforced = {}
            for i in range(len(claims)):
                b = reader.check(f"d{i}/{nfc}")
                if b is not None:
                    enforced[b.reservation_id] = f"d{i}/{nfc}"
            assert set(listed) == set(enforced), (claims, listed, enforced)
            for rid, r in listed.items():
                assert r.path == enforced[rid]  # listed under the path that check enforces
            # what is neither listed nor enforced because it cannot be read one way is reported
            bad = {f["path"] for f in reader.doctor(fix=False) if f["kind"] == "bad-file"}
            for how, *_rest in claims:
                if how in ("dotdot", "outside", "symlink"):
                    assert any(p.startswith(".pi/mesh/reservations/") for p in bad), (claims, bad)

    prop()
    alice.close()
