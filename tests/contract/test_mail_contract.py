"""Receipts and never-hidden mail, one contract on both stores (files and PostgreSQL).

Receipts: delivered, read, shown (through which adapter, when: the first one wins), answered (a reply in its
thread), set aside.  Never hidden: a restart under the same name by the same harness in the same checkout keeps
the unread mail; anyone else's takeover sets it aside where ``orphaned`` shows it, until ``adopt``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pi_mesh_plugin.errors import InvalidName


@pytest.fixture
def mk(project, backend, mesh_factory):
    return lambda name, join=True, **kw: mesh_factory(name, join=join, cwd=kw.pop("cwd", project), **kw)


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield p
    if p.poll() is None:
        p.kill()
        p.wait()


def test_receipts_delivered_read_shown_answered(backend, mk):
    alice, bob, carol = mk("alice"), mk("bob"), mk("carol")
    m1 = alice.send("bob", "please review src/auth")
    m2 = alice.send("carol", "and you the tests")
    rows = {r["to"]: r for r in alice.receipts()}
    assert rows["bob"]["state"] == rows["carol"]["state"] == "delivered"
    assert rows["bob"]["delivered"] == m1.created and rows["bob"]["shown"] is None
    assert bob.receipts() == []  # one's own sent mail only

    bob.read_inbox(peek=True)
    assert alice.receipts([m1.id])[0]["state"] == "delivered"  # peeking is not reading
    assert bob.mark_read([m1.id], via="pi") == 1
    assert bob.mark_read([m1.id], via="tool") == 0  # already read: the first adapter's receipt stays
    r = alice.receipts([m1.id])[0]
    assert (r["state"], r["via"], r["read"]) == ("shown", "pi", True) and r["shown"] >= m1.created
    assert [m.text for m in carol.read_inbox()] == ["and you the tests"]  # read without an adapter named
    r2 = alice.receipts([m2.id])[0]
    assert (r2["state"], r2["shown"], r2["via"]) == ("read", None, None)

    reply = bob.send("alice", "looks good", reply_to=m1.id)
    r = alice.receipts([m1.id])[0]
    assert (r["state"], r["answer"], r["answered"]) == ("answered", reply.id, reply.created)
    assert r["via"] == "pi"  # answered does not hide shown
    assert [x["id"] for x in alice.receipts(limit=1)] == [m2.id]


def test_a_broadcast_has_a_receipt_per_recipient(backend, mk):
    alice, bob, _carol = mk("alice"), mk("bob"), mk("carol")
    sent = alice.broadcast("stand down")
    bob.read_inbox(via="claude-code")
    rows = {r["to"]: r for r in alice.receipts([sent[0].id])}
    assert set(rows) == {"bob", "carol"} and rows["bob"]["broadcast"]
    assert (rows["bob"]["state"], rows["bob"]["via"]) == ("shown", "claude-code")
    assert rows["carol"]["state"] == "delivered"


def test_via_must_be_a_name(backend, mk):
    alice, bob = mk("alice"), mk("bob")
    m = alice.send("bob", "x")
    with pytest.raises(InvalidName):
        bob.mark_read([m.id], via="../etc")
    assert alice.receipts([m.id])[0]["state"] == "delivered"


def test_a_restart_by_the_same_harness_in_the_same_checkout_keeps_the_mail(backend, mk, sleeper):
    old = mk("bob", join=False)
    old.join(harness="pi", pid=sleeper.pid)
    alice = mk("alice")
    m = alice.send("bob", "unread before the crash")
    sleeper.kill()
    sleeper.wait()
    new = mk("bob", join=False)
    new.join(harness="pi")
    assert any("1 unread message(s) are yours now" in n for n in new.notices), new.notices
    assert [x.id for x in new.read_inbox(via="pi")] == [m.id]
    assert new.orphaned() == []
    assert alice.receipts([m.id])[0]["state"] == "shown"


def test_another_harness_taking_the_name_sees_the_mail_set_aside_and_adopts_it(backend, mk, sleeper):
    old = mk("bob", join=False)
    old.join(harness="pi", pid=sleeper.pid)
    alice = mk("alice")
    m = alice.send("bob", "for the old bob")
    sleeper.kill()
    sleeper.wait()
    new = mk("bob", join=False)
    new.join(harness="claude-code")
    assert any("set aside" in n and "--adopt" in n for n in new.notices), new.notices
    assert new.read_inbox() == []
    assert [(s, x.id) for s, x in new.orphaned()] == [(old.session, m.id)]
    assert alice.receipts([m.id])[0]["state"] == "set aside"
    assert new.adopt() == 1
    assert new.orphaned() == [] and new.adopt() == 0
    assert [x.text for x in new.read_inbox(via="tool")] == ["for the old bob"]
    assert alice.receipts([m.id])[0]["state"] == "shown"


def test_mail_set_aside_by_an_earlier_takeover_is_named_at_the_next_join(backend, mk, sleeper):
    old = mk("bob", join=False)
    old.join(harness="pi", pid=sleeper.pid)
    mk("alice").send("bob", "one")
    sleeper.kill()
    sleeper.wait()
    mid = mk("bob", join=False)
    mid.join(harness="codex")
    mid.leave()
    again = mk("bob", join=False)
    again.join(harness="gemini")
    assert any("earlier sessions of bob" in n for n in again.notices), again.notices
    assert again.adopt([old.session]) == 1
