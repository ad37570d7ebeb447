"""The store's database handle: the URL, one shared connection, retry and one-line errors.

The URL may carry ``?schema=NAME`` (default :data:`DEFAULT_SCHEMA`), which is
ours, not libpq's: :func:`split_url` takes it out.  :func:`mask_url` is what
every message shows, so a password never reaches a terminal or a log.

:class:`Database` opens its connection on first use (constructing a store never
touches the network), creates or upgrades the schema on it
(:func:`.migrations.upgrade`), and serialises its use with a lock so threads may
share a store.  :meth:`Database.run` reopens a dropped connection and retries
once; every psycopg error becomes a :class:`~pi_mesh_plugin.errors.StoreError`
of one line naming the masked URL.

**Nothing waits without end.**  Three limits, each a duration (``5s``, ``1m`` or
a number of seconds such as ``0.5``), from the URL's
query (``?connect_timeout=2&statement_timeout=3s&lock_timeout=3s``), else
``[store]`` in hooks.toml, else :data:`DEFAULT_TIMEOUTS`:

* ``connect_timeout`` - opening a connection, handshake and authentication
  included (psycopg enforces it on its own clock);
* ``statement_timeout`` - each statement, enforced by the server
  (``SET statement_timeout``);
* ``lock_timeout`` - each wait for a lock held by another agent's transaction.

A server that cannot enforce its own limits - frozen (``SIGSTOP``), a host that
vanished with the connection open - is bounded by the client: a watchdog
thread (:class:`Watchdog`) gives each call on the shared connection
``max(statement_timeout, lock_timeout) + 1 s`` by the monotonic clock, then
shuts the socket down, so the call fails at once with a one-line
:class:`~pi_mesh_plugin.errors.StoreError` naming the limit (and the
connection is reopened on the next call).  TCP keepalives and
``tcp_user_timeout`` are set unless the URL sets them.  A thread waiting for
the connection another thread is using waits the same bound at most.  Once the
server has not answered, every call of the next ``max(statement_timeout,
lock_timeout) + 1 s`` fails at once with the same error, so one operation (a
check, its feed line, a heartbeat) waits one timeout, not one per statement; the
first call after that window tries the server again.

**The server's clock.**  Each connection reads the server's clock
(``clock_timestamp()``, corrected by half the round trip) and keeps the offset
to this machine's (:meth:`Database.now`, re-read every
:data:`CLOCK_REFRESH` seconds), so expiry and liveness are judged, and
heartbeats and claims stamped, on the server's time: a client whose clock is
off does not see the agents of other hosts as dead, nor make its own look so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ... import clock
from ...errors import ConfigError, StoreError
from .project import derive_project_id

if TYPE_CHECKING:
    from typing import Any

    import psycopg

    Conn = psycopg.Connection[Any]
    Cur = psycopg.Cursor[Any]
    Rec = dict[str, Any]

DEFAULT_SCHEMA = "pi_mesh"
TIMEOUT_KEYS = ("connect_timeout", "statement_timeout", "lock_timeout")
DEFAULT_TIMEOUTS = {"connect_timeout": 3.0, "statement_timeout": 3.0, "lock_timeout": 3.0}
CONNECT_TIMEOUT = DEFAULT_TIMEOUTS["connect_timeout"]
WATCHDOG_GRACE = 1.0  # what the client adds to the server's own limits before it gives up on the server
IDLE_TX_TIMEOUT = "60s"
CLOCK_REFRESH = 60.0  # seconds between two readings of the server's clock on one connection
_OURS = ("schema", "statement_timeout", "lock_timeout")  # URL parameters that are ours, not libpq's

# Advisory lock classes (first key of the two-int form); the second key is a hash.
LOCK_SCHEMA = 0x504D0001
LOCK_CLAIMS = 0x504D0002
LOCK_FEED = 0x504D0003  # reserved: nothing takes it

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TS = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


def ts(col: str) -> str:
    """SQL rendering the timestamptz ``col`` as the ISO 8601 UTC string the records carry."""
    return f"to_char({col} AT TIME ZONE 'UTC', {_TS})"


def columns(names: tuple[str, ...], times: tuple[str, ...], table: str = "") -> str:
    """A select list of ``names`` (qualified by ``table``), those in ``times`` rendered by :func:`ts`."""
    prefix = f"{table}." if table else ""
    return ", ".join(ts(prefix + c) if c in times else prefix + c for c in names)


def split_url(url: str) -> tuple[str, str]:
    """``(libpq URL without our own parameters, schema name)``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_SCHEMA
    rest = []
    for k, v in query:
        if k == "schema":
            schema = v
        elif k not in _OURS and k != "connect_timeout":  # connect_timeout is passed on explicitly
            rest.append((k, v))
    if not _IDENT.match(schema):
        raise ConfigError(f"invalid schema {schema!r} in the store URL: use lower-case letters, digits and _")
    return urlunsplit(parts._replace(query=urlencode(rest))), schema


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unparseable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def resolve_timeouts(url: str, configured: dict | None = None) -> dict[str, float]:
    """The three limits in seconds: the URL's query, else ``configured`` (``[store]`` of hooks.toml), else the
    defaults; a value that is not a positive duration is a :class:`ConfigError` naming it."""
    out = dict(DEFAULT_TIMEOUTS)
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    for key in TIMEOUT_KEYS:
        value, where = query.get(key), "the store URL"
        if value is None and configured and configured.get(key) is not None:
            value, where = configured[key], "[store] in hooks.toml"
        if value is None:
            continue
        try:
            out[key] = clock.parse_duration(value)
        except ValueError as e:
            raise ConfigError(f"{key} in {where}: {e}") from None
    return out


def _sever(conn: Conn) -> None:
    """Shut the connection's socket down, so whatever waits on it in another thread returns at once."""
    try:
        fd = os.dup(conn.pgconn.socket)
    except Exception:  # noqa: BLE001 - already closed: nothing waits on it
        return
    try:
        with socket.socket(fileno=fd) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """One thread per :class:`Database` that severs the connection of a call still running at its deadline."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.deadline: float | None = None
        self.conn: Conn | None = None
        self.fired = False
        self.thread: threading.Thread | None = None

    def arm(self, conn: Conn, seconds: float) -> None:
        with self.cond:
            self.deadline, self.conn, self.fired = time.monotonic() + seconds, conn, False
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="pi-mesh-pg-watchdog", daemon=True)
                self.thread.start()
            self.cond.notify()

    def disarm(self) -> bool:
        """End the watch; whether it had fired (the connection is severed)."""
        with self.cond:
            self.deadline, self.conn = None, None
            return self.fired

    def _loop(self) -> None:
        with self.cond:
            while True:
                if self.deadline is None:
                    self.cond.wait()
                    continue
                left = self.deadline - time.monotonic()
                if left > 0:
                    self.cond.wait(left)
                    continue
                self.fired, self.deadline = True, None
                if self.conn is not None:
                    _sever(self.conn)


def channel(*parts: str) -> str:
    """A LISTEN/NOTIFY channel name (an identifier of at most 63 bytes) for ``parts``."""
    return "pm_" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


class Database:
    """One project's view of one schema on one server, through one lazily opened connection."""

    def __init__(self, url: str, root: str, project_id: str | None = None, timeouts: dict | None = None) -> None:
        self.root = root
        self.conninfo, self.schema = split_url(url)
        self.url = mask_url(url)
        self.timeouts = resolve_timeouts(url, timeouts)
        # the client's bound on one call: the server's own limits, and a second for the answer to arrive
        self.call_limit = max(self.timeouts["statement_timeout"], self.timeouts["lock_timeout"]) + WATCHDOG_GRACE
        self._libpq_keys = {k for k, _ in parse_qsl(urlsplit(self.conninfo).query)}
        self._project = project_id or None
        self._s = f'"{self.schema}"'
        self.conn: Conn | None = None
        self.lock = threading.RLock()
        self.watchdog = Watchdog()
        self.offset: float | None = None  # the server's clock minus this machine's, in seconds
        self._offset_read = 0.0
        self._down: tuple[float, StoreError] | None = None  # (until when, why): the server did not answer

    @property
    def project(self) -> str:
        if self._project is None:
            self._project = derive_project_id(self.root)
        return self._project

    @property
    def project_channel(self) -> str:
        return channel(self.schema, self.project)

    def mail_channel(self, name: str) -> str:
        return channel(self.schema, self.project, "mail", name)

    def error(self, e: BaseException, doing: str = "") -> StoreError:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        what = f" while {doing}" if doing else ""
        return StoreError(f"PostgreSQL store {self.url}{what}: {first}")

    def limit_text(self, key: str) -> str:
        return f"{self.timeouts[key]:g}s ({key})"

    def timed_out(self, key: str, doing: str) -> StoreError:
        """The error of a server that did not answer within ``key``; for the next :attr:`call_limit` seconds
        every call fails at once with it, so one operation (a check, its feed line, a heartbeat) waits for one
        timeout, not one per statement."""
        what = f" while {doing}" if doing else ""
        err = StoreError(f"PostgreSQL store {self.url}: timed out after {self.limit_text(key)}{what}: "
                         "the server did not answer")
        self._down = (time.monotonic() + self.call_limit, err)
        return err

    def _fail_fast(self) -> None:
        down = self._down
        if down is not None:
            if time.monotonic() < down[0]:
                raise StoreError(str(down[1]))
            self._down = None

    def connect(self) -> Conn:
        """A new autocommit connection with the session settings the store relies on (its limits, and
        the server's clock read into :attr:`offset`)."""
        try:
            import psycopg
        except ImportError:
            raise ConfigError("the PostgreSQL store needs psycopg 3: pip install 'pi-mesh-plugin[postgres]'") from None
        t = self.timeouts
        extra: dict[str, Any] = {}
        for k, v in (("keepalives", 1), ("keepalives_idle", 10), ("keepalives_interval", 5), ("keepalives_count", 3),
                     ("tcp_user_timeout", int(self.call_limit * 1000))):
            if k not in self._libpq_keys:
                extra[k] = v
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=max(1, round(t["connect_timeout"])),
                                   application_name=f"pi-mesh/{self.schema}"[:63], **extra)
        except psycopg.OperationalError as e:
            if isinstance(e, psycopg.errors.ConnectionTimeout) or "timeout expired" in str(e):
                raise self.timed_out("connect_timeout", "connecting") from None
            raise self.error(e, "connecting") from None
        except psycopg.Error as e:
            raise self.error(e, "connecting") from None
        try:
            self._bounded(conn, lambda c: c.execute(
                f"SET statement_timeout = {int(t['statement_timeout'] * 1000)}; "
                f"SET lock_timeout = {int(t['lock_timeout'] * 1000)}; "
                f"SET idle_in_transaction_session_timeout = '{IDLE_TX_TIMEOUT}'"), "connecting")
            self._read_clock(conn)
        except psycopg.Error as e:
            conn.close()
            raise self.error(e, "connecting") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _read_clock(self, conn: Conn) -> None:
        t0 = clock.now()
        row = self._bounded(conn, lambda c: c.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
                            .fetchone(), "reading the server's clock")
        t1 = clock.now()
        self.offset = float(row[0]) - (t0 + t1) / 2
        self._offset_read = time.monotonic()

    def now(self) -> float:
        """The server's time (epoch seconds), from this machine's clock and the offset last read."""
        if self.offset is None:
            self.run(lambda c: None, "reading the server's clock")
        return clock.now() + (self.offset or 0.0)

    def _bounded(self, conn: Conn, fn: Callable[[Conn], Any], doing: str) -> Any:
        """``fn(conn)`` under the watchdog; a call it had to cut off is a timeout error."""
        import psycopg

        self.watchdog.arm(conn, self.call_limit)
        try:
            return fn(conn)
        except psycopg.Error as e:
            if self.watchdog.disarm():
                with contextlib.suppress(Exception):
                    conn.close()
                raise self.timed_out("statement_timeout", doing) from None
            if isinstance(e, psycopg.errors.LockNotAvailable):
                raise StoreError(f"PostgreSQL store {self.url}: timed out after {self.limit_text('lock_timeout')} "
                                 f"waiting for another agent's transaction while {doing or 'writing'}") from None
            if isinstance(e, psycopg.errors.QueryCanceled):
                raise self.timed_out("statement_timeout", doing) from None
            raise
        finally:
            self.watchdog.disarm()

    def connection(self) -> Conn:
        """The shared connection, (re)opened and its schema brought up to date when needed."""
        from .migrations import upgrade

        if self.conn is None or self.conn.closed or self.conn.broken:
            conn = self.connect()
            try:
                self._bounded(conn, lambda c: upgrade(self, c), "upgrading the schema")
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        elif time.monotonic() - self._offset_read > CLOCK_REFRESH:
            import psycopg

            try:
                self._read_clock(self.conn)
            except psycopg.Error:  # the connection died while idle: open a new one (which reads the clock)
                with contextlib.suppress(Exception):
                    self.conn.close()
                self.conn = None
                return self.connection()
        return self.conn

    def run(self, fn: Callable[[Conn], Any], doing: str = "") -> Any:
        """Run ``fn(conn)``; a dropped connection is reopened and ``fn`` retried once (every write is idempotent
        or a renewal, so a retry after a lost acknowledgement does no harm).  A call the watchdog cut off is
        not retried: the server is not answering."""
        import psycopg

        self._fail_fast()
        wait = self.call_limit + self.timeouts["connect_timeout"]
        if not self.lock.acquire(timeout=wait):
            raise StoreError(f"PostgreSQL store {self.url}: timed out after {wait:g}s waiting for this process's "
                             f"connection (another call on it is not answered) while {doing or 'working'}")
        try:
            self._fail_fast()  # another thread met the silence while this one waited
            for attempt in (0, 1):
                conn = self.connection()
                try:
                    return self._bounded(conn, fn, doing)
                except StoreError:
                    self.conn = None if conn.closed or conn.broken else self.conn
                    raise
                except psycopg.OperationalError as e:
                    if attempt == 0 and (conn.broken or conn.closed):
                        self.conn = None
                        continue
                    raise self.error(e, doing) from None
                except psycopg.Error as e:
                    raise self.error(e, doing) from None
        finally:
            self.lock.release()
        raise AssertionError("unreachable")

    def q(self, sql: str) -> str:
        """``sql`` with ``{s}`` replaced by the quoted schema name."""
        return sql.replace("{s}", self._s)

    def fetchall(self, sql: str, params: Any, doing: str) -> list[tuple[Any, ...]]:
        """The rows of one statement (``{s}`` expanded), run by :meth:`run`."""
        return self.run(lambda c: c.execute(self.q(sql), params).fetchall(), doing)  # type: ignore[no-any-return]

    def fetchone(self, sql: str, params: Any, doing: str) -> tuple[Any, ...] | None:
        """The first row of one statement (``{s}`` expanded), run by :meth:`run`."""
        return self.run(lambda c: c.execute(self.q(sql), params).fetchone(), doing)  # type: ignore[no-any-return]

    def notify(self, cur: Cur, topic: str) -> None:
        """Tell the project channel's subscribers that ``topic`` changed (sent when the transaction commits)."""
        cur.execute("SELECT pg_notify(%s, %s)", (self.project_channel, topic))

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                with contextlib.suppress(Exception):
                    self.conn.close()
                self.conn = None
