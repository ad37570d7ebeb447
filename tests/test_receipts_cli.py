"""Receipts and set-aside mail from the command line, in real processes: ``sent``, ``send --wait-shown``,
the ``message_status`` tool, ``inbox --orphaned`` / ``--adopt``, ``join`` and ``doctor``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import PI_MESH, REPO
from tests.test_cli import cli, one_line_error
from tests.test_cli import two  # noqa: F401 - the fixture, imported for pytest


def _env():
    return {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_sent_and_message_status_follow_a_message(two):  # noqa: F811 - the fixture
    m = json.loads(cli(two, "--json", "send", "bob", "take the tests", agent="alice").stdout)
    out = cli(two, "sent", agent="alice").stdout
    assert f"{m['id']} to bob: delivered" in out and "take the tests" in out
    cli(two, "tool", "read_inbox", "{}", agent="bob")
    status = cli(two, "tool", "message_status", json.dumps({"id": m["id"]}), agent="alice").stdout
    assert "shown via tool at" in status
    cli(two, "send", "alice", "done", "--reply-to", m["id"], agent="bob")
    rows = json.loads(cli(two, "--json", "sent", m["id"], agent="alice").stdout)
    assert rows[0]["state"] == "answered" and rows[0]["via"] == "tool"
    one_line_error(cli(two, "sent", "nosuchid", agent="alice", code=None), 2, "no message nosuchid")


def test_send_wait_shown_times_out_with_exit_3_and_succeeds_once_read(two):  # noqa: F811 - the fixture
    r = cli(two, "send", "bob", "are you there?", "--wait-shown", "0.5s", agent="alice", code=3)
    assert "not shown within" in r.stdout and "delivered" in r.stdout
    waiter = subprocess.Popen([*PI_MESH, "--root", two, "--agent", "alice", "--json", "send", "bob", "ping",
                               "--wait-shown", "60s"], cwd=two, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        # bob's inbox is read by a separate process, as a harness would; the waiter sees the receipt
        while True:
            got = cli(two, "--json", "inbox", agent="bob").stdout
            if "ping" in got:
                break
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    res = json.loads(out)
    assert res["shown"] is True and res["receipts"][0]["via"] == "cli"
    one_line_error(cli(two, "send", "bob", "x", "--wait-shown", "soon", agent="alice", code=None), 2, "--wait-shown")


def test_set_aside_mail_is_shown_by_join_inbox_doctor_and_adopted(project):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        cli(project, "join", "--name", "bob", "--harness", "pi", "--pid", str(owner.pid))
        cli(project, "join", "--name", "alice")
        cli(project, "send", "bob", "before the crash", agent="alice")
    finally:
        owner.kill()
        owner.wait()
    r = cli(project, "join", "--name", "bob", "--harness", "codex")
    assert "set aside" in r.stderr and "pi-mesh inbox --adopt" in r.stderr
    assert "no unread messages" in cli(project, "inbox", agent="bob").stdout
    assert "before the crash" in cli(project, "inbox", "--orphaned", agent="bob").stdout
    assert "set-aside-mail" in cli(project, "doctor").stdout
    assert "adopted 1 message" in cli(project, "inbox", "--adopt", "all", agent="bob").stdout
    assert "before the crash" in cli(project, "inbox", agent="bob").stdout
    assert "set-aside-mail" not in cli(project, "doctor").stdout
