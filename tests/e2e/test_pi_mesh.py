"""The pi-mesh Pi extension against the real Pi CLI (npm @mariozechner/pi-coding-agent, see pi_rig).

The extension is installed with ``pi-mesh install pi`` into a fresh git project; Pi runs with
``PI_MESH_AGENT=pi-1`` and a scripted model.  Another agent, ``bob``, is a Mesh in this test process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pi_rig import run_pi
from scripted_openai import ScriptedOpenAI, text, tool_call

from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("pi-e2e")]

LOGIN = "def login():\n    pass\n"


@pytest.fixture
def pi_project(project: str, pi_install: Path) -> Path:
    """The conftest project with the extension installed the way a user would."""
    proc = run_cli("install", "pi", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (Path(project) / ".pi" / "extensions" / "pi-mesh" / "index.ts").is_file()
    return Path(project)


@pytest.fixture
def bob(mesh_factory, project: str):
    """Another agent, owned by this test process, holding src/auth/."""
    m = mesh_factory("bob", cwd=project)
    m.reserve(["src/auth/"], "refactoring the auth flow")
    return m


def wait_for(predicate, what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def queued(mesh, msg_id: str) -> bool:
    """The extension has handed message ``msg_id`` to Pi (the sidecar records ``queued`` in the feed)."""
    return any(e.get("event") == "queued" and msg_id in e.get("ids", []) for e in mesh.feed())


def children(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            pass
    return out


def proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` (R, S, T, Z...), ``None`` once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return None


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def test_pi_is_blocked_by_a_reservation_uses_mesh_tools_and_receives_mail(pi_project: Path, bob, tmp_path) -> None:
    login = pi_project / "src" / "auth" / "login.py"
    write = tool_call("write", {"path": "src/auth/login.py", "content": "def login():\n    return 'hacked'\n"})
    reserve = tool_call("reserve", {"paths": ["docs/"], "reason": "writing the auth docs"})
    send = tool_call("send_message", {"to": "bob", "text": "pi-1 here: I will wait for src/auth/, doing docs"})
    sent: dict[str, str] = {}

    def first(_req: dict) -> list[dict]:
        # Pi is live and waiting on the model: bob sends an urgent and a normal message to it.
        sent["urgent"] = bob.send("pi-1", "URGENT from bob: stop touching auth", urgent=True).id
        sent["normal"] = bob.send("pi-1", "FYI from bob: auth refactor lands in an hour").id
        wait_for(lambda: queued(bob, sent["urgent"]) and queued(bob, sent["normal"]), "the extension to queue the mail")
        return [write]

    turns = [first, [reserve, send], [text("nothing more to do")], [text("noted the follow-up")]]
    with ScriptedOpenAI(turns) as server:
        run = run_pi(pi_project, "refactor login", server, agent_dir=tmp_path / "agent",
                     env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
        assert not server.exhausted_requests, run.describe()
    assert len(requests) == 4, run.describe()

    # The mesh tools were offered to the model with their JSON Schemas.
    offered = {t["function"]["name"]: t["function"] for t in requests[0]["tools"]}
    assert {"write", "edit", "send_message", "reserve", "release", "read_inbox", "list_agents"} <= set(offered)
    assert offered["reserve"]["parameters"]["required"] == ["paths", "reason"]

    # The write was blocked before it ran: the file is unchanged ...
    assert login.read_text() == LOGIN
    # ... and the tool result the model received names the holder and the reason.
    blocked = ScriptedOpenAI.tool_results(requests[1])[write["id"]]
    assert "BLOCKED" in blocked and "reserved by agent bob" in blocked, blocked
    assert "refactoring the auth flow" in blocked and "src/auth/" in blocked, blocked
    assert run.tool_ends()[write["id"]]["isError"] is True

    # The urgent message was steered in right after the blocked call's result.
    users = [ScriptedOpenAI.user_texts(body) for body in requests]
    assert not any("URGENT from bob" in u for u in users[0])
    assert any("URGENT from bob: stop touching auth" in u and "from agent bob" in u for u in users[1]), users[1]
    assert not any("FYI from bob" in u for u in users[1] + users[2])

    # reserve and send_message ran in the sidecar.
    results = ScriptedOpenAI.tool_results(requests[2])
    assert results[reserve["id"]].startswith("reserved docs/"), results
    assert results[send["id"]].startswith("sent to bob"), results
    inbox = bob.read_inbox()
    assert [(m.sender, m.text) for m in inbox] == [("pi-1", "pi-1 here: I will wait for src/auth/, doing docs")]

    # The normal message arrived as a follow-up once the agent would have stopped.
    assert any("FYI from bob: auth refactor lands in an hour" in u for u in users[3]), users[3]
    assert requests[3]["messages"][-2] == {"role": "assistant", "content": "nothing more to do"}

    # Both messages were acked (marked read) once they reached the model; pi-1 left at shutdown.
    inbox_dir = pi_project / ".pi" / "mesh" / "inbox" / "pi-1"
    assert sorted(p.stem for p in (inbox_dir / "cur").iterdir()) == sorted(sent.values())
    assert list((inbox_dir / "new").iterdir()) == []
    assert "pi-1" not in [a.name for a in bob.agents()]
    assert [r.holder for r in bob.reservations()] == ["bob"]


@pytest.mark.parametrize("how,on_store_error", [("kill", "block"), ("kill", "allow"), ("stop", "block")],
                         ids=["killed", "killed-fail-open", "silent"])
def test_dead_or_silent_sidecar_blocks_guarded_calls_with_a_clear_reason(pi_project: Path, mesh_factory, tmp_path,
                                                                         how: str, on_store_error: str) -> None:
    (pi_project / "hooks.toml").write_text(f'[defaults]\non_store_error = "{on_store_error}"\n'
                                           f'sidecar_timeout = "1s"\n')
    observer = mesh_factory("observer")
    (pi_project / "notes.txt").write_text("notes\n")
    write = tool_call("write", {"path": "src/auth/login.py", "content": "written without the mesh\n"})
    read = tool_call("read", {"path": "notes.txt"})
    killed: dict[str, Any] = {}

    def kill_sidecar(_req: dict) -> list[dict]:
        pi = wait_for(lambda: next((a for a in observer.agents() if a.name == "pi-1"), None), "pi-1 to join")
        kids = [c for c in children(pi.pid) if "serve" in cmdline(c)]
        assert len(kids) == 1, [(c, cmdline(c)) for c in children(pi.pid)]
        killed["pid"] = kids[0]
        # started the way `pi-mesh install pi` recorded (the interpreter in pi-mesh.json), not from PATH
        recorded = json.loads((pi_project / ".pi" / "extensions" / "pi-mesh" / "pi-mesh.json").read_text())
        assert cmdline(kids[0])[:4] == [recorded["python"], "-m", "pi_mesh_plugin", "serve"], cmdline(kids[0])
        if how == "stop":  # alive but silent: every request times out
            os.kill(kids[0], signal.SIGSTOP)
            wait_for(lambda: proc_state(kids[0]) == "T", "the sidecar to stop")
        else:
            os.kill(kids[0], signal.SIGKILL)
            wait_for(lambda: kids[0] not in children(pi.pid), "the sidecar to be reaped")
        return [write, read]

    with ScriptedOpenAI([kill_sidecar, [text("done")]]) as server:
        run = run_pi(pi_project, "edit login", server, agent_dir=tmp_path / "agent", env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
    assert len(requests) == 2, run.describe()
    results = ScriptedOpenAI.tool_results(requests[1])
    assert results[read["id"]] == "notes\n"  # unguarded tools run either way
    if on_store_error == "allow":  # fail open, as configured
        assert results[write["id"]].startswith("Successfully wrote"), results
        assert (pi_project / "src" / "auth" / "login.py").read_text() == "written without the mesh\n"
        return
    reason = results[write["id"]]
    assert reason.startswith("BLOCKED: pi-mesh could not check this write call"), reason
    if how == "stop":
        assert "the pi-mesh sidecar did not answer pre_tool_call within 1s (sidecar_timeout)" in reason, reason
        assert proc_state(killed["pid"]) in (None, "Z"), "the extension did not kill the silent sidecar"
    else:
        assert f"sidecar (pid {killed['pid']}) was killed by SIGKILL" in reason, reason
    assert "fail closed" in reason, reason
    assert (pi_project / "src" / "auth" / "login.py").read_text() == LOGIN


def test_sidecar_that_cannot_start_blocks_guarded_calls(pi_project: Path, tmp_path) -> None:
    write = tool_call("edit", {"path": "src/auth/login.py", "edits": [{"oldText": "pass", "newText": "return 1"}]})
    missing = tmp_path / "no-such-pi-mesh"
    with ScriptedOpenAI([[write], [text("done")]]) as server:
        run = run_pi(pi_project, "edit login", server, agent_dir=tmp_path / "agent",
                     env={"PI_MESH_AGENT": "pi-1", "PI_MESH_BIN": str(missing)})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
    reason = ScriptedOpenAI.tool_results(requests[1])[write["id"]]
    assert reason.startswith("BLOCKED: pi-mesh could not check this edit call: pi-mesh could not join the mesh: "
                             f"the pi-mesh sidecar could not be started (PI_MESH_BIN={missing})"), reason
    assert "ENOENT" in reason, reason
    assert (pi_project / "src" / "auth" / "login.py").read_text() == LOGIN


def test_mesh_command_shows_agents_claims_and_unread_mail(pi_project: Path, bob, tmp_path) -> None:
    # PI_MESH_BIN names the command to start (here a wrapper script, as a pipx-installed pi-mesh would be)
    wrapper = tmp_path / "pi-mesh"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m pi_mesh_plugin \"$@\"\n")
    wrapper.chmod(0o755)
    with ScriptedOpenAI([[text("the model must not be called")]]) as server:
        run = run_pi(pi_project, "/mesh", server, agent_dir=tmp_path / "agent",
                     env={"PI_MESH_AGENT": "pi-1", "PI_MESH_BIN": str(wrapper)})
        assert run.returncode == 0, run.describe()
        assert server.chat_requests() == []
    out = run.stderr
    assert "you are pi-1" in out, run.describe()
    assert "bob (live)" in out and "pi-1 (live, pi, you)" in out, out
    assert 'src/auth/ held by bob: "refactoring the auth flow"' in out, out
    assert "Unread mail (0):" in out, out
    assert json.loads(run.stdout.splitlines()[0])["type"] == "session"  # the JSON stream stayed clean


def test_mail_waiting_at_startup_rides_with_the_first_prompt(pi_project: Path, bob, mesh_factory, tmp_path) -> None:
    away = mesh_factory("pi-1", cwd=str(pi_project))
    msg = bob.send("pi-1", "while you were away: auth is mine until noon")
    away.leave()  # pi-1's last session ended cleanly with the message unread
    with ScriptedOpenAI([[text("read it")], [text("spare")]]) as server:
        run = run_pi(pi_project, "good morning", server, agent_dir=tmp_path / "agent", env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
    users = [ScriptedOpenAI.user_texts(body) for body in requests]
    assert len(requests) == 1, users
    assert users[0][0] == "good morning" and "while you were away: auth is mine until noon" in users[0][1], users
    inbox_dir = pi_project / ".pi" / "mesh" / "inbox" / "pi-1"
    assert [p.stem for p in (inbox_dir / "cur").iterdir()] == [msg.id]


def test_message_wakes_an_idle_agent_in_rpc_mode(pi_project: Path, bob, tmp_path) -> None:
    """A long-lived Pi (``--mode rpc``, as an IDE runs it) that has finished its work and sits idle is woken
    by an incoming message: it takes a new turn with the message, and leaves the mesh on SIGTERM."""
    import queue
    import shutil
    import subprocess
    import threading

    from pi_rig import PROVIDER, pi_cli, write_models_json

    agent_dir = tmp_path / "agent"
    with ScriptedOpenAI([[text("all done, idle now")], [text("woken up by bob")]]) as server:
        write_models_json(agent_dir, server.url, server.model)
        env = {**os.environ, "PI_CODING_AGENT_DIR": str(agent_dir), "PI_OFFLINE": "1", "PI_SKIP_VERSION_CHECK": "1",
               "PI_TELEMETRY": "0", "PI_MESH_AGENT": "pi-1"}
        proc = subprocess.Popen([shutil.which("node") or "node", str(pi_cli()), "--provider", PROVIDER, "--model",
                                 server.model, "--mode", "rpc", "--no-session"], cwd=pi_project, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        events: queue.Queue = queue.Queue()

        def pump() -> None:
            for raw in proc.stdout:  # type: ignore[union-attr]
                try:
                    events.put(json.loads(raw))
                except ValueError:
                    pass

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()

        def wait_event(kind: str, timeout: float = 30) -> dict:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if ev.get("type") == kind:
                    return ev
            raise AssertionError(f"no {kind} event within {timeout:.0f}s")

        try:
            proc.stdin.write(b'{"id": "p1", "type": "prompt", "message": "finish up"}\n')  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            wait_event("agent_end")
            assert len(server.chat_requests()) == 1
            wait_for(lambda: "pi-1" in [a.name for a in bob.agents()], "pi-1 to be registered")
            msg = bob.send("pi-1", "wake up: please review my auth change")
            wait_event("agent_end")  # the message started a second run on its own
            requests = server.chat_requests()
            assert len(requests) == 2
            users = ScriptedOpenAI.user_texts(requests[1])
            assert users[0] == "finish up" and "wake up: please review my auth change" in users[-1], users
            inbox_dir = pi_project / ".pi" / "mesh" / "inbox" / "pi-1"
            wait_for(lambda: [p.stem for p in (inbox_dir / "cur").iterdir()] == [msg.id], "the ack")
        finally:
            proc.terminate()  # Pi emits session_shutdown on SIGTERM: the extension leaves and stops the sidecar
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            reader.join(timeout=5)
            for f in (proc.stdin, proc.stdout, proc.stderr):
                f.close()  # type: ignore[union-attr]
    assert "pi-1" not in [a.name for a in bob.agents()]


def test_a_denied_tool_is_not_offered_to_the_model_and_is_refused_if_called(pi_project: Path, tmp_path) -> None:
    """hooks.toml denies bash to pi-1: the core tells the extension at hello, Pi's active tools drop bash (the
    model's requests do not list it), and a bash call the model makes anyway is refused without running."""
    (pi_project / "hooks.toml").write_text('[agents.pi-1]\ndeny = ["bash"]\n')
    made = pi_project / "made-by-bash.txt"
    shell = tool_call("bash", {"command": f"touch {made}"})
    with ScriptedOpenAI([[shell], [text("done")]]) as server:
        run = run_pi(pi_project, "touch a file", server, agent_dir=tmp_path / "agent", env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
    offered = [t["function"]["name"] for t in requests[0].get("tools", [])]
    assert "read" in offered and "edit" in offered and "reserve" in offered, offered
    assert "bash" not in offered, offered
    assert not made.exists()
    reason = ScriptedOpenAI.tool_results(requests[1])[shell["id"]]
    assert "bash" in reason and ("denied" in reason or "not found" in reason.lower()), reason


def test_blocked_pi_queues_is_told_when_the_claim_is_its_own_and_its_retry_succeeds(pi_project: Path, bob,
                                                                                 tmp_path) -> None:
    """The coordination loop in a real Pi session: blocked -> reserve(queue=true) -> bob releases -> the grant
    is steered into the session as urgent mail from ``mesh`` -> the same write, retried, succeeds."""
    login = pi_project / "src" / "auth" / "login.py"
    (pi_project / "notes.txt").write_text("notes\n")
    content = "def login():\n    return 'pi-1, in turn'\n"
    write = tool_call("write", {"path": "src/auth/login.py", "content": content})
    queue = tool_call("reserve", {"paths": ["src/auth/"], "reason": "fix login", "queue": True})
    read = tool_call("read", {"path": "notes.txt"})
    retry = tool_call("write", {"path": "src/auth/login.py", "content": content})
    seen: dict[str, Any] = {}

    def release(req: dict) -> list[dict]:
        seen["queued"] = ScriptedOpenAI.tool_results(req["body"])[queue["id"]]
        assert [r.holder for r in bob.reservations()] == ["bob"]  # pi-1 only waits
        bob.release(["src/auth/"])
        wait_for(lambda: any(e.get("event") == "queued" and e.get("agent") == "pi-1" for e in bob.feed()),
                 "the grant to be handed to Pi")
        return [read]

    turns = [[write], [queue], release, [retry], [text("done")]]
    with ScriptedOpenAI(turns) as server:
        run = run_pi(pi_project, "fix login", server, agent_dir=tmp_path / "agent", env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
    assert len(requests) == 5, run.describe()
    blocked = ScriptedOpenAI.tool_results(requests[1])[write["id"]]
    assert "reserved by agent bob" in blocked and "queue" in blocked, blocked
    assert seen["queued"].startswith("queued") and "bob" in seen["queued"], seen
    users = ScriptedOpenAI.user_texts(requests[3])
    assert any("src/auth/ is now yours" in u for u in users), users
    assert ScriptedOpenAI.tool_results(requests[4])[retry["id"]].startswith("Successfully wrote")
    assert login.read_text() == content


def test_pi_started_in_a_subdirectory_is_blocked_with_the_install_the_project_install_names(
        project: str, pi_install: Path, bob, tmp_path) -> None:
    """Pi loads project extensions only from ``.pi/extensions`` of its start directory: a project install
    says so and names ``--global``; with that install, Pi started in ``src/`` is blocked writing
    ``auth/login.py`` (relative to ``src/``) inside bob's claim, with holder and reason, file unchanged."""
    sub = Path(project) / "src"
    agent_dir = tmp_path / "agent"
    said = run_cli("install", "pi", cwd=str(sub))
    assert said.returncode == 0 and "pi-mesh install pi --global" in said.stdout, said.stdout
    proc = run_cli("install", "pi", "--global", cwd=str(sub), env={"PI_CODING_AGENT_DIR": str(agent_dir)})
    assert proc.returncode == 0, proc.stderr
    login = sub / "auth" / "login.py"
    write = tool_call("write", {"path": "auth/login.py", "content": "def login():\n    return 'from src/'\n"})
    with ScriptedOpenAI([[write], [text("blocked; leaving it")]]) as server:
        run = run_pi(sub, "refactor login", server, agent_dir=agent_dir, env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
    assert run.returncode == 0, run.describe()
    assert len(requests) == 2, run.describe()
    assert login.read_text() == LOGIN
    blocked = ScriptedOpenAI.tool_results(requests[1])[write["id"]]
    assert "BLOCKED" in blocked and "reserved by agent bob" in blocked, blocked
    assert "refactoring the auth flow" in blocked and "src/auth/" in blocked, blocked
    assert run.tool_ends()[write["id"]]["isError"] is True
    assert not (sub / ".pi").exists()  # the mesh is the project's, not the subdirectory's

    # at the root, both installs are in reach (the project's and the global one): one guard, still blocked
    write2 = tool_call("write", {"path": "src/auth/login.py", "content": "def login():\n    return 'root'\n"})
    with ScriptedOpenAI([[write2], [text("blocked again")]]) as server:
        run = run_pi(Path(project), "refactor login", server, agent_dir=agent_dir, env={"PI_MESH_AGENT": "pi-2"})
        requests = server.chat_requests()
    assert run.returncode == 0, run.describe()
    assert login.read_text() == LOGIN
    blocked = ScriptedOpenAI.tool_results(requests[1])[write2["id"]]
    assert "BLOCKED" in blocked and "reserved by agent bob" in blocked, blocked
    names = [t["function"]["name"] for t in requests[0]["tools"]]
    assert names.count("reserve") == 1, names
