"""The activity feed: ``feed.jsonl``, one JSON object per line, append-only.

Each event is one ``write(2)`` on a file opened with ``O_APPEND``, so lines
from concurrent writers never interleave.  When the file passes
``MAX_BYTES`` it is rotated (``feed.jsonl`` → ``feed.1.jsonl`` → … →
``feed.<KEEP>.jsonl``, the oldest dropped) under ``locks/feed.lock``, which
bounds the feed to about ``(KEEP + 1) × MAX_BYTES``.
"""

from __future__ import annotations

import json
import os

MAX_BYTES = 1 << 20
KEEP = 3
MAX_LINE = 4000


class Feed:
    def __init__(self, mesh_dir: str, max_bytes: int = MAX_BYTES) -> None:
        self.path = os.path.join(mesh_dir, "feed.jsonl")
        self.lock_path = os.path.join(mesh_dir, "locks", "feed.lock")
        self.max_bytes = max_bytes

    def append(self, event: dict) -> None:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        if len(line) > MAX_LINE:
            event = {k: (v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v) for k, v in event.items()}
            line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))[:MAX_LINE]
            if not line.endswith("}"):
                line = json.dumps({k: event[k] for k in ("ts", "event", "agent") if k in event})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            try:
                data = (line + "\n").encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate (a non-UTF-8 file name): \u-escape it, as fsio.dumps does
                data = (json.dumps(json.loads(line), separators=(",", ":")) + "\n").encode("ascii")
            os.write(fd, data)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        from filelock import FileLock

        with FileLock(self.lock_path, timeout=30):
            try:
                if os.stat(self.path).st_size <= self.max_bytes:
                    return  # another process rotated it
            except FileNotFoundError:
                return
            for i in range(KEEP - 1, 0, -1):
                older = self.generation(i)
                if os.path.exists(older):
                    os.replace(older, self.generation(i + 1))
            os.replace(self.path, self.generation(1))

    def generation(self, i: int) -> str:
        return self.path if i == 0 else self.path[: -len(".jsonl")] + f".{i}.jsonl"

    def read(self, limit: int | None = None) -> list[dict]:
        out: list[dict] = []
        for i in range(KEEP, -1, -1):
            try:
                with open(self.generation(i), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            for raw in data.splitlines():
                try:
                    ev = json.loads(raw)
                except ValueError:
                    continue  # a torn or hand-edited line is skipped, not fatal
                if isinstance(ev, dict):
                    out.append(ev)
        return out[-limit:] if limit else out
