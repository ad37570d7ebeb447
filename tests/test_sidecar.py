"""``pi-mesh serve``: the JSON-lines sidecar, driven through a real subprocess."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import REPO

BOB_REASON = "refactoring the auth flow"


class Sidecar:
    """A running ``python -m pi_mesh_plugin serve`` with a reader thread sorting responses from events."""

    def __init__(self, cwd: str, *args: str, env: dict | None = None) -> None:
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "pi_mesh_plugin", "serve", *args], cwd=cwd, env=full_env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.responses: queue.Queue = queue.Queue()
        self.events: queue.Queue = queue.Queue()
        self.raw: list[bytes] = []
        self._next = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.raw.append(line)
            obj = json.loads(line)  # every line the sidecar writes must be JSON
            (self.events if "event" in obj else self.responses).put(obj)

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def response(self, timeout: float = 30) -> dict:
        return self.responses.get(timeout=timeout)

    def request(self, op: str, **fields: object) -> dict:
        self._next += 1
        self.send_raw((json.dumps({"id": self._next, "op": op, **fields}) + "\n").encode())
        resp = self.response()
        assert resp["id"] == self._next, resp
        return resp

    def ok(self, op: str, **fields: object):  # -> the result
        resp = self.request(op, **fields)
        assert resp["ok"] is True, resp
        return resp["result"]

    def event(self, timeout: float = 10) -> dict:
        return self.events.get(timeout=timeout)

    def close(self, timeout: float = 15) -> tuple[int, str]:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the sidecar did not exit at EOF") from None
        self._reader.join(timeout=5)
        err = self.proc.stderr.read().decode()  # type: ignore[union-attr]
        self.release()
        return rc, err

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None and not f.closed:
                try:
                    f.close()
                except OSError:
                    pass


@pytest.fixture
def sidecars(project):
    made: list[Sidecar] = []

    def start(*args: str, env: dict | None = None) -> Sidecar:
        s = Sidecar(project, *args, env=env)
        made.append(s)
        return s

    yield start
    for s in made:
        s.release()


@pytest.fixture
def bob(mesh_factory, project):
    m = mesh_factory("bob", cwd=project)
    m.reserve(["src/auth/"], BOB_REASON)
    return m


def hello(s: Sidecar, name: str = "pi-1") -> dict:
    return s.ok("hello", name=name, harness="pi", pid=os.getpid(), model="scripted")


def test_hello_lists_tools_with_schemas_and_joins(sidecars, mesh_factory, project) -> None:
    s = sidecars()
    assert s.ok("ping")["joined"] is False
    info = hello(s)
    assert info["agent"] == "pi-1" and info["pid"] == os.getpid()
    assert info["guard"] == ["edit", "write", "bash"] and info["on_store_error"] == "block" and info["sidecar_timeout"] == 5
    tools = {t["name"]: t for t in info["tools"]}
    assert {"send_message", "read_inbox", "reserve", "release", "list_agents"} <= set(tools)
    assert tools["reserve"]["parameters"]["required"] == ["paths", "reason"]
    assert s.ok("tools") == info["tools"]
    me = [a for a in mesh_factory(None, join=False).agents() if a.name == "pi-1"]
    assert [(a.harness, a.model, a.pid, a.live) for a in me] == [("pi", "scripted", os.getpid(), True)]
    again = s.request("hello", name="pi-1")
    assert again["ok"] is False and again["code"] == "bad_request" and "already joined as pi-1" in again["error"]
    rc, err = s.close()
    assert rc == 0 and err == ""
    assert "pi-1" not in [a.name for a in mesh_factory(None, join=False).agents()]  # left at EOF


def test_pre_tool_call_maps_pi_tools_and_the_core_decides(sidecars, bob, project) -> None:
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nguard = ["edit", "write", "bash"]\n')
    s = sidecars()
    hello(s)
    res = s.ok("pre_tool_call", tool="write", input={"path": "src/auth/login.py", "content": "x"}, cwd=project)
    assert res["allow"] is False
    assert res["block"]["holder"] == "bob" and res["block"]["reason"] == BOB_REASON
    assert res["reason"].startswith("BLOCKED: write of src/auth/login.py - src/auth/ is reserved by agent bob.")
    assert BOB_REASON in res["reason"]
    # edit: the new {path, edits} shape and the older {path, oldText, newText}; a cwd inside the project
    sub = os.path.join(project, "src")
    res = s.ok("pre_tool_call", tool="edit", input={"path": "auth/login.py", "edits": [{"oldText": "a", "newText": "b"}]},
               cwd=sub)
    assert res["allow"] is False and res["block"]["canonical"] == "src/auth/login.py"
    res = s.ok("pre_tool_call", tool="edit", input={"path": "src/auth/x.py", "oldText": "a", "newText": "b"}, cwd=project)
    assert res["allow"] is False
    assert s.ok("pre_tool_call", tool="write", input={"path": "README.md", "content": ""}, cwd=project)["allow"] is True
    # bash goes to the core's shell guard: a redirection into src/auth/ is a write there
    res = s.ok("pre_tool_call", tool="bash", input={"command": "echo hi > src/auth/login.py"}, cwd=project)
    assert res["allow"] is False and res["block"]["holder"] == "bob"
    assert s.ok("pre_tool_call", tool="bash", input={"command": "cat src/auth/login.py"}, cwd=project)["allow"] is True
    # reads are never guarded
    assert s.ok("pre_tool_call", tool="read", input={"path": "src/auth/login.py"}, cwd=project)["allow"] is True
    # the block was recorded in the feed by the core
    assert any(e["event"] == "blocked" and e.get("holder") == "bob" for e in bob.feed())


def test_call_tool_runs_plugin_tools(sidecars, bob, project) -> None:
    s = sidecars()
    hello(s)
    sent = s.ok("call_tool", name="send_message", arguments={"to": "bob", "text": "can I have src/auth/?"})
    assert sent["text"].startswith("sent to bob (id ")
    assert [(m.sender, m.text) for m in bob.read_inbox()] == [("pi-1", "can I have src/auth/?")]
    made = s.ok("call_tool", name="reserve", arguments={"paths": ["docs/"], "reason": "docs"}, cwd=project)
    assert made["text"].startswith("reserved docs/")
    assert sorted((r.holder, r.path) for r in bob.reservations()) == [("bob", "src/auth"), ("pi-1", "docs")]
    refused = s.request("call_tool", name="reserve", arguments={"paths": ["src/auth/login.py"], "reason": "mine"},
                        cwd=project)
    assert refused["ok"] is False and refused["code"] == "blocked" and "reserved by bob" in refused["error"]
    invalid = s.request("call_tool", name="reserve", arguments={"paths": []})
    assert invalid["ok"] is False and invalid["code"] == "usage" and "invalid arguments" in invalid["error"]
    unknown = s.request("call_tool", name="no_such_tool", arguments={})
    assert unknown["ok"] is False and unknown["code"] == "usage" and "no tool named 'no_such_tool'" in unknown["error"]
    status = s.ok("status")
    assert status["agent"] == "pi-1" and {a["name"] for a in status["agents"]} == {"bob", "pi-1"}
    assert "docs/ held by pi-1" in status["text"] and 'src/auth/ held by bob: "refactoring the auth flow"' in status["text"]
    assert s.ok("post_tool_call", tool="write", input={"path": "README.md"}, ok=True) == {}
    assert s.ok("leave") == {"left": True}
    assert [r.holder for r in bob.reservations()] == ["bob"]  # leaving released pi-1's claim
    assert s.request("status")["code"] == "not_joined"


MALFORMED = [
    (b"this is not json\n", None, "bad_json", "line 2: not JSON"),
    (b"[1, 2]\n", None, "bad_request", "a request must be a JSON object, not list"),
    (b'{"id": 5}\n', 5, "bad_request", "missing field 'op'"),
    (b'{"id": {"x": 1}, "op": "ping"}\n', None, "bad_request", "id must be a number or a string"),
    (b'{"id": 6, "op": "frobnicate"}\n', 6, "unknown_op", "unknown op 'frobnicate'"),
    (b'{"id": 7, "op": "pre_tool_call", "tool": "write", "input": {"content": "x"}}\n', 7, "bad_request",
     "write: input.path must be a non-empty string"),
    (b'{"id": 8, "op": "pre_tool_call", "tool": "edit", "input": {"path": 42}}\n', 8, "bad_request",
     "edit: input.path must be a non-empty string"),
    (b'{"id": 9, "op": "pre_tool_call", "tool": "write", "input": "src/auth/login.py"}\n', 9, "bad_request",
     "field 'input' must be a object"),
    (b'{"id": 10, "op": "pre_tool_call", "input": {"path": "a"}}\n', 10, "bad_request", "missing field 'tool'"),
    (b'{"id": 11, "op": "pre_tool_call", "tool": "bash", "input": {"command": ["rm", "-rf"]}}\n', 11, "bad_request",
     "bash: input.command must be a string"),
    (b'{"id": 12, "op": "call_tool", "name": "reserve", "arguments": [1]}\n', 12, "bad_request",
     "field 'arguments' must be a object"),
    (b'{"id": 13, "op": "ack", "ids": "abc"}\n', 13, "bad_request", "field 'ids' must be a array"),
    (b'{"id": 14, "op": "ack", "ids": [1]}\n', 14, "bad_request", "ids must be an array of message id strings"),
    (b'{"id": 15, "op": "ack", "ids": ["../../etc/passwd"]}\n', 15, "usage", "invalid message id"),
    (b'\xff\xfe{"id": 17}\n', None, "bad_json", "not JSON"),
]


def test_malformed_lines_get_one_line_errors_never_an_allow(sidecars, bob, project) -> None:
    s = sidecars()
    hello(s)
    for line, rid, code, text in MALFORMED:
        s.send_raw(line)
        resp = s.response()
        assert resp["ok"] is False, (line, resp)
        assert "result" not in resp, resp
        assert (resp["id"], resp["code"]) == (rid, code), (line, resp)
        assert text in resp["error"] and "\n" not in resp["error"], (line, resp)
        assert "Traceback" not in resp["error"]
    # a path the core cannot canonicalise is blocked by the core (never allowed)
    res = s.ok("pre_tool_call", tool="write", input={"path": "src/x\u0000y"}, cwd=project)
    assert res["allow"] is False and "invalid path" in res["reason"], res
    s.send_raw(b"\n   \n")  # blank lines are ignored, not answered
    assert s.ok("ping")["joined"] is True  # still serving
    rc, err = s.close()
    assert rc == 0 and "Traceback" not in err


def test_pre_tool_call_before_hello_is_refused(sidecars) -> None:
    s = sidecars()
    resp = s.request("pre_tool_call", tool="write", input={"path": "src/auth/login.py"})
    assert resp["ok"] is False and resp["code"] == "not_joined"


@pytest.fixture
def bob_on_backend(backend, mesh_factory, project):
    """bob on the file store or on PostgreSQL (``backend`` sets PI_MESH_STORE, which the sidecar inherits)."""
    m = mesh_factory("bob", cwd=project)
    m.reserve(["src/auth/"], BOB_REASON)
    return m


# "watch" polls only every 30 s, so a message seen at once came through the watcher (inotify on the file
# store, LISTEN/NOTIFY on PostgreSQL); "poll" turns the watcher off.
@pytest.mark.parametrize("mode", [("--poll", "30"), ("--no-watch", "--poll", "0.05")], ids=["watch", "poll"])
def test_inbox_messages_are_pushed_and_marked_read_only_when_acked(sidecars, bob_on_backend, mode) -> None:
    bob = bob_on_backend
    s = sidecars(*mode)
    hello(s)
    m1 = bob.send("pi-1", "first: please wait", urgent=True)
    ev = s.event()
    assert (ev["event"], ev["id"], ev["from"], ev["text"], ev["urgent"]) == ("message", m1.id, "bob", "first: please wait",
                                                                            True)
    assert "from agent bob" in ev["content"] and "first: please wait" in ev["content"]
    assert bob.unread_count("pi-1") == 1  # pushed but not acked: still unread
    assert s.ok("ack", ids=[m1.id], stage="queued") == {"marked": 0}
    assert bob.unread_count("pi-1") == 1
    assert any(e["event"] == "queued" and e["ids"] == [m1.id] for e in bob.feed())
    m2 = bob.send("pi-1", "second")
    ev2 = s.event()
    assert ev2["id"] == m2.id and ev2["urgent"] is False  # m1 was not pushed twice
    assert bob.receipts([m1.id])[0]["state"] == "delivered"  # handed over, not yet in the model's context
    assert s.ok("ack", ids=[m1.id]) == {"marked": 1}
    assert bob.unread_count("pi-1") == 1
    r = bob.receipts([m1.id])[0]
    assert (r["state"], r["via"]) == ("shown", "pi")
    rc, err = s.close()
    assert (rc, err) == (0, "")
    # m2 was never acked: a new session gets it again, with the same id (at least once), in hello's backlog
    # (so the extension can hand it over before the first prompt) and not a second time as an event.
    s2 = sidecars(*mode)
    info = hello(s2)
    assert info["unread"] == 1 and [(b["event"], b["id"], b["text"]) for b in info["backlog"]] == [
        ("message", m2.id, "second")]
    s2.ok("ack", ids=[m2.id])
    assert bob.unread_count("pi-1") == 0
    with pytest.raises(queue.Empty):
        s2.event(timeout=0.5)


def test_a_broadcast_reaches_each_session_which_acks_its_own(sidecars, bob_on_backend) -> None:
    """On the file store a broadcast is one file linked into both inboxes: each sidecar pushes it addressed
    to its own agent, and one session's ack marks only its own copy read."""
    bob = bob_on_backend
    s1, s2 = sidecars("--poll", "30"), sidecars("--poll", "30")
    hello(s1, "pi-1")
    hello(s2, "pi-2")
    sent = bob.broadcast("all: freeze src/auth/ for ten minutes")
    assert sorted(m.to for m in sent) == ["pi-1", "pi-2"]
    ev1, ev2 = s1.event(), s2.event()
    for ev in (ev1, ev2):
        assert (ev["event"], ev["id"], ev["from"], ev["broadcast"]) == ("message", sent[0].id, "bob", True)
        assert ev["text"] == "all: freeze src/auth/ for ten minutes"
    assert s1.ok("ack", ids=[sent[0].id]) == {"marked": 1}
    assert bob.unread_count("pi-1") == 0 and bob.unread_count("pi-2") == 1
    assert s2.ok("ack", ids=[sent[0].id]) == {"marked": 1}
    assert bob.unread_count("pi-2") == 0
    for s in (s1, s2):
        assert s.close() == (0, "")


def test_heartbeat_refreshes_last_seen(sidecars, project, mesh_factory) -> None:
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[defaults]\nheartbeat_ttl = "1.5s"\n')
    s = sidecars()
    hello(s)
    observer = mesh_factory(None, join=False)
    first = next(a for a in observer.agents() if a.name == "pi-1").last_seen
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if next(a for a in observer.agents() if a.name == "pi-1").last_seen != first:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the sidecar never heartbeat")


def test_sigterm_leaves_the_mesh(sidecars, mesh_factory) -> None:
    s = sidecars()
    hello(s, "pi-term")
    s.proc.terminate()
    assert s.proc.wait(timeout=15) == 0
    assert "pi-term" not in [a.name for a in mesh_factory(None, join=False).agents()]


def test_agent_name_comes_from_hello_env_config_or_is_generated(sidecars, project) -> None:
    s = sidecars(env={"PI_MESH_AGENT": "pi-env"})
    assert s.ok("hello", pid=os.getpid())["agent"] == "pi-env"
    with open(os.path.join(project, "hooks.toml"), "w") as f:
        f.write('[mesh]\nagent = "pi-config"\n')
    s = sidecars()
    assert s.ok("hello", pid=os.getpid())["agent"] == "pi-config"
    os.remove(os.path.join(project, "hooks.toml"))
    s = sidecars()
    generated = s.ok("hello", pid=os.getpid())["agent"]
    assert generated.startswith("agent-") and generated not in ("pi-env", "pi-config")
    # a name held by another live agent is refused with a one-line error (the extension then fails closed)
    s = sidecars()
    taken = s.request("hello", name="pi-env", pid=1)
    assert taken["ok"] is False and taken["code"] == "blocked" and "is held by a live agent" in taken["error"], taken
