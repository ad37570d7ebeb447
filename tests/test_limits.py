"""Governors on sending, with real ``pi-mesh`` processes: rate limits per sender and per recipient, the same
text again, the broadcast cap, a ping-pong loop.  A refused send is one line naming the rule and when to retry,
and delivers nothing; every send that was accepted is delivered (counted like a queue checker)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pi_mesh_plugin.clock import parse_iso
from tests.conftest import PI_MESH, REPO
from tests.test_cli import cli, one_line_error

pytestmark = pytest.mark.usefixtures("governed")


def _config(project: str, **rules: str) -> None:
    lines = ["[defaults]"] + [f'{k} = "{v}"' for k, v in rules.items()]
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write("\n".join(lines) + "\n")


@pytest.fixture
def three(project):
    for n in ("alice", "bob", "carol"):
        cli(project, "join", "--name", n)
    return project


def _inbox(project: str, name: str) -> list[dict]:
    return json.loads(cli(project, "--json", "inbox", "--all", "--peek", agent=name).stdout)


def test_a_sender_over_its_rate_is_refused_in_one_line_and_nothing_is_delivered(three):
    _config(three, send_limit="3/1m", receive_limit="off", repeat_window="off", ping_pong_limit="off")
    for i in range(3):
        cli(three, "send", "bob" if i % 2 else "carol", f"status {i}", agent="alice")
    line = one_line_error(cli(three, "send", "bob", "status 3", agent="alice", code=None), 3,
                          "not sent", "alice sent 3 messages in the last 60s", "send_limit", "retry after")
    retry = line.split("retry after ")[1].split(" ")[0]
    assert parse_iso(retry) > parse_iso(_inbox(three, "carol")[0]["created"])  # the oldest one's time + 1m
    assert [m["text"] for m in _inbox(three, "bob")] == ["status 1"]
    cli(three, "send", "alice", "bob is not limited by alice's sends", agent="bob")


def test_a_recipient_flooded_by_several_senders_is_protected(three):
    _config(three, receive_limit="2/1m", ping_pong_limit="off")
    cli(three, "send", "bob", "from alice", agent="alice")
    cli(three, "send", "bob", "from carol", agent="carol")
    one_line_error(cli(three, "send", "bob", "alice again", agent="alice", code=None), 3,
                   "bob was sent 2 messages in the last 60s", "receive_limit")
    assert len(_inbox(three, "bob")) == 2
    cli(three, "send", "carol", "carol still gets mail", agent="alice")


def test_the_same_text_again_is_suppressed_and_the_error_never_echoes_it_all(three):
    big = "please rebase onto main " * 2000  # 48 kB
    cli(three, "send", "bob", big, agent="alice")
    r = cli(three, "send", "bob", big, agent="alice", code=None)
    line = one_line_error(r, 3, "same text", "repeat_window", "retry after", "change the text")
    assert len(line) < 500
    cli(three, "send", "carol", big, agent="alice")  # another recipient: not a repeat
    cli(three, "send", "bob", big + " (again, now urgent)", agent="alice")
    assert len(_inbox(three, "bob")) == 2


def test_broadcasts_are_capped(three):
    _config(three, broadcast_limit="1/10m")
    cli(three, "broadcast", "stand down", agent="alice")
    one_line_error(cli(three, "broadcast", "stand up", agent="alice", code=None), 3,
                   "alice sent 1 broadcasts in the last 10m", "broadcast_limit")
    assert [m["text"] for m in _inbox(three, "bob")] == ["stand down"]


def test_a_ping_pong_loop_between_two_agents_is_stopped(three):
    _config(three, ping_pong_limit="4/5m")
    for i in range(4):
        sender, to = ("alice", "bob") if i % 2 == 0 else ("bob", "alice")
        cli(three, "send", to, f"reply number {i}", agent=sender)
    line = one_line_error(cli(three, "send", "bob", "reply number 4", agent="alice", code=None), 3,
                          "alice and bob exchanged 4 messages", "looks like a loop", "ping_pong_limit")
    assert "retry after" in line
    cli(three, "send", "carol", "carol is not part of the loop", agent="alice")


def test_one_way_chatter_is_no_loop(three):
    _config(three, ping_pong_limit="3/5m")
    for i in range(5):
        cli(three, "send", "bob", f"progress {i}", agent="alice")
    assert len(_inbox(three, "bob")) == 5


def test_concurrent_senders_every_accepted_message_is_delivered(three):
    _config(three, send_limit="5/1m", receive_limit="off")
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([*PI_MESH, "--root", three, "--agent", "alice", "--json", "send", "bob", f"m{i}"],
                              cwd=three, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(12)]
    accepted, refused = set(), 0
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert "Traceback" not in err
        if p.returncode == 0:
            accepted.add(json.loads(out)["id"])
        else:
            assert p.returncode == 3 and "send_limit" in err and len(err.strip().splitlines()) == 1, err
            refused += 1
    delivered = [m["id"] for m in _inbox(three, "bob")]
    assert set(delivered) == accepted and len(delivered) == len(accepted)  # none lost, none duplicated
    assert refused >= 1 and len(accepted) >= 5  # the limit held back the flood (racing sends may share a slot)


def test_the_operator_is_never_governed(mesh_factory):
    human = mesh_factory("human", join=False)
    human.join(harness="operator")
    mesh_factory("bob")
    for _ in range(3):
        human.send("bob", "the same reminder")  # no repeat_window for the person at the keyboard


def test_defaults_hold_back_a_flood(mesh_factory):
    from pi_mesh_plugin.errors import SendRefused

    alice, _ = mesh_factory("alice"), mesh_factory("bob")
    for i in range(20):
        alice.send("bob", f"m{i}")
    with pytest.raises(SendRefused) as ei:
        alice.send("bob", "m20")
    assert ei.value.rule == "send_limit" and parse_iso(ei.value.retry_after) > 0


@pytest.mark.parametrize("value", ["lots", "0/1m", "5/soon", "5"])
def test_a_bad_rule_in_hooks_toml_is_one_line_naming_the_key(three, value):
    _config(three, send_limit=value)
    one_line_error(cli(three, "send", "bob", "x", agent="alice", code=None), 2, "send_limit")
