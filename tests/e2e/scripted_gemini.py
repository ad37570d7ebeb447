"""A scripted Gemini API server (``:streamGenerateContent?alt=sse`` / ``:generateContent``) for the real Gemini CLI.

Requests that carry ``tools`` (the agent loop) consume the next scripted turn, a
list of ``parts`` built with :func:`text` and :func:`function_call`; other
requests (side queries) get a short text and do not advance the script.  When
the script is exhausted the answer is ``"(script exhausted)"`` and the request
is recorded in ``exhausted_requests``.  Every request is recorded, so a test can
read the ``functionResponse`` the CLI sent back after a scripted call.
"""

from __future__ import annotations

from typing import Any

from scripted_server import EXHAUSTED_TEXT, ScriptedHandler, ScriptedServer, sse


def text(value: str) -> dict:
    return {"text": value}


def function_call(name: str, args: dict) -> dict:
    return {"functionCall": {"name": name, "args": args}}


class _Handler(ScriptedHandler):
    scripted: ScriptedGemini

    def post(self, record: dict[str, Any], body: Any) -> None:
        if record["path"].endswith(":countTokens"):
            self._json(200, {"totalTokens": 10})
            return
        parts = self.scripted.take_turn(record) if isinstance(body, dict) and body.get("tools") else [text("ok")]
        chunk = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
                                 "index": 0}],
                 "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
                 "modelVersion": self.scripted.model}
        if "alt=sse" not in self.path:
            self._json(200, chunk)
            return
        self._start_sse()
        self.wfile.write(sse(chunk, eol="\r\n"))
        self.wfile.flush()


class ScriptedGemini(ScriptedServer):
    handler = _Handler
    thread_name = "scripted-gemini"

    def __init__(self, turns: list[list[dict]], model: str = "gemini-2.5-pro") -> None:
        super().__init__(turns, model)

    def exhausted_turn(self) -> list[dict]:
        return [text(EXHAUSTED_TEXT)]
