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
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ...errors import ConfigError, StoreError
from .project import derive_project_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (see the guard path rules)
    from typing import Any

    import psycopg

    Conn = psycopg.Connection[Any]
    Cur = psycopg.Cursor[Any]
    Rec = dict[str, Any]

DEFAULT_SCHEMA = "pi_mesh"
CONNECT_TIMEOUT = 5
LOCK_TIMEOUT = "10s"
IDLE_TX_TIMEOUT = "60s"

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
        else:
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


def channel(*parts: str) -> str:
    """A LISTEN/NOTIFY channel name (an identifier of at most 63 bytes) for ``parts``."""
    return "pm_" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


class Database:
    """One project's view of one schema on one server, through one lazily opened connection."""

    def __init__(self, url: str, root: str, project_id: str | None = None) -> None:
        self.root = root
        self.conninfo, self.schema = split_url(url)
        self.url = mask_url(url)
        self._project = project_id or None
        self._s = f'"{self.schema}"'
        self.conn: Conn | None = None
        self.lock = threading.RLock()

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

    def connect(self) -> Conn:
        """A new autocommit connection with the session settings the store relies on."""
        try:
            import psycopg
        except ImportError:
            raise ConfigError("the PostgreSQL store needs psycopg 3: pip install 'pi-mesh-plugin[postgres]'") from None
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                   application_name=f"pi-mesh/{self.schema}"[:63])
            conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'; "
                         f"SET idle_in_transaction_session_timeout = '{IDLE_TX_TIMEOUT}'")
        except psycopg.Error as e:
            raise self.error(e, "connecting") from None
        return conn

    def connection(self) -> Conn:
        """The shared connection, (re)opened and its schema brought up to date when needed."""
        from .migrations import upgrade

        if self.conn is None or self.conn.closed or self.conn.broken:
            conn = self.connect()
            try:
                upgrade(self, conn)
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def run(self, fn: Callable[[Conn], Any], doing: str = "") -> Any:
        """Run ``fn(conn)``; a dropped connection is reopened and ``fn`` retried once (every write is idempotent
        or a renewal, so a retry after a lost acknowledgement does no harm)."""
        import psycopg

        with self.lock:
            for attempt in (0, 1):
                conn = self.connection()
                try:
                    return fn(conn)
                except psycopg.OperationalError as e:
                    if attempt == 0 and (conn.broken or conn.closed):
                        self.conn = None
                        continue
                    if isinstance(e, psycopg.errors.LockNotAvailable):
                        raise StoreError(f"PostgreSQL store {self.url}: timed out ({LOCK_TIMEOUT}) waiting for "
                                         f"another agent's transaction while {doing or 'writing'}") from None
                    raise self.error(e, doing) from None
                except psycopg.Error as e:
                    raise self.error(e, doing) from None
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
