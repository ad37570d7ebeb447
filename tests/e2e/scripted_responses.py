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
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

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


class ScriptedResponses:
    def __init__(self, turns: list[list[dict]]) -> None:
        self.turns = list(turns)
        self.requests: list[dict] = []
        self.exhausted_requests: list[dict] = []
        self._next = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def turns_used(self) -> int:
        return self._next

    def responses_requests(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/responses"]

    def _take(self, record: dict) -> list[dict]:
        with self._lock:
            if self._next < len(self.turns):
                self._next += 1
                return self.turns[self._next - 1]
            self.exhausted_requests.append(record)
            return [message("(script exhausted)")]

    def __enter__(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _record(self, body: object) -> dict:
                rec = {"method": self.command, "path": self.path.split("?", 1)[0], "body": body}
                with owner._lock:
                    owner.requests.append(rec)
                return rec

            def _json(self, status: int, data: object) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._record(None)
                self._json(200, {"object": "list", "data": [], "models": []})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                rec = self._record(body)
                if rec["path"] != "/v1/responses":
                    self._json(404, {"error": {"message": f"scripted server: no route {rec['path']}"}})
                    return
                items = owner._take(rec)
                n = next(_ids)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

                def event(kind: str, data: dict) -> None:
                    self.wfile.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode())

                event("response.created", {"response": {"id": f"resp_scripted_{n}"}})
                for i, item in enumerate(items):
                    event("response.output_item.added", {"output_index": i, "item": item})
                    event("response.output_item.done", {"output_index": i, "item": item})
                event("response.completed", {"response": {"id": f"resp_scripted_{n}", "usage": {
                    "input_tokens": 10, "input_tokens_details": None, "output_tokens": 5,
                    "output_tokens_details": None, "total_tokens": 15}}})
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="scripted-responses", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
