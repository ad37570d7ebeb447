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
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ScriptedAnthropic", "text", "tool_use"]

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


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(s: str, n: int) -> list[str]:
    return [s[i : i + n] for i in range(0, len(s), n)] or [""]


class ScriptedAnthropic:
    """Context manager running the scripted server in a background thread."""

    def __init__(self, turns: list[list[dict[str, Any]]], model: str = "claude-scripted") -> None:
        self.turns = list(turns)
        self.model = model
        self.requests: list[dict[str, Any]] = []  # every request, in arrival order
        self.loop_requests: list[dict[str, Any]] = []  # requests that consumed (or wanted) a turn
        self.exhausted_requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next_turn = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ScriptedAnthropic":
        owner = self

        class Handler(_Handler):
            scripted = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ScriptedAnthropic":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script ------------------------------------------------------------
    @property
    def turns_used(self) -> int:
        return self._next_turn

    def _take_turn(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            self.loop_requests.append(record)
            if self._next_turn < len(self.turns):
                turn = self.turns[self._next_turn]
                self._next_turn += 1
                return turn
            self.exhausted_requests.append(record)
            return [text("(script exhausted)")]

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(record)

    def message_requests(self) -> list[dict[str, Any]]:
        """Bodies of all POST /v1/messages requests (loop and side requests)."""
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/messages"]


class _Handler(BaseHTTPRequestHandler):
    scripted: ScriptedAnthropic
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    # -- helpers -----------------------------------------------------------
    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _record(self, body: Any) -> dict[str, Any]:
        path = self.path.split("?", 1)[0]
        record = {
            "method": self.command,
            "path": path,
            "query": self.path[len(path) + 1 :],
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        self.scripted._record(record)
        return record

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_scripted_{uuid.uuid4().hex[:12]}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # -- verbs -------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._record(None)
        self._json(200, {})

    def do_GET(self) -> None:
        record = self._record(None)
        if record["path"] in ("/v1/models", "/v1/models/"):
            self._json(200, {"data": [{"type": "model", "id": self.scripted.model, "display_name": "Scripted"}],
                             "has_more": False, "first_id": self.scripted.model, "last_id": self.scripted.model})
        else:
            self._json(200, {})

    def do_POST(self) -> None:
        body = self._read_body()
        record = self._record(body)
        path = record["path"]
        if path == "/v1/messages/count_tokens":
            approx = len(json.dumps(body)) // 4 if body is not None else 0
            self._json(200, {"input_tokens": max(1, approx)})
            return
        if path != "/v1/messages" or not isinstance(body, dict):
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"scripted server: no route {path}"}})
            return
        if body.get("tools"):
            blocks = self.scripted._take_turn(record)
        else:
            blocks = [text("ok")]
        model = body.get("model") or self.scripted.model
        if body.get("stream"):
            self._stream(model, blocks)
        else:
            self._json(200, self._message(model, blocks))

    # -- responses ---------------------------------------------------------
    @staticmethod
    def _stop_reason(blocks: list[dict[str, Any]]) -> str:
        return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"

    def _message(self, model: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
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
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", f"req_scripted_{uuid.uuid4().hex[:12]}")
        self.end_headers()
        self.close_connection = True
        out = self.wfile
        start = self._message(model, [])
        start.update(stop_reason=None, usage={"input_tokens": 10, "output_tokens": 1})
        out.write(_sse("message_start", {"type": "message_start", "message": start}))
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                out.write(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "text", "text": ""}}))
                for piece in _chunks(block["text"], 40):
                    out.write(_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "text_delta", "text": piece}}))
            elif block["type"] == "tool_use":
                out.write(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "tool_use", "id": block["id"],
                                                                         "name": block["name"], "input": {}}}))
                for piece in _chunks(json.dumps(block["input"]), 40):
                    out.write(_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "input_json_delta", "partial_json": piece}}))
            else:
                raise ValueError(f"unsupported scripted block type {block['type']!r}")
            out.write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        out.write(_sse("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": self._stop_reason(blocks), "stop_sequence": None},
                                         "usage": {"output_tokens": 10}}))
        out.write(_sse("message_stop", {"type": "message_stop"}))
        out.flush()
