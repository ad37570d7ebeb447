"""Durations, timestamps and ids."""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pi_mesh_plugin.clock import format_duration, id_time, iso, new_id, parse_duration, parse_iso


@pytest.mark.parametrize("text,seconds", [
    ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("45", 45), (" 5M ", 300), ("1.5h", 5400),
    (90, 90), (0.25, 0.25), ("0.5s", 0.5),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "s", "m", "abc", "10x", "-5m", "0", "0s", "-1", "inf", "nan", "infs", "1e12",
                                 "3650d", "5 minutes", "h2", True, False, 0, -3, float("nan"), float("inf")])
def test_bad_durations_are_value_errors_with_one_line_hint(bad):
    with pytest.raises(ValueError) as info:
        parse_duration(bad)
    msg = str(info.value)
    assert "\n" not in msg and "invalid duration" in msg


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]))
def test_unit_multiplies(n, unit):
    suffix, mult = unit
    if n * mult >= 10 * 365 * 86400:
        with pytest.raises(ValueError):
            parse_duration(f"{n}{suffix}")
    else:
        assert parse_duration(f"{n}{suffix}") == n * mult


@pytest.mark.parametrize("seconds,text", [(5, "5s"), (119, "119s"), (120, "2m"), (1800, "30m"), (7200, "2h00m"),
                                          (5400, "90m"), (9000, "2h30m"), (200000, "2d"), (-1, "expired")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_iso_round_trips_to_the_microsecond(ts):
    text = iso(ts)
    assert text.endswith("Z") and len(text) == 27
    assert math.isclose(parse_iso(text), ts, abs_tol=2e-6)


@given(st.one_of(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False),
                 st.integers(0, 4_000_000_000_000_000).map(lambda us: us / 1e6 + 5e-7),  # exact half-microseconds
                 st.integers(0, 4_000_000_000).map(lambda s: s - 1e-9)))               # just below a whole second
def test_iso_formats_exactly_as_datetime(ts):
    from datetime import UTC, datetime

    assert iso(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("bad", ["", "yesterday", "2026-13-01T00:00:00Z", None, 5])
def test_parse_iso_rejects_non_timestamps(bad):
    with pytest.raises(ValueError):
        parse_iso(bad)


def test_timestamps_sort_as_text():
    ts = [0.5, 10, 1_700_000_000.123456, 1_700_000_000.123457, 3_000_000_000]
    assert sorted(iso(t) for t in ts) == [iso(t) for t in ts]


def test_ids_unique_strictly_increasing_and_time_sorted():
    from pi_mesh_plugin.names import is_valid_name

    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(is_valid_name(i) for i in ids)
    # an id minted for an earlier time still never goes backwards within a process
    later = new_id(1.0)
    assert later > ids[-1]


def test_id_time_recovers_the_creation_time():
    import time

    from pi_mesh_plugin import clock

    saved = clock._last_us[0]
    try:
        t = time.time() + 1_000_000.25  # far ahead of anything minted so far in this process
        i = new_id(t)
        assert abs(id_time(i) - t) < 1e-3
    finally:
        clock._last_us[0] = saved  # do not leave this worker minting ids eleven days ahead


def test_id_random_digits_are_never_shared_by_threads():
    import threading

    out: list[list[str]] = [[] for _ in range(8)]

    def draw(k: int) -> None:
        for _ in range(1000):
            out[k].append(new_id().split("-")[1])

    threads = [threading.Thread(target=draw, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    suffixes = [s for o in out for s in o]
    assert len(set(suffixes)) == len(suffixes) == 8000


def test_a_forked_child_does_not_reuse_the_parents_random_digits():
    new_id()  # the parent's pool is filled before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        os.write(w, " ".join(new_id().split("-")[1] for _ in range(50)).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        child = set(f.read().split())
    os.waitpid(pid, 0)
    parent = {new_id().split("-")[1] for _ in range(50)}
    assert len(child) == 50 and not child & parent



def _datetime_parse(text: str) -> float:
    from datetime import UTC, datetime

    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@given(st.datetimes(min_value=__import__("datetime").datetime(1, 1, 2), max_value=__import__("datetime").datetime(9999, 12, 30)),
       st.booleans())
def test_our_own_timestamps_parse_to_the_same_float_as_datetime_gives(dt, with_fraction) -> None:
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}" + (f".{dt.microsecond:06d}" if with_fraction else "") + "Z"
    assert parse_iso(text) == _datetime_parse(text)


@given(st.text(alphabet="0123456789-T:.Z+ ", min_size=19, max_size=28))
def test_anything_else_is_what_datetime_says(text) -> None:
    _same_as_datetime(text)


@pytest.mark.parametrize("text", ["2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-12-04T24:00:00Z",
                                  "2026-12-04T23:59:60Z", "２026-12-04T23:59:59Z", "2024-02-29T12:00:00.5Z"])
def test_impossible_dates_are_refused_as_datetime_refuses_them(text) -> None:
    _same_as_datetime(text)


def _same_as_datetime(text: str) -> None:
    try:
        want = _datetime_parse(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_iso(text)
    else:
        assert parse_iso(text) == want


def test_a_time_we_wrote_is_read_without_importing_datetime() -> None:
    import subprocess
    import sys

    code = ("import sys; from pi_mesh_plugin.clock import iso, parse_iso; t = parse_iso(iso(1.5e9)); "
            "print(t, 'datetime' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {code}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1500000000.0", "False"]
