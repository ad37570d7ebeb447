"""Timestamps and ids.

Timestamps on disk are ISO 8601 in UTC with microseconds (``2026-11-25T01:02:03.456789Z``):
readable with ``cat``, sortable as text.  Ids sort by creation time and carry
40 random bits, so two processes never mint the same id:
``<16-digit microseconds since the epoch>-<10 hex digits>``.
"""

from __future__ import annotations

import os
import time

_last_us = [0]


def now() -> float:
    return time.time()


def iso(ts: float) -> str:
    from datetime import UTC, datetime  # imported on use: an allowed hook call never needs it

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp; ``ValueError`` if it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp: {text!r}")
    from datetime import UTC, datetime

    dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def new_id(ts: float | None = None) -> str:
    """A unique id that sorts by time (strictly increasing within a process)."""
    us = int((ts if ts is not None else time.time()) * 1_000_000)
    if us <= _last_us[0]:
        us = _last_us[0] + 1
    _last_us[0] = us
    return f"{us:016d}-{os.urandom(5).hex()}"


def id_time(ident: str) -> float:
    """The creation time encoded in an id from :func:`new_id`."""
    return int(ident.split("-", 1)[0]) / 1_000_000


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as ``90s``, ``30m``, ``2h``, ``1d`` or a bare number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        mult = units.get(s[-1:], None)
        num = s[:-1] if mult else s
        mult = mult or 1
        try:
            value = float(num) * mult
        except ValueError:
            raise ValueError(f"invalid duration {text!r}: use a number with s, m, h or d, e.g. 90s, 30m, 2h") from None
    if not (0 < value < 10 * 365 * 86400):
        raise ValueError(f"invalid duration {text!r}: must be positive and under ten years")
    return value


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 0:
        return "expired"
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d"
