"""A scripted Gemini API server (``:streamGenerateContent?alt=sse`` / ``:generateContent``) for the real Gemini CLI.

Requests that carry ``tools`` (the agent loop) consume the next scripted turn, a
list of ``parts`` built with :func:`text` and :func:`function_call`; other
requests (side queries) get a short text and do not advance the script.  When
the script is exhausted the answer is ``"(script exhausted)"`` and the request
is recorded in ``exhausted_requests``.  Every request is recorded, so a test can
read the ``functionResponse`` the CLI sent back after a scripted call.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


def text(value: str) -> dict:
    return {"text": value}


def function_call(name: str, args: dict) -> dict:
    return {"functionCall": {"name": name, "args": args}}


class ScriptedGemini:
    def __init__(self, turns: list[list[dict]], model: str = "gemini-2.5-pro") -> None:
        self.turns = list(turns)
        self.model = model
        self.requests: list[dict] = []
        self.loop_requests: list[dict] = []
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

    def _take(self, record: dict) -> list[dict]:
        with self._lock:
            self.loop_requests.append(record)
            if self._next < len(self.turns):
                self._next += 1
                return self.turns[self._next - 1]
            self.exhausted_requests.append(record)
            return [text("(script exhausted)")]

    def __enter__(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _record(self, body: object) -> dict:
                rec = {"method": self.command, "path": self.path.split("?", 1)[0], "query": self.path, "body": body}
                with owner._lock:
                    owner.requests.append(rec)
                return rec

            def _json(self, data: object) -> None:
                raw = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._record(None)
                self._json({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                rec = self._record(body)
                if rec["path"].endswith(":countTokens"):
                    self._json({"totalTokens": 10})
                    return
                parts = owner._take(rec) if isinstance(body, dict) and body.get("tools") else [text("ok")]
                chunk = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
                                         "index": 0}],
                         "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
                         "modelVersion": owner.model}
                if "alt=sse" not in self.path:
                    self._json(chunk)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                self.wfile.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="scripted-gemini", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
