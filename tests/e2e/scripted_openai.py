"""A scripted OpenAI Chat Completions server for driving real harness CLIs offline.

The server listens on 127.0.0.1 (ephemeral port) and answers
``POST /v1/chat/completions`` from a list of scripted assistant turns, streaming
the same SSE chunk sequence as the real API (``chat.completion.chunk`` objects,
a final usage chunk, then ``data: [DONE]``).  Every request (any method, any
path) is recorded so a test can inspect what the client sent, e.g. the
``role: "tool"`` message that carries the result of a scripted tool call.

A turn is a list of blocks built with :func:`text`, :func:`tool_call` and
:func:`pause`.  The finish reason is ``tool_calls`` when the turn contains a
tool call and ``stop`` otherwise.  A turn may also be a callable taking the
request record and returning such a list (a dynamic turn); it runs on the
server's request thread, so it may block (bounded!) to wait for something.

Every chat-completions request consumes the next turn.  When the script is
exhausted the server answers with text ``"(script exhausted)"`` and records
the request in ``exhausted_requests`` so a test can assert the harness did not
call the model more often than scripted.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

__all__ = ["ScriptedOpenAI", "text", "tool_call", "pause", "Turn"]

_ids = itertools.count(1)

Block = dict[str, Any]
Turn = Union[list[Block], Callable[[dict[str, Any]], list[Block]]]

EXHAUSTED_TEXT = "(script exhausted)"


def text(value: str) -> Block:
    """A plain assistant text block for a scripted turn."""
    return {"type": "text", "text": value}


def tool_call(name: str, arguments: dict[str, Any], id: str | None = None) -> Block:
    """A function tool call block for a scripted turn (arguments are JSON-encoded on the wire)."""
    return {"type": "tool_call", "id": id or f"call_scripted_{next(_ids):04d}", "name": name, "arguments": arguments}


def pause(seconds: float) -> Block:
    """Sleep ``seconds`` after the response headers and first chunk, before streaming the rest.

    Keeps the harness "streaming" for a while, e.g. so an extension timer fires mid-turn.
    """
    return {"type": "pause", "seconds": float(seconds)}


def _chunks(s: str, n: int) -> list[str]:
    return [s[i : i + n] for i in range(0, len(s), n)] or [""]


class ScriptedOpenAI:
    """Context manager running the scripted server in a background thread."""

    def __init__(self, turns: list[Turn], model: str = "scripted-model") -> None:
        self.turns = list(turns)
        self.model = model
        self.requests: list[dict[str, Any]] = []  # every request, in arrival order
        self.exhausted_requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next_turn = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL including ``/v1`` (what an OpenAI client calls ``baseUrl``)."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "ScriptedOpenAI":
        owner = self

        class Handler(_Handler):
            scripted = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "ScriptedOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script ------------------------------------------------------------
    @property
    def turns_used(self) -> int:
        with self._lock:
            return self._next_turn

    def _take_turn(self, record: dict[str, Any]) -> list[Block]:
        with self._lock:
            if self._next_turn < len(self.turns):
                turn = self.turns[self._next_turn]
                self._next_turn += 1
            else:
                self.exhausted_requests.append(record)
                return [text(EXHAUSTED_TEXT)]
        return turn(record) if callable(turn) else list(turn)

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(record)

    # -- inspection helpers ------------------------------------------------
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of all POST /v1/chat/completions requests, in arrival order."""
        with self._lock:
            return [r["body"] for r in self.requests
                    if r["method"] == "POST" and r["path"].endswith("/chat/completions")]

    def chat_request_times(self) -> list[float]:
        """Arrival times (``time.time()``) of all POST /v1/chat/completions requests."""
        with self._lock:
            return [r["time"] for r in self.requests
                    if r["method"] == "POST" and r["path"].endswith("/chat/completions")]

    @staticmethod
    def tool_results(body: dict[str, Any]) -> dict[str, str]:
        """``{tool_call_id: content}`` for every ``role: "tool"`` message in a request body."""
        out: dict[str, str] = {}
        for msg in body.get("messages", []):
            if msg.get("role") == "tool":
                content = msg.get("content")
                if isinstance(content, list):  # content parts form
                    content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
                out[msg.get("tool_call_id", "")] = content if isinstance(content, str) else json.dumps(content)
        return out

    @staticmethod
    def user_texts(body: dict[str, Any]) -> list[str]:
        """Text of every ``role: "user"`` message in a request body, in order."""
        out: list[str] = []
        for msg in body.get("messages", []):
            if msg.get("role") != "user":
                continue
            content = msg.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out.append("\n".join(p.get("text", "") for p in content if isinstance(p, dict)))
        return out


class _Handler(BaseHTTPRequestHandler):
    scripted: ScriptedOpenAI
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
            "time": time.time(),
        }
        self.scripted._record(record)
        return record

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # -- verbs -------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._record(None)
        self._json(200, {})

    def do_GET(self) -> None:
        record = self._record(None)
        if record["path"].rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": self.scripted.model, "object": "model",
                                                         "created": 0, "owned_by": "scripted"}]})
        else:
            self._json(404, {"error": {"message": f"scripted server: no route {record['path']}", "type": "not_found"}})

    def do_POST(self) -> None:
        body = self._read_body()
        record = self._record(body)
        if not record["path"].endswith("/chat/completions") or not isinstance(body, dict):
            self._json(404, {"error": {"message": f"scripted server: no route {record['path']}",
                                       "type": "invalid_request_error"}})
            return
        blocks = self.scripted._take_turn(record)
        model = body.get("model") or self.scripted.model
        if body.get("stream"):
            self._stream(model, blocks)
        else:
            self._json(200, self._completion(model, blocks))

    # -- responses ---------------------------------------------------------
    @staticmethod
    def _finish_reason(blocks: list[Block]) -> str:
        return "tool_calls" if any(b["type"] == "tool_call" for b in blocks) else "stop"

    @staticmethod
    def _usage() -> dict[str, int]:
        return {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}

    def _completion(self, model: str, blocks: list[Block]) -> dict[str, Any]:
        for b in blocks:
            if b["type"] == "pause":
                time.sleep(b["seconds"])
        content = "".join(b["text"] for b in blocks if b["type"] == "text") or None
        calls = [{"id": b["id"], "type": "function",
                  "function": {"name": b["name"], "arguments": json.dumps(b["arguments"])}}
                 for b in blocks if b["type"] == "tool_call"]
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        return {"id": f"chatcmpl-scripted-{uuid.uuid4().hex[:16]}", "object": "chat.completion",
                "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": self._finish_reason(blocks)}],
                "usage": self._usage()}

    def _stream(self, model: str, blocks: list[Block]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk_id = f"chatcmpl-scripted-{uuid.uuid4().hex[:16]}"
        created = int(time.time())
        out = self.wfile

        def send(delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, int] | None = None) -> None:
            chunk: dict[str, Any] = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                                     "model": model, "choices": []}
            if delta is not None:
                chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            if usage is not None:
                chunk["usage"] = usage
            out.write(f"data: {json.dumps(chunk)}\n\n".encode())
            out.flush()

        try:
            send({"role": "assistant", "content": ""})
            tool_index = 0
            for block in blocks:
                kind = block["type"]
                if kind == "pause":
                    time.sleep(block["seconds"])
                elif kind == "text":
                    for piece in _chunks(block["text"], 40):
                        send({"content": piece})
                elif kind == "tool_call":
                    pieces = _chunks(json.dumps(block["arguments"]), 40)
                    send({"tool_calls": [{"index": tool_index, "id": block["id"], "type": "function",
                                          "function": {"name": block["name"], "arguments": pieces[0]}}]})
                    for piece in pieces[1:]:
                        send({"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]})
                    tool_index += 1
                else:
                    raise ValueError(f"unsupported scripted block type {kind!r}")
            send({}, finish=self._finish_reason(blocks))
            send(None, usage=self._usage())
            out.write(b"data: [DONE]\n\n")
            out.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (e.g. aborted); nothing to stream to
