"""Every ``pi-mesh`` command in a real process: exit codes 0/1/2/3, one-line errors, --json output."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_cli


def cli(project: str, *args: str, agent: str | None = None, input: str | None = None, env: dict | None = None,
        code: int | None = 0):
    pre = ["--root", project] + (["--agent", agent] if agent else [])
    r = run_cli(*pre, *args, cwd=project, input=input, env=env)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    if code is not None:
        assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
    return r


def one_line_error(r, code: int, *words: str) -> str:
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pi-mesh: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def js(r):
    return json.loads(r.stdout)


@pytest.fixture
def two(project):
    cli(project, "join", "--name", "alice", "--harness", "pi", "--model", "m1")
    cli(project, "join", "--name", "bob")
    return project


def test_join_agents_leave(project):
    r = cli(project, "join", "--name", "alice", "--harness", "pi", "--status", "starting")
    assert "joined as alice" in r.stdout and f"owner pid {os.getpid()}" in r.stdout  # the caller owns it
    r = cli(project, "--json", "join", "--name", "bob", "--pid", "0")
    assert js(r)["name"] == "bob" and js(r)["pid"] == 0
    rows = js(cli(project, "--json", "agents"))
    assert {a["name"]: (a["live"], a["harness"]) for a in rows} == {"alice": (True, "pi"), "bob": (True, None)}
    text = cli(project, "agents").stdout
    assert "alice" in text and "live" in text and "status: starting" in text
    r = cli(project, "heartbeat", "--status", "busy", agent="bob")
    assert "bob seen" in r.stdout
    assert js(cli(project, "--json", "leave", agent="bob")) == {"left": True}
    assert js(cli(project, "--json", "leave", agent="bob")) == {"left": False}
    assert [a["name"] for a in js(cli(project, "--json", "agents", "--live"))] == ["alice"]


def test_bad_names_are_usage_errors(project):
    for bad in ("../x", "a/b", "x" * 65):
        r = cli(project, "join", "--name", bad, code=None)
        one_line_error(r, 2, "invalid agent name")
    r = cli(project, "agents", agent="sp ace", code=None)
    one_line_error(r, 2, "invalid agent name")
    assert not os.path.exists(os.path.join(project, ".pi", "mesh", "agents")) or \
        os.listdir(os.path.join(project, ".pi", "mesh", "agents")) == []


def test_name_held_by_a_live_agent_is_refused_with_exit_3(two):
    r = cli(two, "join", "--name", "alice", "--pid", "1", code=None)
    one_line_error(r, 3, "alice", "held by a live agent")


def test_send_inbox_broadcast(two):
    r = cli(two, "--json", "send", "bob", "hello bob", "--urgent", agent="alice")
    sent = js(r)
    assert sent["to"] == "bob" and sent["urgent"] is True
    r = cli(two, "send", "alice", "re: hello", "--reply-to", sent["id"], agent="bob")
    assert r.stdout.startswith("sent ")
    cli(two, "send", "bob", "-", agent="alice", input="from stdin\nwith two lines")
    peek = js(cli(two, "--json", "inbox", "--peek", agent="bob"))
    assert [m["text"] for m in peek] == ["hello bob", "from stdin\nwith two lines"]
    text = cli(two, "inbox", agent="bob").stdout
    assert "hello bob" in text and "from alice" in text and "urgent" in text
    assert cli(two, "inbox", agent="bob").stdout.strip() == "no unread messages"
    assert len(js(cli(two, "--json", "inbox", "--all", agent="bob"))) == 2
    got = js(cli(two, "--json", "inbox", agent="alice"))
    assert got[0]["reply_to"] == sent["id"] and got[0]["thread"] == sent["id"]
    r = cli(two, "--json", "broadcast", "all hands", agent="alice")
    assert [m["to"] for m in js(r)] == ["bob"]


def test_message_errors(two):
    one_line_error(cli(two, "send", "carol", "hi", agent="alice", code=None), 1, "carol", "no agent named")
    one_line_error(cli(two, "send", "../bob", "hi", agent="alice", code=None), 2, "invalid recipient")
    one_line_error(cli(two, "send", "bob", "   ", agent="alice", code=None), 2, "empty")
    r = cli(two, "send", "bob", "-", agent="alice", input="x" * (64 * 1024 + 1), code=None)
    one_line_error(r, 2, "65537 characters", "limit is 65536")
    one_line_error(cli(two, "send", "bob", "hi", code=None), 2, "no agent name")
    one_line_error(cli(two, "send", "bob", "hi", "--reply-to", "../../x", agent="alice", code=None), 2, "message id")
    assert os.listdir(os.path.join(two, ".pi", "mesh", "inbox", "bob", "new")) == []


def test_reserve_check_claims_release(two):
    r = cli(two, "--json", "reserve", "src/auth/", "--reason", "auth refactor", "--ttl", "2h", agent="alice")
    [claim] = js(r)
    assert (claim["path"], claim["kind"], claim["holder"]) == ("src/auth", "dir", "alice")
    r = cli(two, "reserve", "README.md", "--reason", "docs", "--ttl", "90s", agent="alice")
    assert "reserved README.md until" in r.stdout
    # a blocked check exits 3 and names holder and reason
    r = cli(two, "check", "src/auth/login.py", agent="bob", code=3)
    assert "alice" in r.stdout and "auth refactor" in r.stdout and "BLOCKED" in r.stdout
    r = cli(two, "--json", "check", "src/auth/login.py", "--tool", "write", agent="bob", code=3)
    assert js(r)["blocked"] is True and js(r)["holder"] == "alice" and js(r)["tool"] == "write"
    r = cli(two, "--json", "check", "src/free.py", agent="bob")
    assert js(r) == {"blocked": False, "path": "src/free.py", "canonical": "src/free.py"}
    cli(two, "check", "src/auth/login.py", code=3)  # no agent at all: still checked against every claim
    cli(two, "check", "src/auth/login.py", agent="alice")  # the holder itself
    r = run_cli("--root", two, "--agent", "bob", "check", "login.py", cwd=os.path.join(two, "src", "auth"))
    assert r.returncode == 3  # relative to the caller's cwd
    # a conflicting reservation is refused with exit 3, naming the holder
    line = one_line_error(cli(two, "reserve", "src/", "--reason", "mine", agent="bob", code=None), 3,
                          "alice", "auth refactor", "Nothing was reserved")
    assert "src/auth/" in line
    rows = js(cli(two, "--json", "claims"))
    assert sorted(c["path"] for c in rows) == ["README.md", "src/auth"]
    assert "src/auth/" in cli(two, "claims").stdout
    r = cli(two, "--json", "release", "README.md", agent="alice")
    assert [c["path"] for c in js(r)] == ["README.md"]
    assert cli(two, "release", agent="alice").stdout.strip() == "released src/auth/"
    assert cli(two, "release", agent="alice").stdout.strip() == "nothing to release"
    cli(two, "check", "src/auth/login.py", agent="bob")


def test_bad_durations_are_usage_errors(two):
    for ttl in ("0", "-5m", "soon", "3650d"):
        one_line_error(cli(two, "reserve", "src/", "--reason", "r", "--ttl", ttl, agent="alice", code=None), 2,
                       "invalid duration")
    assert os.listdir(os.path.join(two, ".pi", "mesh", "reservations")) == []


def test_reserve_errors(two, tmp_path):
    one_line_error(cli(two, "reserve", str(tmp_path), "--reason", "r", agent="alice", code=None), 2,
                   "outside the project")
    one_line_error(cli(two, "reserve", "src/", "--reason", " ", agent="alice", code=None), 2, "reason")
    one_line_error(cli(two, "reserve", "src/", "--reason", "x" * 1001, agent="alice", code=None), 2, "limit is 1000")
    one_line_error(cli(two, "reserve", "src/", "--reason", "r", agent="nobody", code=None), 2, "join")
    one_line_error(cli(two, "reserve", "src/", agent="alice", code=None), 2, "--reason")
    one_line_error(cli(two, "check", "", agent="bob", code=None), 2, "invalid path")


def test_usage_errors(project, tmp_path):
    one_line_error(cli(project, "frobnicate", code=None), 2, "usage")
    one_line_error(cli(project, "send", code=None), 2, "usage")
    one_line_error(cli(project, "feed", "-n", "many", code=None), 2, "usage")
    r = run_cli("--root", str(tmp_path / "nope"), "agents", cwd=project)
    one_line_error(r, 2, "nope", "not a directory")
    r = run_cli("agents", cwd=project, env={"PI_MESH_ROOT": str(tmp_path / "nope")})
    one_line_error(r, 2, "PI_MESH_ROOT")
    r = run_cli("--version", cwd=project)
    assert r.returncode == 0 and "pi-mesh" in r.stdout


@pytest.mark.parametrize("text,words", [
    ("[defaults]\nguard = 'edit'\n", ["defaults.guard", "array"]),
    ("[agents.x]\nreservation_ttl = 'soon'\n", ["agents.x.reservation_ttl", "invalid duration"]),
])
def test_invalid_config_is_one_line_with_exit_2(project, text, words):
    path = os.path.join(project, "hooks.toml")
    with open(path, "w") as f:
        f.write(text)
    one_line_error(cli(project, "agents", code=None), 2, path, *words)
    other = os.path.join(project, "other.toml")
    with open(other, "w") as f:
        f.write(text)
    os.remove(path)
    one_line_error(cli(project, "--config", other, "agents", code=None), 2, other, *words)
    one_line_error(cli(project, "agents", env={"PI_MESH_CONFIG": other}, code=None), 2, other, *words)


def test_tools_and_tool(two):
    specs = js(cli(two, "--json", "tools", agent="bob"))
    assert {s["name"] for s in specs} == {"send_message", "read_inbox", "message_status", "reserve", "release", "list_agents"}
    assert all(s["parameters"]["type"] == "object" for s in specs)
    r = cli(two, "tool", "reserve", '{"paths": ["src/"], "reason": "via tool", "ttl": "30m"}', agent="bob")
    assert r.stdout.startswith("reserved src/ until")
    assert "bob" in cli(two, "tool", "list_agents", agent="alice").stdout
    one_line_error(cli(two, "tool", "reserve", '{"paths": []}', agent="bob", code=None), 2, "invalid arguments")
    one_line_error(cli(two, "tool", "reserve", "not json", agent="bob", code=None), 2, "JSON object")
    one_line_error(cli(two, "tool", "nope", agent="bob", code=None), 2, "no tool named")
    one_line_error(cli(two, "tool", "reserve", '{"paths": ["src/auth/"], "reason": "x"}', agent="alice", code=None),
                   3, "bob")


def test_denied_tool_via_cli_exits_3(two):
    with open(os.path.join(two, "hooks.toml"), "w") as f:
        f.write('[agents.bob]\ndeny = ["send_message"]\n')
    one_line_error(cli(two, "tool", "send_message", '{"to": "alice", "text": "x"}', agent="bob", code=None), 3,
                   "denied")


def test_feed_and_doctor(two):
    cli(two, "reserve", "src/", "--reason", "r", agent="alice")
    cli(two, "send", "alice", "hi", agent="bob")
    events = js(cli(two, "--json", "feed"))
    assert [e["event"] for e in events] == ["join", "join", "reserve", "message"]
    assert len(js(cli(two, "--json", "feed", "-n", "2"))) == 2
    assert "reserve" in cli(two, "feed").stdout
    assert cli(two, "doctor").stdout.strip() == "all good"
    with open(os.path.join(two, ".pi", "mesh", "inbox", "alice", "new", "junk.json"), "w") as f:
        f.write("{")
    found = js(cli(two, "--json", "doctor"))
    assert [(f["kind"], f["fixed"]) for f in found] == [("bad-file", False)]
    found = js(cli(two, "--json", "doctor", "--fix"))
    assert [(f["kind"], f["fixed"]) for f in found] == [("bad-file", True)]
    assert cli(two, "doctor").stdout.strip() == "all good"


def test_corrupt_inbox_file_is_a_warning_not_a_crash(two):
    with open(os.path.join(two, ".pi", "mesh", "inbox", "bob", "new", "0000000000000001-aaaaaaaaaa.json"), "w") as f:
        f.write("[1,")
    cli(two, "send", "bob", "good one", agent="alice")
    r = cli(two, "inbox", agent="bob")
    assert "good one" in r.stdout
    assert r.stderr.startswith("pi-mesh: warning: moved ") and "/bad/" in r.stderr


def test_demo_runs_and_shows_the_block(project):
    r = run_cli("demo", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = r.stdout
    assert "BLOCKED: edit of auth/login.py" in out
    assert "reserved by agent alice" in out and 'Reason: "refactoring login flow"' in out
    assert "edit allowed" in out and out.index("BLOCKED") < out.index("edit allowed")
    assert ".pi/mesh/inbox/alice/cur/" in out


def test_bad_join_and_heartbeat_fields_are_usage_errors(project):
    one_line_error(cli(project, "join", "--name", "z", "--model", "m" * 300, code=None), 2, "cannot join", "model")
    one_line_error(cli(project, "join", "--name", "z", "--pid", "-5", code=None), 2, "cannot join", "pid")
    assert not os.path.exists(os.path.join(project, ".pi", "mesh", "agents", "z.json"))
    cli(project, "join", "--name", "z")
    one_line_error(cli(project, "heartbeat", "--status", "s" * 600, agent="z", code=None), 2, "heartbeat", "status")



def raw(project: str, *args: str, agent: str | None = None, code: int = 0) -> str:
    """Like :func:`cli`, with stdout decoded the way Python decodes file names (bytes are passed through)."""
    import subprocess

    from tests.conftest import PI_MESH, REPO

    env = {**os.environ, "PYTHONPATH": REPO}
    pre = ["--root", project] + (["--agent", agent] if agent else [])
    r = subprocess.run([*PI_MESH, *pre, *args], cwd=project, env=env, capture_output=True, timeout=60)
    err = r.stderr.decode("utf-8", "surrogateescape")
    assert "Traceback" not in err and r.returncode == code, (args, r.returncode, err)
    return r.stdout.decode("utf-8", "surrogateescape")


def test_non_utf8_bytes_in_paths_text_and_reason(two):
    """Linux file names need not be UTF-8, and argv bytes reach Python as lone surrogates: they are stored
    (as JSON \\u escapes), claimed, blocked and read back - never an internal error."""
    name, reason, text = (os.fsdecode(b) for b in (b"src/f\xff.py", b"r\xfe", b"bad \xff byte"))
    [claim] = json.loads(raw(two, "--json", "reserve", name, "--reason", reason, agent="alice"))
    assert (claim["path"], claim["reason"]) == (name, reason)
    assert "alice" in raw(two, "check", name, agent="bob", code=3)
    raw(two, "send", "bob", text, agent="alice")
    assert [m["text"] for m in json.loads(raw(two, "--json", "inbox", agent="bob"))] == [text]
    assert json.loads(raw(two, "--json", "release", agent="alice"))[0]["path"] == name
    assert [e["event"] for e in json.loads(raw(two, "--json", "feed"))][-3:] == ["reserve", "message", "release"]
    assert raw(two, "doctor").strip() == "all good"


def test_feed_follow_prints_events_as_they_happen(two):
    import subprocess
    import time

    from tests.conftest import PI_MESH, REPO

    proc = subprocess.Popen([*PI_MESH, "--root", two, "feed", "--follow", "-n", "1"], cwd=two, text=True,
                            env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline()
        assert "join" in first and "bob" in first  # the last existing event
        time.sleep(0.3)  # let it settle into following
        cli(two, "send", "alice", "are you there?", agent="bob")
        line = proc.stdout.readline()
        assert "message" in line and "bob" in line and '"alice"' in line
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err


def test_check_gives_the_guards_answer_for_the_tool(two):
    """Reads are never blocked; a tool denied to the agent is blocked anywhere; guarded tools meet the claims."""
    cli(two, "reserve", "src/", "--reason", "r", agent="alice")
    with open(os.path.join(two, "hooks.toml"), "w") as f:
        f.write('[agents.bob]\ndeny = ["bash"]\nguard = ["edit", "write", "notebook_edit"]\n')
    assert cli(two, "check", "src/x.py", "--tool", "read", agent="bob").stdout.strip() == "src/x.py: free"
    assert "alice" in cli(two, "check", "src/x.py", "--tool", "notebook_edit", agent="bob", code=3).stdout
    r = cli(two, "check", "docs/free.md", "--tool", "bash", agent="bob", code=3)
    assert "denied" in r.stdout and "bob" in r.stdout
    cli(two, "check", "src/x.py", "--tool", "edit", agent="bob", code=3)


def test_global_options_may_follow_the_subcommand(project):
    from pi_mesh_plugin.cli import hoist_global_options

    assert hoist_global_options(["check", "a.py", "--agent", "bob", "--json"]) == [
        "--agent", "bob", "--json", "check", "a.py"]
    assert hoist_global_options(["--root", "r", "send", "x", "--", "--json"]) == ["--root", "r", "send", "x", "--",
                                                                                   "--json"]
    # install's subcommands have an --agent option of their own
    assert hoist_global_options(["install", "claude-code", "--agent", "a"]) == ["install", "claude-code", "--agent",
                                                                                "a"]
    r = run_cli("join", "--name", "alice", "--pid", "0", "--root", project)
    assert r.returncode == 0, r.stderr
    r = run_cli("reserve", "src/auth/", "--reason", "refactor", "--agent", "alice", "--root", project, cwd=project)
    assert r.returncode == 0, r.stderr
    r = run_cli("check", "src/auth/login.py", "--agent", "bob", "--root", project, "--json", cwd=project)
    assert r.returncode == 3 and '"holder": "alice"' in r.stdout, (r.returncode, r.stdout, r.stderr)
