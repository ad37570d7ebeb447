"""Timestamps and ids.

Timestamps on disk are ISO 8601 in UTC with microseconds (``2026-11-25T01:02:03.456789Z``):
readable with ``cat``, sortable as text.  Ids sort by creation time and carry
40 random bits, so two processes never mint the same id:
``<16-digit microseconds since the epoch>-<10 hex digits>``.
"""

from __future__ import annotations

import itertools
import math
import os
import time

_last_us = [0]
_sec_cache: list[tuple[int | None, str]] = [(None, "")]


def now() -> float:
    return time.time()


def iso(ts: float) -> str:
    """``ts`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, exactly as ``datetime.fromtimestamp(ts, UTC)`` rounds it.

    Every message and feed event is stamped, so the seconds part is formatted once per second
    and cached; the microseconds are rounded half-even as datetime does (a test compares the two).
    """
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole += 1
        us -= 1_000_000
    elif us < 0:
        whole -= 1
        us += 1_000_000
    sec = int(whole)
    cached = _sec_cache[0]  # one (second, text) pair, read once: another thread may replace it meanwhile
    if cached[0] != sec:
        cached = _sec_cache[0] = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{cached[1]}.{us:06d}Z"


def parse_iso(text: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp; ``ValueError`` if it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp: {text!r}")
    fast = _parse_own(text)
    if fast is not None:
        return fast
    from datetime import UTC, datetime

    dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _parse_own(t: str) -> float | None:
    """:func:`parse_iso` of the exact form :func:`iso` writes (``2026-12-04T21:05:36.123456Z``, or without the
    fraction), without importing datetime (the per-call hook reads such times); ``None`` for any other text.
    The same float as ``datetime.fromisoformat(...).timestamp()`` (a hypothesis test compares them)."""
    n = len(t)
    if not (n in (20, 27) and t[-1] == "Z" and t[4] == "-" and t[7] == "-" and t[10] == "T" and t[13] == ":"
            and t[16] == ":" and (n == 20 or t[19] == ".")):
        return None
    digits = t[0:4] + t[5:7] + t[8:10] + t[11:13] + t[14:16] + t[17:19] + t[20:26]
    if not (digits.isascii() and digits.isdigit()):
        return None
    y, mo, d, h, mi, s = int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]), int(t[17:19])
    us = int(t[20:26]) if n == 27 else 0
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (1 <= y and 1 <= mo <= 12 and 1 <= d <= _DAYS[mo - 1] + (mo == 2 and leap) and h < 24 and mi < 60
            and s < 60):
        return None
    # days since 1970-01-01 of the proleptic Gregorian date (Howard Hinnant's days_from_civil)
    yy = y - (mo <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return ((days * 86400 + h * 3600 + mi * 60 + s) * 10**6 + us) / 10**6  # as timedelta.total_seconds()


def new_id(ts: float | None = None) -> str:
    """A unique id that sorts by time (strictly increasing within a process)."""
    us = int((ts if ts is not None else time.time()) * 1_000_000)
    if us <= _last_us[0]:
        us = _last_us[0] + 1
    _last_us[0] = us
    return f"{us:016d}-{_random_hex10()}"


def _random_hex10() -> str:
    """Ten hex digits from the OS's random source, drawn 400 ids' worth at a time (one getrandom(2)
    per id was a tenth of what send() costs beyond its fsyncs).

    Thread-safe without a lock: ``next()`` on the pool's counter is atomic, so two threads never take
    one slice; two threads refilling at once each use their own fresh pool.  A forked child starts
    with an empty pool, so parent and child never share random digits.
    """
    buf, counter = _pool
    i = next(counter)
    if i >= 400:
        _pool[:] = [os.urandom(2000), itertools.count()]
        return _random_hex10()
    chunk: bytes = buf[5 * i:5 * i + 5]
    return chunk.hex()


def _empty_pool() -> None:
    _pool[:] = [b"", itertools.count(400)]


_pool: list = []
_empty_pool()
os.register_at_fork(after_in_child=_empty_pool)


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
