"""A scripted Anthropic Messages API server for driving real harness CLIs offline.

The server listens on 127.0.0.1 (ephemeral port) and answers ``POST /v1/messages``
from a list of scripted assistant turns, streaming the same SSE event sequence as
the real API (message_start, content_block_start/delta/stop, message_delta,
message_stop).  Every request (any method, any path) is recorded so a test can
inspect what the client sent, e.g. the ``tool_result`` that follows a tool call.

A turn is a list of content blocks built with :func:`text` and :func:`tool_use`.
The stop reason is ``tool_use`` when the turn contains a tool_use block and
``end_turn`` otherwise.

Only "agent loop" requests consume scripted turns: requests that carry a
non-empty ``tools`` list.  Side requests a client makes without tools (titles,
summaries, quota probes) get a short ``end_turn`` text answer and do not
advance the script.  When the script is exhausted the server answers with
``end_turn`` text ``"(script exhausted)"`` and records the fact in
``exhausted_requests``.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

from scripted_server import EXHAUSTED_TEXT, ScriptedHandler, ScriptedServer, chunks, sse

__all__ = ["ScriptedAnthropic", "result_text", "text", "tool_results", "tool_use"]

_ids = itertools.count(1)


def text(value: str) -> dict[str, Any]:
    """A text content block for a scripted turn."""
    return {"type": "text", "text": value}


def tool_use(name: str, input: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    """A tool_use content block for a scripted turn."""
    return {
        "type": "tool_use",
        "id": id or f"toolu_scripted_{next(_ids):04d}",
        "name": name,
        "input": input,
    }


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of a request body's last message (the user's)."""
    last = body["messages"][-1]
    assert last["role"] == "user"
    content = last["content"] if isinstance(last["content"], list) else []
    return [block for block in content if block.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    """The text of a ``tool_result`` block (a string, or text parts)."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [])


class _Handler(ScriptedHandler):
    scripted: ScriptedAnthropic

    def extra_headers(self) -> dict[str, str]:
        return {"request-id": f"req_scripted_{uuid.uuid4().hex[:12]}"}

    def do_HEAD(self) -> None:
        self._record(None)
        self._json(200, {})

    def get(self, record: dict[str, Any]) -> None:
        if record["path"] in ("/v1/models", "/v1/models/"):
            self._json(200, {"data": [{"type": "model", "id": self.scripted.model, "display_name": "Scripted"}],
                             "has_more": False, "first_id": self.scripted.model, "last_id": self.scripted.model})
        else:
            self._json(200, {})

    def post(self, record: dict[str, Any], body: Any) -> None:
        path = record["path"]
        if path == "/v1/messages/count_tokens":
            approx = len(json.dumps(body)) // 4 if body is not None else 0
            self._json(200, {"input_tokens": max(1, approx)})
            return
        if path != "/v1/messages" or not isinstance(body, dict):
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"scripted server: no route {path}"}})
            return
        if body.get("tools"):
            blocks = self.scripted.take_turn(record)
        else:
            blocks = [text("ok")]
        self._answer(body, blocks)

    # -- responses ---------------------------------------------------------
    @staticmethod
    def _stop_reason(blocks: list[dict[str, Any]]) -> str:
        return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"

    def _whole(self, model: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": f"msg_scripted_{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": self._stop_reason(blocks),
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10},
        }

    def _stream(self, model: str, blocks: list[dict[str, Any]]) -> None:
        self._start_sse(no_cache=True)
        out = self.wfile
        start = self._whole(model, [])
        start.update(stop_reason=None, usage={"input_tokens": 10, "output_tokens": 1})
        out.write(sse({"type": "message_start", "message": start}, "message_start"))
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                out.write(sse({"type": "content_block_start", "index": index,
                               "content_block": {"type": "text", "text": ""}}, "content_block_start"))
                for piece in chunks(block["text"], 40):
                    out.write(sse({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "text_delta", "text": piece}}, "content_block_delta"))
            elif block["type"] == "tool_use":
                out.write(sse({"type": "content_block_start", "index": index,
                               "content_block": {"type": "tool_use", "id": block["id"],
                                                 "name": block["name"], "input": {}}}, "content_block_start"))
                for piece in chunks(json.dumps(block["input"]), 40):
                    out.write(sse({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "input_json_delta", "partial_json": piece}},
                                  "content_block_delta"))
            else:
                raise ValueError(f"unsupported scripted block type {block['type']!r}")
            out.write(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        out.write(sse({"type": "message_delta",
                       "delta": {"stop_reason": self._stop_reason(blocks), "stop_sequence": None},
                       "usage": {"output_tokens": 10}}, "message_delta"))
        out.write(sse({"type": "message_stop"}, "message_stop"))
        out.flush()


class ScriptedAnthropic(ScriptedServer):
    """Context manager running the scripted server in a background thread."""

    handler = _Handler
    thread_name = "scripted-anthropic"

    def __init__(self, turns: list[list[dict[str, Any]]], model: str = "claude-scripted") -> None:
        super().__init__(turns, model)

    def exhausted_turn(self) -> list[dict[str, Any]]:
        return [text(EXHAUSTED_TEXT)]

    def message_requests(self) -> list[dict[str, Any]]:
        """Bodies of all POST /v1/messages requests (loop and side requests)."""
        return [r["body"] for r in self.posts(lambda path: path == "/v1/messages")]
