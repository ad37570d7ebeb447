"""``pi-mesh top``: the Textual dashboard, driven headless with Textual's pilot.

Real file stores, real watchers (inotify), real processes for stale agents;
the screen is read back from Textual's SVG export.  ``tests/snapshots/top.svg``
is the kept snapshot: it is compared line by line after masking what varies
(digits, whitespace runs).  Regenerate it with ``PI_MESH_UPDATE_SNAPSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import time

import pytest

pytest.importorskip("textual")

from pi_mesh_plugin.dashboard import LiveAgent, MeshTop, operator_mesh, parse_compose, release_dead, snapshot
from pi_mesh_plugin.errors import UnknownAgent, UsageError

from .conftest import run_cli

SNAPSHOT = os.path.join(os.path.dirname(__file__), "snapshots", "top.svg")
SIZE = (120, 40)


def svg_lines(svg: str) -> list[str]:
    """The text of a Textual SVG screenshot, one string per terminal line."""
    rows: dict[int, dict[int, str]] = {}
    width = float(re.search(r'textLength="([\d.]+)"[^>]*>[^<]{1}</text>', svg).group(1))  # one cell
    for m in re.finditer(r"<text ([^>]*)>([^<]*)</text>", svg):
        attrs, body = m.group(1), html.unescape(m.group(2)).replace("\xa0", " ")
        line, x = re.search(r"-line-(\d+)\)", attrs), re.search(r'\bx="([\d.]+)"', attrs)
        if not line or not x:
            continue
        row = rows.setdefault(int(line.group(1)), {})
        col = round(float(x.group(1)) / width)
        for i, ch in enumerate(body):
            row[col + i] = ch
    return ["".join(r.get(i, " ") for i in range(max(r) + 1 if r else 0)).rstrip()
            for r in (rows.get(n, {}) for n in range(max(rows) + 1 if rows else 0))]


def screen(app) -> str:
    return "\n".join(svg_lines(app.export_screenshot()))


def normalise(lines: list[str]) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"\d+", "#", line)).strip() for line in lines]


def stale_agents(project: str, *specs: tuple[str, str, str]) -> None:
    """Agents ``(name, claimed path, reason)`` whose owner processes have exited, leaving their claims behind.

    All claim before any dies: a later claim by anyone sweeps claims of stale holders.
    """
    from pi_mesh_plugin.mesh import Mesh

    procs = []
    try:
        for name, claim, reason in specs:
            procs.append(subprocess.Popen(["sleep", "60"]))
            m = Mesh(project, name, cwd=project)
            m.join(pid=procs[-1].pid, harness="codex")
            m.reserve([claim], reason)
            m.close()
    finally:
        for p in procs:
            p.kill()
            p.wait()


async def until(pilot, cond, timeout: float = 15.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            app = pilot.app
            raise AssertionError(f"timed out waiting for {what}; result line: {app.last_result!r}; "
                                 f"watcher: {app.watcher.mode if app.watcher else None} "
                                 f"{app.watcher.errors if app.watcher else ''}\n{screen(app)}")
        await pilot.pause(0.03)


def run(coro) -> None:
    asyncio.run(coro)


@pytest.fixture
def team(project, mesh_factory, monkeypatch):  # -> dict of joined meshes
    monkeypatch.setenv("PI_MESH_HOSTNAME", "testhost")
    alice = mesh_factory("alice", join=False, cwd=project)
    alice.join(harness="pi", model="gpt-test", status="fixing the login flow")
    alice.reserve(["src/auth/"], "fixing login")
    bob = mesh_factory("bob", join=False, cwd=project)
    bob.join(harness="claude-code", model="sonnet")
    bob.reserve(["README.md"], "docs pass")
    stale_agents(project, ("carol", "src/legacy/", "porting legacy code"), ("erin", "src/erin.py", "erin's file"))
    return {"alice": alice, "bob": bob}


# -- the pure parts -------------------------------------------------------------

def test_parse_compose():
    assert parse_compose("@bob hello there") == ("send", "bob", "hello there")
    assert parse_compose("  @all  stand down ") == ("broadcast", "*", "stand down")
    assert parse_compose("/release-dead carol") == ("release-dead", "carol", "")
    assert parse_compose("/help") == ("help", "", "")
    for bad, why in [("hello", "start with @NAME"), ("@bob", "nothing to send to bob"), ("@ hi", "who to"),
                     ("/release-dead", "usage"), ("/release-dead a b", "usage"), ("/frobnicate", "unknown command"),
                     ("@bad/name hi", "invalid agent name"), ("", "nothing to send")]:
        with pytest.raises(UsageError, match=why):
            parse_compose(bad)


def test_release_dead_refuses_live_and_unknown(team):
    alice = team["alice"]
    with pytest.raises(LiveAgent, match="alice is live"):
        release_dead(alice, "alice")
    with pytest.raises(UnknownAgent):
        release_dead(alice, "nobody")
    assert "src/auth" in [r.path for r in alice.reservations()]
    gone = release_dead(alice, "carol")
    assert [r["path"] for r in gone] == ["src/legacy"]
    assert not [r for r in alice.store.reservations() if r["holder"] == "carol"]
    assert alice.feed()[-1]["event"] == "release-dead"


def test_release_dead_hands_the_claims_to_the_waiters_and_drops_the_dead_agents_place_in_line(project,
                                                                                             mesh_factory):
    from pi_mesh_plugin.mesh import Mesh

    alice = mesh_factory("alice")
    alice.reserve(["src/auth/"], "auth rewrite")
    owner = subprocess.Popen(["sleep", "60"])
    try:
        carol = Mesh(project, "carol", cwd=project)
        carol.join(pid=owner.pid, harness="codex")
        carol.reserve(["src/legacy/"], "porting legacy code")
        carol.reserve(["src/auth/"], "after alice", queue=True)
        dave = mesh_factory("dave")
        dave.reserve(["src/legacy/"], "next", queue=True)
        carol.close()
    finally:
        owner.kill()
        owner.wait()
    with pytest.raises(LiveAgent):
        release_dead(dave, "alice")
    gone = release_dead(dave, "carol")
    assert [r["path"] for r in gone] == ["src/legacy"]
    assert [(r.path, r.holder) for r in alice.reservations() if r.path == "src/legacy"] == [("src/legacy", "dave")]
    assert "now yours" in " ".join(m.text for m in dave.read_inbox())
    assert [t["agent"] for t in alice.waiting()] == []


def test_describe_feed_events():
    from pi_mesh_plugin.dashboard import describe

    ts = "2026-11-25T01:02:03.456789Z"
    lines = [describe({"ts": ts, "agent": "bob", **ev}).plain for ev in [
        {"event": "reserve", "paths": ["src/auth"], "reason": "login"},
        {"event": "refused", "paths": ["src/auth/x.py"], "holders": ["alice"]},
        {"event": "message", "to": "*", "recipients": 3, "urgent": True},
        {"event": "blocked", "tool": "bash", "path": "src/a.py", "holder": "alice"},
        {"event": "edit", "tool": "write", "paths": ["src/b.py"]},
        {"event": "test", "command": "pytest -q", "ok": False},
        {"event": "something-new", "x": 1},
    ]]
    assert lines[0].startswith("01:02:03 bob") and lines[0].endswith("reserve   src/auth - login")
    assert lines[1].endswith("src/auth/x.py (held by alice)")
    assert lines[2].endswith("-> * (3 recipients) URGENT")
    assert lines[3].endswith("bash src/a.py (held by alice)")
    assert lines[4].endswith("write src/b.py")
    assert lines[5].endswith("pytest -q  [FAILED]")
    assert lines[6].endswith("x=1")
    assert describe({"event": "leave"}).plain.split() == ["-", "leave"]


def test_snapshot_rows_carry_activity_and_claim_state(team):
    from pi_mesh_plugin.dashboard import snapshot

    alice = team["alice"]
    alice.heartbeat(activity={"last": "edit src/auth/login.py", "last_at": "2026-11-25T01:00:00.000000Z",
                              "files_touched": ["src/auth/login.py"], "edits": 3, "commits": 1, "test_runs": 0})
    snap = snapshot(alice)
    rows = {a["name"]: a for a in snap["agents"]}
    assert [a["name"] for a in snap["agents"]] == ["alice", "bob", "carol", "erin"]  # live first
    assert rows["alice"]["last"].startswith("edit src/auth/login.py (") and rows["alice"]["claims"] == 1
    assert rows["carol"]["state"] == "stale" and rows["carol"]["stale_claims"] == 1
    assert rows["bob"]["last"].startswith("seen ")
    states = {c["path"]: c["state"] for c in snap["claims"]}
    assert states == {"src/auth/": "live", "README.md": "live", "src/legacy/": "holder stale",
                      "src/erin.py": "holder stale"}


# -- the app ----------------------------------------------------------------------

def test_top_shows_agents_claims_feed_and_matches_snapshot(team, project):
    app = MeshTop(operator_mesh(project))

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(app.data["agents"]) == 5, what="agents listed")
            await until(pilot, lambda: "q Quit" in screen(app), what="the footer")
            text = screen(app)
            lines = text.splitlines()
            row = {n: next((ln for ln in lines if ln.split()[:1] == [n]), "") for n in ("alice", "bob", "carol")}
            assert "live" in row["alice"] and "pi" in row["alice"] and "gpt-test" in row["alice"]
            assert "fixing the login flow" in row["alice"]
            assert "stale" in row["carol"] and "codex" in row["carol"] and "+1 stale" in row["carol"]
            assert "claude-code" in row["bob"]
            assert re.search(r"alice\s+src/auth/\s+fixing login\s+\d+s\s+\d+m\s+live", text), text
            assert re.search(r"bob\s+README.md\s+docs pass", text)
            assert re.search(r"carol\s+src/legacy/\s+porting legacy code.*holder stale", text)
            assert "Agents: 3 live, 2 stale" in text and "Claims: 2 in force, 2 stale or expired" in text
            assert re.search(r"alice\s+reserve\s+src/auth - fixing login", text)  # the feed pane
            assert "q Quit" in text and "x Release stale claims" in text  # the footer
            assert "human as" not in text and "project as human" in text

            shots.append(app.export_screenshot())
            await pilot.press("q")
        assert app.return_code == 0

    shots: list[str] = []
    run(go())
    if os.environ.get("PI_MESH_UPDATE_SNAPSHOTS"):
        os.makedirs(os.path.dirname(SNAPSHOT), exist_ok=True)
        with open(SNAPSHOT, "w", encoding="utf-8") as f:
            f.write(shots[0])
    with open(SNAPSHOT, encoding="utf-8") as f:
        kept = f.read()
    assert normalise(svg_lines(shots[0])) == normalise(svg_lines(kept))
    for name in ("alice", "bob", "carol", "human", "src/auth/", "README.md", "src/legacy/"):
        assert name in kept
    assert team["alice"].store.get_agent("human") is None  # q: the operator left


def test_feed_and_tables_follow_another_agent(team, project, mesh_factory):
    app = MeshTop(operator_mesh(project), tick=60)  # a slow clock: updates must come from the watcher

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(app.data["agents"]) == 5, what="agents listed")
            assert app.watcher is not None and app.watcher.mode == "inotify"
            dave = mesh_factory("dave", join=False, cwd=project)
            dave.join(harness="gemini")
            dave.reserve(["src/api/"], "new endpoint")
            dave.send("alice", "taking src/api")
            await until(pilot, lambda: re.search(r"dave\s+reserve\s+src/api - new endpoint", screen(app)),
                        what="the feed pane to show dave's claim")
            text = screen(app)
            assert re.search(r"dave\s+live\s+gemini", text)
            assert re.search(r"dave\s+src/api/\s+new endpoint", text)
            assert re.search(r"dave\s+message\s+-> alice", text)
            assert re.search(r"^ alice .* 1\s+fixing the login flow", text, re.MULTILINE)  # alice: one unread now
            dave.leave()
            await until(pilot, lambda: not any(a["name"] == "dave" for a in app.data["agents"]),
                        what="dave's row to go")
            # another process acts (the CLI as bob): the dashboard follows it too
            r = run_cli("--agent", "bob", "release", "README.md", cwd=project, env={"PI_MESH_HOSTNAME": "testhost"})
            assert r.returncode == 0, r.stderr
            await until(pilot, lambda: re.search(r"bob\s+release\s+README.md", screen(app)),
                        what="bob's release (another process) in the feed")
            assert not any(c["path"] == "README.md" for c in app.data["claims"])
            assert "src/api/" not in "\n".join(screen(app).splitlines()[:20])

    run(go())


def test_compose_messages_an_agent_and_everyone(team, project):
    app = MeshTop(operator_mesh(project))
    alice, bob = team["alice"], team["bob"]

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(app.data["agents"]) == 5, what="agents listed")
            await pilot.press("c", *"@bob hello", "enter")
            await until(pilot, lambda: app.last_result.startswith("sent to bob"), what="the send")
            got = bob.read_inbox()
            assert [(m.sender, m.text) for m in got] == [("human", "hello")]
            assert app.query_one("#compose").value == ""

            # (pilot types about 15 keys a second: longer lines are set, then submitted with enter)
            await pilot.press("escape", "a")  # `a`: compose to everyone
            assert app.query_one("#compose").value == "@all "
            await pilot.press(*"stop", "enter")
            assert app.last_result.startswith("send to all 2 live agent(s) (alice, bob)?")  # confirm first
            assert alice.unread_count() == 0 and app.query_one("#compose").value == "@all stop"
            await pilot.press("enter")
            await until(pilot, lambda: "live agent(s):" in app.last_result, what="the broadcast")
            assert app.last_result == "sent to 2 live agent(s): alice, bob"  # carol and erin are stale
            assert [m.text for m in alice.read_inbox()] == ["stop"]
            assert [m.text for m in bob.read_inbox()] == ["stop"]

            await pilot.press(*"oops", "enter")
            assert app.last_result.startswith("error: start with @NAME")
            assert app.query_one("#compose").value == "oops"  # kept for fixing
            assert "error: start with @NAME" in screen(app)
            app.query_one("#compose").value = "@nobody hi"
            await pilot.press("enter")
            assert "nobody" in app.last_result and app.last_result.startswith("error:")

            # `m` on the selected agent (the first row: alice) prefills the compose line; `q` there is text
            await pilot.press("escape", "m")
            assert app.query_one("#compose").value == "@alice "
            await pilot.press(*"q?", "enter")
            await until(pilot, lambda: app.last_result.startswith("sent to alice"), what=f"the send to alice: {app.last_result} {app.query_one('#compose').value!r}")
            assert app.is_running
            assert [m.text for m in alice.read_inbox()] == ["q?"]

    run(go())


def test_snapshot_counts_mail_set_aside_for_a_name(project, mesh_factory):
    import subprocess
    import sys

    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old = mesh_factory("bob", join=False)
        old.join(harness="pi", pid=owner.pid)
        mesh_factory("alice").send("bob", "for the old bob")
    finally:
        owner.kill()
        owner.wait()
    mesh_factory("bob", join=False).join(harness="codex")
    rows = {r["name"]: r for r in snapshot(mesh_factory("observer"))["agents"]}
    assert (rows["bob"]["unread"], rows["bob"]["aside"]) == (0, 1)


def test_typing_before_the_compose_line_has_focus_sends_nothing(team, project):
    app = MeshTop(operator_mesh(project))
    alice, bob = team["alice"], team["bob"]

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(app.data["agents"]) == 5, what="agents listed")
            await pilot.press(*"lice hi", "enter")  # typed blind (`c` opens the compose line mid-word): nothing sent
            assert alice.unread_count() == bob.unread_count() == 0
            await pilot.press("escape", *"alice hi", "enter")  # `a` opens "@all ": the rest lands there, unconfirmed
            assert app.query_one("#compose").value == "@all lice hi"
            assert app.last_result.startswith("send to all") and alice.unread_count() == bob.unread_count() == 0
            await pilot.press("escape")
            assert app.last_result == "not sent"
            app.query_one("#compose").value = ""
            await pilot.press(*"@bob hi", "enter")  # `@` opens the compose line with the @ typed
            await until(pilot, lambda: app.last_result.startswith("sent to bob"), what="the send to bob")
            assert [m.text for m in bob.read_inbox()] == ["hi"] and alice.unread_count() == 0

    run(go())


def test_release_dead_from_the_compose_line_and_the_key(team, project):
    app = MeshTop(operator_mesh(project))
    alice = team["alice"]

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(app.data["agents"]) == 5, what="agents listed")
            await pilot.press("c", *"/release-dead alice", "enter")
            assert app.last_result.startswith("refused: alice is live")
            assert "refused: alice is live" in screen(app)
            assert "src/auth" in [r.path for r in alice.reservations()]

            app.query_one("#compose").value = "/release-dead carol"
            await pilot.press("enter")
            assert app.last_result == "released 1 claim(s) of carol: src/legacy"
            assert not [r for r in alice.store.reservations() if r["holder"] == "carol"]
            await until(pilot, lambda: re.search(r"human\s+release-dead\s+src/legacy \(of carol\)", screen(app)),
                        what="the feed to show the release")

            # the key: `x` on the selected agent - refused on a live one
            await pilot.press("escape")
            assert app.selected_agent()["name"] == "alice"
            await pilot.press("x")
            assert app.last_result.startswith("refused: alice is live")
            # in the claims table the keys act on the claim's holder: `x` on a stale holder's claim releases
            claims = app.query_one("#claims")
            claims.focus()
            claims.move_cursor(row=[c["path"] for c in app.data["claims"]].index("src/erin.py"))
            await pilot.pause()
            assert app.selected_agent(follow_focus=True)["name"] == "erin"
            await pilot.press("x")
            assert app.last_result == "released 1 claim(s) of erin: src/erin.py"
            claims.focus()
            claims.move_cursor(row=[c["path"] for c in app.data["claims"]].index("src/auth/"))
            await pilot.press("m")
            assert app.query_one("#compose").value == "@alice "
            await until(pilot, lambda: "src/erin.py" not in "\n".join(screen(app).splitlines()[:24]),
                        what="erin's claim to leave the table")

    run(go())


def test_mail_to_the_operator_shows_in_the_feed_pane(team, project):
    app = MeshTop(operator_mesh(project))

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(app.data["agents"]) == 5, what="agents listed")
            team["bob"].send("human", "done with README, releasing", urgent=True)
            await until(pilot, lambda: "mail from bob (urgent): done with README, releasing" in screen(app),
                        what="the operator's mail")
            assert app.mesh.unread_count() == 0  # shown = read

    run(go())


def test_top_cli_refuses_a_taken_operator_name_in_one_line(team, project):
    held = operator_mesh(project)  # a live `human` owned by this (test) process
    try:
        r = run_cli("--root", project, "top", env={"PI_MESH_HOSTNAME": "testhost"})
        assert r.returncode == 3, r.stderr
        assert r.stderr.count("\n") == 1 and "human" in r.stderr and "Traceback" not in r.stderr
        assert "another pi-mesh top" in r.stderr and "--name" in r.stderr
        r = run_cli("--root", project, "top", "--name", "bad/name")
        assert r.returncode == 2 and "Traceback" not in r.stderr
        r = run_cli("top", "--help")
        assert r.returncode == 0 and "release" in r.stdout and "@NAME" in r.stdout
    finally:
        held.leave()


def test_pi_mesh_top_runs_in_a_real_terminal_and_q_quits(project):
    """The real command in a pseudo-terminal: it registers the operator, draws, and `q` quits and leaves."""
    import fcntl
    import pty
    import select
    import struct
    import sys
    import termios

    from .conftest import REPO

    human = os.path.join(project, ".pi", "mesh", "agents", "human.json")
    env = {**os.environ, "PYTHONPATH": REPO, "TERM": "xterm-256color"}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "pi_mesh_plugin", "top"], cwd=project, env=env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""

    def pump(cond, timeout: float) -> bool:
        nonlocal out
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    out += os.read(master, 1 << 16)
                except OSError:  # the terminal closed: the process is gone
                    break
        return cond()

    try:
        assert pump(lambda: b"Agents: 1 live" in out and os.path.exists(human), 20), out[-2000:]
        os.write(master, b"q")
        pump(lambda: proc.poll() is not None, 10)  # drains the terminal until it closes
        assert proc.wait(10) == 0, out[-2000:]
        assert not os.path.exists(human)  # the operator left
        assert b"Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)


@pytest.mark.pg
def test_top_on_postgres_updates_from_notify(pg_url, project, monkeypatch):
    from pi_mesh_plugin.mesh import Mesh

    monkeypatch.setenv("PI_MESH_STORE", pg_url)
    app = MeshTop(operator_mesh(project), tick=60)
    bob = Mesh(project, "bob", cwd=project)

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            assert app.watcher is not None and app.watcher.mode == "notify"
            bob.join(harness="claude-code")
            bob.reserve(["src/auth/"], "on postgres")
            await until(pilot, lambda: re.search(r"bob\s+src/auth/\s+on postgres\s+.*live", screen(app)),
                        what="bob's claim in the table")
            await until(pilot, lambda: re.search(r"bob\s+reserve\s+src/auth - on postgres", screen(app)),
                        what="bob's claim in the feed")
            await pilot.press("c", *"@bob hi", "enter")
            await until(pilot, lambda: app.last_result.startswith("sent to bob"), what="the send")
            assert [m.text for m in bob.read_inbox()] == ["hi"]
            await pilot.press("escape", "q")

    try:
        run(go())
        assert bob.store.get_agent("human") is None
    finally:
        bob.close()
        app.mesh.close()
