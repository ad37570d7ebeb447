"""The shared part of the scripted model servers (``scripted_anthropic``, ``scripted_openai``,
``scripted_gemini``, ``scripted_responses``): record every request, hand out scripted turns,
and answer JSON or SSE from a :class:`~http.server.ThreadingHTTPServer` on 127.0.0.1
(ephemeral port) in a background thread.

A server subclass says what its wire format differs in: its handler class (the routes, via
:meth:`ScriptedHandler.get` / :meth:`ScriptedHandler.post`), the turn it answers once the
script is exhausted (:meth:`ScriptedServer.exhausted_turn`), and the path its :attr:`url` ends in.

A turn is a list of blocks, or a callable taking the request record and returning one (a
dynamic turn: it runs on the server's request thread, so it may block - bounded! - to wait for
something).  The handler decides which requests consume a turn (:meth:`ScriptedServer.take_turn`);
those are also kept in ``loop_requests``, and the ones that came after the script ran out in
``exhausted_requests``, so a test can assert the harness did not call the model more often than
scripted.

Every request (any method, any path) is recorded as ``{"method", "path", "query", "headers",
"body", "time"}`` in ``requests``, in arrival order.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["EXHAUSTED_TEXT", "ScriptedHandler", "ScriptedServer", "chunks", "sse"]

EXHAUSTED_TEXT = "(script exhausted)"


def chunks(s: str, n: int) -> list[str]:
    """``s`` in pieces of ``n`` characters (one empty piece for an empty string)."""
    return [s[i : i + n] for i in range(0, len(s), n)] or [""]


def sse(data: Any, event: str | None = None, eol: str = "\n") -> bytes:
    """One server-sent event: an optional ``event:`` line, a ``data:`` line of JSON, a blank line."""
    head = f"event: {event}{eol}" if event is not None else ""
    return f"{head}data: {json.dumps(data)}{eol}{eol}".encode()


class ScriptedServer(ABC):
    """Context manager running a scripted model server in a background thread."""

    handler: type[ScriptedHandler]  # set by each subclass
    thread_name = "scripted-server"
    url_path = ""  # appended to http://host:port in :attr:`url`

    def __init__(self, turns: list[Any], model: str) -> None:
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
        return f"http://{host}:{port}{self.url_path}"

    def start(self) -> Self:
        handler = type("Handler", (self.handler,), {"scripted": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- script ------------------------------------------------------------
    @property
    def turns_used(self) -> int:
        with self._lock:
            return self._next_turn

    @abstractmethod
    def exhausted_turn(self) -> list[Any]:
        """What the server answers once every scripted turn is used."""

    def take_turn(self, record: dict[str, Any]) -> list[Any]:
        """The next scripted turn for ``record`` (a dynamic turn is called here, outside the lock)."""
        with self._lock:
            self.loop_requests.append(record)
            if self._next_turn < len(self.turns):
                turn = self.turns[self._next_turn]
                self._next_turn += 1
            else:
                self.exhausted_requests.append(record)
                return self.exhausted_turn()
        return turn(record) if callable(turn) else list(turn)

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(record)

    # -- inspection ----------------------------------------------------------
    def posts(self, path_matches: Callable[[str], bool]) -> list[dict[str, Any]]:
        """Records of the POST requests whose path matches, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r["method"] == "POST" and path_matches(r["path"])]


class ScriptedHandler(BaseHTTPRequestHandler):
    """Records each request, then hands GET to :meth:`get` and POST to :meth:`post`."""

    scripted: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    # -- routes (override) ---------------------------------------------------
    def get(self, record: dict[str, Any]) -> None:
        self._json(200, {})

    def post(self, record: dict[str, Any], body: Any) -> None:
        """Answer a POST; every wire format overrides this."""
        self._json(404, {"error": f"{type(self).__name__} serves no POST"})

    def _stream(self, model: str, blocks: list[Any]) -> None:
        """Stream a turn as the API's SSE sequence (wire formats that answer with :meth:`_answer`)."""
        raise TypeError(f"{type(self).__name__} does not stream turns")

    def _whole(self, model: str, blocks: list[Any]) -> Any:
        """A turn as one JSON answer (wire formats that answer with :meth:`_answer`)."""
        raise TypeError(f"{type(self).__name__} does not answer whole turns")

    def _answer(self, body: dict[str, Any], blocks: list[Any]) -> None:
        """Answer a turn streamed or whole, as the request body's ``stream`` asks, for its ``model``."""
        model = body.get("model") or self.scripted.model
        if body.get("stream"):
            self._stream(model, blocks)
        else:
            self._json(200, self._whole(model, blocks))

    def extra_headers(self) -> dict[str, str]:
        """Headers added to every answer (JSON and SSE)."""
        return {}

    # -- verbs ---------------------------------------------------------------
    def do_GET(self) -> None:
        self.get(self._record(None))

    def do_POST(self) -> None:
        body = self._read_body()
        self.post(self._record(body), body)

    # -- helpers -------------------------------------------------------------
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
        for name, value in self.extra_headers().items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _start_sse(self, no_cache: bool = False) -> None:
        """Headers of a streamed answer; the connection closes after it."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if no_cache:
            self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for name, value in self.extra_headers().items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
