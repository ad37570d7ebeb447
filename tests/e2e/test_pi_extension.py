"""The real Pi with the extension installed: a slow sidecar does not hold Pi's start-up, and an abort
abandons a mesh tool's request.

* The sidecar is started through the interpreter recorded in ``pi-mesh.json``, here a wrapper that
  sleeps before it execs Python, so ``hello`` is answered long after Pi has started: the first prompt
  is not kept waiting for it, a guarded write made before it answers is blocked (fail closed) and a
  write made after it answers goes through.
* In ``--mode rpc`` the model calls a mesh tool while the sidecar is stopped (SIGSTOP, with a long
  ``sidecar_timeout``); an ``abort`` ends the tool at once with "Operation aborted" instead of waiting
  for the timeout, and the session goes on.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pi_rig import PROVIDER, pi_cli, run_pi, write_models_json
from scripted_openai import ScriptedOpenAI, text, tool_call

from tests.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("pi-e2e")]


@pytest.fixture
def pi_project(project: str, pi_install: Path) -> Path:
    proc = run_cli("install", "pi", cwd=project)
    assert proc.returncode == 0, proc.stderr
    return Path(project)


def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _record(pi_project: Path) -> Path:
    return pi_project / ".pi" / "extensions" / "pi-mesh" / "pi-mesh.json"


def test_a_slow_sidecar_does_not_hold_pi_and_guarded_calls_fail_closed_until_hello(pi_project: Path, mesh_factory,
                                                                                   tmp_path: Path) -> None:
    record = json.loads(_record(pi_project).read_text())
    slow = tmp_path / "slow-python"
    slow.write_text(f"#!/bin/sh\nsleep 8\nexec {record['python']} \"$@\"\n")
    slow.chmod(0o755)
    _record(pi_project).write_text(json.dumps({**record, "python": str(slow)}))
    observer = mesh_factory("observer")
    early = tool_call("write", {"path": "docs/early.md", "content": "before hello\n"})
    late = tool_call("write", {"path": "docs/late.md", "content": "after hello\n"})
    answered: dict[str, bool] = {}

    def once_joined(_req: dict) -> list[dict]:
        wait_for(lambda: "pi-1" in {a.name for a in observer.agents()}, "the slow sidecar to join as pi-1")
        time.sleep(1.0)  # hello's answer reaches the extension right after the join is written
        answered["yes"] = True
        return [late]

    def first(_req: dict) -> list[dict]:
        # the first model request: Pi did not wait for hello (the sidecar is still asleep)
        answered["joined_at_first_request"] = "pi-1" in {a.name for a in observer.agents()}
        return [early]

    with ScriptedOpenAI([first, once_joined, [text("done")]]) as server:
        run = run_pi(pi_project, "write the docs", server, agent_dir=tmp_path / "agent", timeout=90,
                     env={"PI_MESH_AGENT": "pi-1"})
        requests = server.chat_requests()
    assert run.returncode == 0, run.describe()
    assert len(requests) == 3, run.describe()
    assert answered["joined_at_first_request"] is False
    reason = ScriptedOpenAI.tool_results(requests[1])[early["id"]]
    assert reason.startswith("BLOCKED: pi-mesh could not check this write call: the pi-mesh sidecar has not "
                             "answered hello yet"), reason
    assert "fail closed" in reason
    assert not (pi_project / "docs" / "early.md").exists()
    assert ScriptedOpenAI.tool_results(requests[2])[late["id"]].startswith("Successfully wrote")
    assert (pi_project / "docs" / "late.md").read_text() == "after hello\n"


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            pass
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def test_an_abort_abandons_a_mesh_tool_request(pi_project: Path, mesh_factory, tmp_path: Path) -> None:
    (pi_project / "hooks.toml").write_text('[defaults]\nsidecar_timeout = "300s"\n')
    observer = mesh_factory("observer")
    listing = tool_call("list_agents", {})
    stopped: dict[str, int] = {}

    def stop_sidecar(_req: dict) -> list[dict]:
        pi = wait_for(lambda: next((a for a in observer.agents() if a.name == "pi-1"), None), "pi-1 to join")
        (kid,) = [c for c in _children(pi.pid) if "serve" in _cmdline(c)]
        os.kill(kid, signal.SIGSTOP)  # alive but silent: call_tool would wait for sidecar_timeout
        stopped["pid"] = kid
        return [listing]

    agent_dir = tmp_path / "agent"
    with ScriptedOpenAI([stop_sidecar, [text("after the abort")]]) as server:
        write_models_json(agent_dir, server.url, server.model)
        env = {**os.environ, "PI_CODING_AGENT_DIR": str(agent_dir), "PI_OFFLINE": "1", "PI_SKIP_VERSION_CHECK": "1",
               "PI_TELEMETRY": "0", "PI_MESH_AGENT": "pi-1"}
        proc = subprocess.Popen([shutil.which("node") or "node", str(pi_cli()), "--provider", PROVIDER, "--model",
                                 server.model, "--mode", "rpc", "--no-session"], cwd=pi_project, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        assert proc.stdin is not None and proc.stdout is not None
        events: queue.Queue = queue.Queue()

        def pump() -> None:
            for raw in proc.stdout:  # type: ignore[union-attr]
                try:
                    events.put(json.loads(raw))
                except ValueError:
                    pass

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()

        def wait_event(kind: str, timeout: float = 60) -> dict:
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
            proc.stdin.write(b'{"id": "p1", "type": "prompt", "message": "who is here?"}\n')
            proc.stdin.flush()
            started = wait_event("tool_execution_start")
            assert started["toolName"] == "list_agents"
            proc.stdin.write(b'{"id": "a1", "type": "abort"}\n')
            proc.stdin.flush()
            ended = wait_event("tool_execution_end")  # long before the 300 s sidecar_timeout
            assert ended["toolCallId"] == listing["id"] and ended["isError"] is True, ended
            said = json.dumps(ended["result"])
            assert "Operation aborted" in said and "did not answer" not in said, said
        finally:
            if "pid" in stopped:
                os.kill(stopped["pid"], signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            reader.join(timeout=5)
            for f in (proc.stdin, proc.stdout, proc.stderr):
                if f is not None:
                    f.close()
