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
import time
import uuid
from collections.abc import Callable
from typing import Any, Union

from scripted_server import EXHAUSTED_TEXT, ScriptedHandler, ScriptedServer, chunks, sse

__all__ = ["ScriptedOpenAI", "Turn", "pause", "text", "tool_call"]

_ids = itertools.count(1)

Block = dict[str, Any]
Turn = Union[list[Block], Callable[[dict[str, Any]], list[Block]]]


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


def _is_chat(path: str) -> bool:
    return path.endswith("/chat/completions")


class _Handler(ScriptedHandler):
    scripted: ScriptedOpenAI

    def do_HEAD(self) -> None:
        self._record(None)
        self._json(200, {})

    def get(self, record: dict[str, Any]) -> None:
        if record["path"].rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": self.scripted.model, "object": "model",
                                                         "created": 0, "owned_by": "scripted"}]})
        else:
            self._json(404, {"error": {"message": f"scripted server: no route {record['path']}", "type": "not_found"}})

    def post(self, record: dict[str, Any], body: Any) -> None:
        if not _is_chat(record["path"]) or not isinstance(body, dict):
            self._json(404, {"error": {"message": f"scripted server: no route {record['path']}",
                                       "type": "invalid_request_error"}})
            return
        self._answer(body, self.scripted.take_turn(record))

    # -- responses ---------------------------------------------------------
    @staticmethod
    def _finish_reason(blocks: list[Block]) -> str:
        return "tool_calls" if any(b["type"] == "tool_call" for b in blocks) else "stop"

    @staticmethod
    def _usage() -> dict[str, int]:
        return {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}

    def _whole(self, model: str, blocks: list[Block]) -> dict[str, Any]:
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
        self._start_sse(no_cache=True)
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
            out.write(sse(chunk))
            out.flush()

        try:
            send({"role": "assistant", "content": ""})
            tool_index = 0
            for block in blocks:
                kind = block["type"]
                if kind == "pause":
                    time.sleep(block["seconds"])
                elif kind == "text":
                    for piece in chunks(block["text"], 40):
                        send({"content": piece})
                elif kind == "tool_call":
                    pieces = chunks(json.dumps(block["arguments"]), 40)
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


class ScriptedOpenAI(ScriptedServer):
    """Context manager running the scripted server in a background thread."""

    handler = _Handler
    thread_name = "scripted-openai"
    url_path = "/v1"  # the base URL includes /v1 (what an OpenAI client calls ``baseUrl``)

    def __init__(self, turns: list[Turn], model: str = "scripted-model") -> None:
        super().__init__(turns, model)

    def exhausted_turn(self) -> list[Block]:
        return [text(EXHAUSTED_TEXT)]

    # -- inspection helpers ------------------------------------------------
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of all POST /v1/chat/completions requests, in arrival order."""
        return [r["body"] for r in self.posts(_is_chat)]

    def chat_request_times(self) -> list[float]:
        """Arrival times (``time.time()``) of all POST /v1/chat/completions requests."""
        return [r["time"] for r in self.posts(_is_chat)]

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
