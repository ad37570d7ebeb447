"""Prove the real-Pi rig: a throw-away project extension driven by a scripted model.

These tests run the real ``pi`` CLI (npm @mariozechner/pi-coding-agent, installed into
build/npm on first use) against :mod:`scripted_openai`.  They pin down the parts of the
Pi extension API the mesh adapter depends on: ``tool_call`` blocking and how the reason
reaches the model, ``registerTool`` with a plain JSON Schema, ``sendMessage`` steer /
follow-up delivery from a timer, ``registerCommand`` in ``-p`` mode, child processes and
the session lifecycle events.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pi_rig import run_pi
from scripted_openai import ScriptedOpenAI, text, tool_call

pytestmark = [pytest.mark.e2e]


def make_project(tmp_path: Path, extension_ts: str) -> tuple[Path, Path]:
    """A project dir with ``.pi/extensions/probe/index.ts``; returns (project, probe log path)."""
    project = tmp_path / "project"
    ext = project / ".pi" / "extensions" / "probe"
    ext.mkdir(parents=True)
    (ext / "index.ts").write_text(extension_ts)
    return project, tmp_path / "probe.log"


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


PROBE_HEADER = """\
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";
import { isToolCallEventType } from "@mariozechner/pi-coding-agent";
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";

const log = (entry: unknown) => appendFileSync(process.env.PROBE_LOG!, JSON.stringify(entry) + "\\n");
"""

BLOCK_EXT = PROBE_HEADER + """
export default function (pi: ExtensionAPI) {
  pi.on("tool_call", async (event) => {
    log({ ev: "tool_call", event });
    if (isToolCallEventType("write", event) && event.input.path.includes("blocked")) {
      return { block: true, reason: `PROBE: ${event.input.path} is reserved by agent bob (refactoring)` };
    }
    return undefined;
  });
}
"""


def test_tool_call_block_reason_is_the_tool_result_the_model_sees(pi_install: Path, tmp_path: Path) -> None:
    project, log_path = make_project(tmp_path, BLOCK_EXT)
    blocked = tool_call("write", {"path": "src/blocked/secret.txt", "content": "must not land"})
    allowed = tool_call("write", {"path": "src/allowed.txt", "content": "fine"})
    with ScriptedOpenAI([[blocked], [allowed], [text("done")]]) as server:
        run = run_pi(project, "write two files", server, agent_dir=tmp_path / "agent",
                     env={"PROBE_LOG": str(log_path)})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
        assert not server.exhausted_requests, run.describe()
    assert len(requests) == 3, run.describe()

    # The blocked write never ran; the unblocked one did (so the extension is not blocking everything).
    assert not (project / "src" / "blocked" / "secret.txt").exists()
    assert not (project / "src" / "blocked").exists()
    assert (project / "src" / "allowed.txt").read_text() == "fine"

    # The model's next request carries the reason verbatim as the tool result of the blocked call.
    reason = "PROBE: src/blocked/secret.txt is reserved by agent bob (refactoring)"
    assert ScriptedOpenAI.tool_results(requests[1]) == {blocked["id"]: reason}
    assert ScriptedOpenAI.tool_results(requests[2])[allowed["id"]].startswith("Successfully wrote")

    # Pi reports the blocked call as an error result; the allowed one as success.
    ends = run.tool_ends()
    assert ends[blocked["id"]]["isError"] is True
    assert ends[blocked["id"]]["result"]["content"] == [{"type": "text", "text": reason}]
    assert ends[allowed["id"]]["isError"] is False

    # The tool_call event shape the extension received.
    calls = [e["event"] for e in read_log(log_path) if e["ev"] == "tool_call"]
    assert calls == [
        {"type": "tool_call", "toolName": "write", "toolCallId": blocked["id"],
         "input": {"path": "src/blocked/secret.txt", "content": "must not land"}},
        {"type": "tool_call", "toolName": "write", "toolCallId": allowed["id"],
         "input": {"path": "src/allowed.txt", "content": "fine"}},
    ]


TOOL_EXT = PROBE_HEADER + """
export default function (pi: ExtensionAPI) {
  pi.registerTool({
    name: "probe_echo",
    label: "Probe echo",
    description: "Echo a word a number of times (test tool).",
    parameters: {
      type: "object",
      properties: { word: { type: "string" }, times: { type: "integer", minimum: 1 } },
      required: ["word", "times"],
      additionalProperties: false,
    } as any,
    async execute(toolCallId: string, params: any, signal: AbortSignal | undefined, onUpdate: any, ctx: any) {
      log({ ev: "execute", toolCallId, params, nargs: arguments.length, hasSignal: signal !== undefined, cwd: ctx.cwd });
      if (params.word === "boom") throw new Error("probe_echo refuses to say boom");
      return {
        content: [{ type: "text", text: `echo: ${Array(params.times).fill(params.word).join(" ")}` }],
        details: { times: params.times },
      };
    },
  });
}
"""


def test_register_tool_with_plain_json_schema_round_trips(pi_install: Path, tmp_path: Path) -> None:
    project, log_path = make_project(tmp_path, TOOL_EXT)
    ok = tool_call("probe_echo", {"word": "mesh", "times": 3})
    boom = tool_call("probe_echo", {"word": "boom", "times": 1})
    invalid = tool_call("probe_echo", {"word": "x"})  # missing required "times"
    with ScriptedOpenAI([[ok, boom], [invalid], [text("done")]]) as server:
        run = run_pi(project, "use the echo tool", server, agent_dir=tmp_path / "agent",
                     env={"PROBE_LOG": str(log_path)})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
    assert len(requests) == 3, run.describe()

    # The registered tool is offered to the model with our JSON Schema unchanged.
    offered = {t["function"]["name"]: t["function"] for t in requests[0]["tools"]}
    assert {"read", "bash", "edit", "write", "probe_echo"} <= set(offered)
    assert offered["probe_echo"]["parameters"]["required"] == ["word", "times"]
    assert offered["probe_echo"]["description"] == "Echo a word a number of times (test tool)."

    results = ScriptedOpenAI.tool_results(requests[1])
    assert results[ok["id"]] == "echo: mesh mesh mesh"
    assert results[boom["id"]] == "probe_echo refuses to say boom"  # a thrown Error becomes the result text
    assert run.tool_ends()[ok["id"]]["isError"] is False
    assert run.tool_ends()[boom["id"]]["isError"] is True
    assert run.tool_ends()[ok["id"]]["result"]["details"] == {"times": 3}

    # Schema validation happens in Pi before execute: the invalid call never reached the extension.
    invalid_result = ScriptedOpenAI.tool_results(requests[2])[invalid["id"]]
    assert invalid_result.startswith('Validation failed for tool "probe_echo"'), invalid_result
    executed = [e for e in read_log(log_path) if e["ev"] == "execute"]
    assert [e["toolCallId"] for e in executed] == [ok["id"], boom["id"]]
    assert executed[0]["params"] == {"word": "mesh", "times": 3}
    assert executed[0]["nargs"] == 5 and executed[0]["hasSignal"] is True
    assert Path(executed[0]["cwd"]).resolve() == project.resolve()


TIMER_EXT = PROBE_HEADER + """
export default function (pi: ExtensionAPI) {
  pi.registerTool({
    name: "probe_arm",
    label: "Arm timer",
    description: "Arm a timer that injects messages (test tool).",
    parameters: { type: "object", properties: {}, additionalProperties: false } as any,
    async execute() {
      // A plain timer, outside any Pi event handler: it waits for the GO file the scripted
      // model writes while Pi is streaming its next request, then queues two messages.
      const timer = setInterval(() => {
        if (!existsSync(process.env.PROBE_GO!)) return;
        clearInterval(timer);
        pi.sendMessage({ customType: "probe", content: "STEER from timer", display: true }, { deliverAs: "steer" });
        pi.sendMessage({ customType: "probe", content: "FOLLOWUP from timer", display: true },
                       { deliverAs: "followUp", triggerTurn: true });
        writeFileSync(process.env.PROBE_SENT!, "sent");
      }, 20);
      return { content: [{ type: "text", text: "armed" }], details: {} };
    },
  });
}
"""


def test_send_message_steer_and_follow_up_from_a_timer_reach_the_model(pi_install: Path, tmp_path: Path) -> None:
    project, log_path = make_project(tmp_path, TIMER_EXT)
    (project / "notes.txt").write_text("some notes\n")
    go, sent = tmp_path / "go", tmp_path / "sent"
    read1 = tool_call("read", {"path": "notes.txt"})
    read2 = tool_call("read", {"path": "notes.txt"})

    def streaming_turn(_record: dict[str, Any]) -> list[dict[str, Any]]:
        # Pi is now waiting on this response (it is "streaming"): let the extension's timer fire.
        go.write_text("go")
        deadline = time.monotonic() + 20
        while not sent.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return [read1]

    arm = tool_call("probe_arm", {})
    turns = [[arm], streaming_turn, [read2], [text("nothing more to do")], [text("saw the follow-up")]]
    with ScriptedOpenAI(turns) as server:
        run = run_pi(project, "arm the timer", server, agent_dir=tmp_path / "agent",
                     env={"PROBE_LOG": str(log_path), "PROBE_GO": str(go), "PROBE_SENT": str(sent)})
        requests = server.chat_requests()
        assert run.returncode == 0, run.describe()
        assert not server.exhausted_requests, run.describe()
    assert sent.exists(), "the extension timer never sent its messages"
    assert len(requests) == 5, run.describe()

    users = [ScriptedOpenAI.user_texts(body) for body in requests]
    assert users[1] == ["arm the timer"]  # queued messages are not in the in-flight request
    # steer: delivered right after the current turn's tool calls ran, before the next model call ...
    assert users[2] == ["arm the timer", "STEER from timer"]
    roles = [m["role"] for m in requests[2]["messages"]]
    assert roles[-3:] == ["assistant", "tool", "user"], roles  # ... i.e. after the read result
    # followUp: held back while the model keeps calling tools ...
    assert users[3] == ["arm the timer", "STEER from timer"]
    # ... and delivered once the agent would otherwise stop
    assert users[4] == ["arm the timer", "STEER from timer", "FOLLOWUP from timer"]
    assert requests[4]["messages"][-2] == {"role": "assistant", "content": "nothing more to do"}
    custom = run.messages("custom")
    assert [(m["customType"], m["content"]) for m in custom] == [
        ("probe", "STEER from timer"), ("probe", "FOLLOWUP from timer")]


COMMAND_EXT = PROBE_HEADER + """
export default function (pi: ExtensionAPI) {
  pi.on("session_start", async (event, ctx) => { log({ ev: "session_start", event, hasUI: ctx.hasUI }); });
  pi.on("session_shutdown", async (event) => {
    await new Promise((resolve) => setTimeout(resolve, 200));  // async shutdown work is awaited
    log({ ev: "session_shutdown", event });
  });
  pi.registerCommand("mesh", {
    description: "Mesh status (test command)",
    handler: async (args, ctx) => {
      const child = spawn(process.execPath, ["-e", "process.stdout.write('child:' + process.argv[1])", args],
                          { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout!.on("data", (chunk) => { out += chunk; });
      const code = await new Promise((resolve) => child.on("close", resolve));
      log({ ev: "command", args, hasUI: ctx.hasUI, child: out, code });
    },
  });
}
"""


def test_register_command_runs_in_print_mode_without_a_model_call(pi_install: Path, tmp_path: Path) -> None:
    project, log_path = make_project(tmp_path, COMMAND_EXT)
    with ScriptedOpenAI([[text("the model must not be called")]]) as server:
        run = run_pi(project, "/mesh status --all", server, agent_dir=tmp_path / "agent",
                     env={"PROBE_LOG": str(log_path)})
        assert run.returncode == 0, run.describe()
        assert server.chat_requests() == []
    assert run.of_type("agent_start") == []
    log = read_log(log_path)
    assert [e["ev"] for e in log] == ["session_start", "command", "session_shutdown"]
    assert log[0]["event"] == {"type": "session_start", "reason": "startup"}
    assert log[0]["hasUI"] is False
    assert log[1] == {"ev": "command", "args": "status --all", "hasUI": False, "child": "child:status --all", "code": 0}
    assert log[2]["event"] == {"type": "session_shutdown", "reason": "quit"}
