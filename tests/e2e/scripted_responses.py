"""A scripted OpenAI *Responses* API server (``POST /v1/responses``, SSE) for driving the real Codex CLI offline.

Each request consumes the next scripted turn: a list of output items (built with
:func:`message` and :func:`custom_tool_call`), streamed as
``response.created``, ``response.output_item.added`` / ``.done`` per item and
``response.completed``.  When the script is exhausted the server answers with a
short message and records the request in ``exhausted_requests``.  Every request
is recorded so a test can read what the client sent back, e.g. the
``custom_tool_call_output`` that follows a scripted ``apply_patch``.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from scripted_server import EXHAUSTED_TEXT, ScriptedHandler, ScriptedServer, sse

_ids = itertools.count(1)


def message(text: str) -> dict:
    n = next(_ids)
    return {"type": "message", "role": "assistant", "id": f"msg_scripted_{n}", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def custom_tool_call(name: str, input: str) -> dict:
    n = next(_ids)
    return {"type": "custom_tool_call", "id": f"ctc_scripted_{n}", "call_id": f"call_scripted_{n}", "name": name,
            "input": input, "status": "completed"}


def function_call(name: str, arguments: dict, namespace: str | None = None) -> dict:
    n = next(_ids)
    item = {"type": "function_call", "id": f"fc_scripted_{n}", "call_id": f"call_scripted_{n}", "name": name,
            "arguments": json.dumps(arguments), "status": "completed"}
    if namespace:
        item["namespace"] = namespace  # a tool of a deferred namespace (an MCP server's tools in Codex)
    return item


def tool_search_call(query: str) -> dict:
    n = next(_ids)
    return {"type": "tool_search_call", "id": f"ts_scripted_{n}", "call_id": f"call_scripted_{n}",
            "execution": "client", "arguments": {"query": query}, "status": "completed"}


class _Handler(ScriptedHandler):
    scripted: ScriptedResponses

    def get(self, record: dict[str, Any]) -> None:
        self._json(200, {"object": "list", "data": [], "models": []})

    def post(self, record: dict[str, Any], body: Any) -> None:
        if record["path"] != "/v1/responses":
            self._json(404, {"error": {"message": f"scripted server: no route {record['path']}"}})
            return
        items = self.scripted.take_turn(record)
        n = next(_ids)
        self._start_sse()

        def event(kind: str, data: dict) -> None:
            self.wfile.write(sse({"type": kind, **data}, kind))

        event("response.created", {"response": {"id": f"resp_scripted_{n}"}})
        for i, item in enumerate(items):
            event("response.output_item.added", {"output_index": i, "item": item})
            event("response.output_item.done", {"output_index": i, "item": item})
        event("response.completed", {"response": {"id": f"resp_scripted_{n}", "usage": {
            "input_tokens": 10, "input_tokens_details": None, "output_tokens": 5,
            "output_tokens_details": None, "total_tokens": 15}}})
        self.wfile.flush()


class ScriptedResponses(ScriptedServer):
    handler = _Handler
    thread_name = "scripted-responses"

    def __init__(self, turns: list[list[dict]]) -> None:
        super().__init__(turns, model="")

    def exhausted_turn(self) -> list[dict]:
        return [message(EXHAUSTED_TEXT)]

    def responses_requests(self) -> list[dict]:
        return [r["body"] for r in self.posts(lambda path: path == "/v1/responses")]
