"""The PostgreSQL store: the same API as the file store, for agents on several machines.

Selected by ``PI_MESH_STORE=postgresql://…`` or ``[store] url`` in hooks.toml.
The URL may carry ``?schema=NAME`` (default ``pi_mesh``): every table lives in
that schema, which the store creates and upgrades itself (:data:`MIGRATIONS`,
recorded in ``<schema>.schema_version``) on first use or by ``pi-mesh db init``.

**Projects.**  Every table is keyed by a project id, so two projects sharing a
server never see each other's agents, mail or claims.  The id comes from
``[store] project_id`` / ``$PI_MESH_PROJECT_ID``, else from the git remote of
the project root (normalised: ``git@github.com:acme/repo.git`` and
``https://github.com/acme/repo`` are both ``github.com/acme/repo``, so checkouts
in different places on different machines meet), else the root path.  Paths are
the canonical project-relative paths the :class:`~pi_mesh_plugin.mesh.Mesh`
hands over, so ``/home/a/repo/src`` on one machine and ``/builds/repo/src`` on
another are both ``src``.

**Reservations.**  ``claim`` is one READ COMMITTED transaction that first takes
``pg_advisory_xact_lock(<claims>, hashtext(project))`` and only then reads the
claims that could overlap and writes its own.  Why this and not the others:

* an exclusion constraint cannot state the rule: overlap is "either path is an
  ancestor-or-self of the other, taking the claim kinds into account", and a
  claim only counts while it is unexpired *and its holder is live* - liveness
  is judged per reader (owner process on the same host, heartbeat TTL elsewhere)
  and changes with time, which no constraint can see; dead claims would block;
* SERIALIZABLE would be correct but turns contention into serialization
  failures that every claimant must retry (8 agents fighting over one tree
  abort most of their attempts), and its predicate locks on the range scans
  are coarse anyway;
* the advisory lock makes claimants of one project queue for a few hundred
  microseconds and leaves everything else alone: other projects use other
  keys, readers (``covering``, the guard's hot path) never take it - MVCC
  shows them the last committed claims - and PostgreSQL drops the lock when the
  transaction ends, including when the claimant's connection dies, so a killed
  agent never wedges the mesh.  READ COMMITTED matters: each statement after
  the lock takes a fresh snapshot, so the read sees every claim committed by
  the previous lock holder (REPEATABLE READ would have taken its snapshot at
  the lock statement, before waiting, and could miss it).

``idle_in_transaction_session_timeout`` bounds how long a frozen claimant can
hold the lock; ``lock_timeout`` turns an endless wait into a one-line error.

**Liveness across machines.**  As in :func:`pi_mesh_plugin.liveness.is_live`:
an agent on this host (and boot) with a known pid lives exactly as long as its
process; any other is live while its ``last_seen`` heartbeat is younger than
the heartbeat TTL.  A crashed machine stops heartbeating, so its agents die
after the TTL and their claims stop counting (and are deleted by the next
overlapping ``claim`` or by ``doctor --fix``).  Timestamps are written from the
writer's clock, as with the file store; ``doctor`` reports a clock that is off
from the server's by more than :data:`MAX_SKEW` seconds.

**Messages.**  One row per message per recipient (``messages``), with read
state (``read_at``), thread, reply and urgency columns.  Delivery commits with
``pg_notify`` on the recipient's channel, so :meth:`PostgresStore.wait_for_mail`
wakes within milliseconds; it re-checks the unread count at least every
:data:`MAIL_POLL` seconds (a polling fallback for lost connections and for
poolers that do not pass ``LISTEN`` through).  Every write also notifies the
project channel with its topic (``agents``, ``reservations``, ``inbox``,
``feed``), which :meth:`PostgresStore.subscribe` turns into callbacks for
:class:`pi_mesh_plugin.watcher.Watcher`.

**Feed.**  ``feed`` rows keep the event JSON as written; each project keeps at
most :data:`FEED_MAX_ROWS` (older rows are deleted every :data:`FEED_TRIM_EVERY`
appends).

Errors from the server become :class:`~pi_mesh_plugin.errors.StoreError` with
one line naming the (password-masked) URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .. import paths as P
from ..clock import iso, new_id
from ..errors import ConfigError, NameTaken, ReservationConflict, StoreError
from ..liveness import is_live

TYPE_CHECKING = False
if TYPE_CHECKING:  # no typing import at run time (see the guard path rules)
    from typing import Any

    import psycopg

    Conn = psycopg.Connection[Any]
    Cur = psycopg.Cursor[Any]
    Rec = dict[str, Any]

DEFAULT_SCHEMA = "pi_mesh"
FEED_MAX_ROWS = 10_000
FEED_TRIM_EVERY = 200
MAIL_POLL = 2.0
MAX_SKEW = 2.0
CONNECT_TIMEOUT = 5
LOCK_TIMEOUT = "10s"
IDLE_TX_TIMEOUT = "60s"

# Advisory lock classes (first key of the two-int form); the second key is a hash.
LOCK_SCHEMA = 0x504D0001
LOCK_CLAIMS = 0x504D0002
LOCK_FEED = 0x504D0003

CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "codeberg.org"})
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TS = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


def _ts(col: str) -> str:
    return f"to_char({col} AT TIME ZONE 'UTC', {_TS})"


# -- schema -------------------------------------------------------------------
# Each migration: (version, description, statements).  ``{s}`` is the quoted schema.
# Never edit a released migration: append a new one.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "projects, agents, reservations, messages, feed", [
        """CREATE TABLE {s}.projects (
             project text COLLATE "C" PRIMARY KEY,
             root text,
             first_seen timestamptz NOT NULL DEFAULT now(),
             last_seen timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE {s}.agents (
             project text COLLATE "C" NOT NULL,
             name text COLLATE "C" NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}$'),
             session text NOT NULL,
             pid bigint NOT NULL CHECK (pid >= 0),
             pid_start text,
             host text NOT NULL,
             boot_id text,
             cwd text NOT NULL,
             harness text,
             model text,
             started timestamptz NOT NULL,
             last_seen timestamptz NOT NULL,
             status text,
             activity jsonb,
             PRIMARY KEY (project, name))""",
        """CREATE TABLE {s}.reservations (
             project text COLLATE "C" NOT NULL,
             id text COLLATE "C" NOT NULL,
             holder text COLLATE "C" NOT NULL,
             session text,
             path text COLLATE "C" NOT NULL,
             kind text NOT NULL CHECK (kind IN ('dir', 'file')),
             reason text NOT NULL,
             created timestamptz NOT NULL,
             expires timestamptz NOT NULL,
             PRIMARY KEY (project, id))""",
        # covering(): equality on the ancestors of a path, and a range scan for what lies beneath a directory
        # (bytewise "C" order: everything under "a/" sorts between "a/" and "a0").
        "CREATE INDEX reservations_path ON {s}.reservations (project, path)",
        "CREATE INDEX reservations_holder ON {s}.reservations (project, holder)",
        """CREATE TABLE {s}.messages (
             project text COLLATE "C" NOT NULL,
             recipient text COLLATE "C" NOT NULL,
             id text COLLATE "C" NOT NULL,
             sender text NOT NULL,
             body text NOT NULL CHECK (length(body) <= 65536),
             urgent boolean NOT NULL DEFAULT false,
             reply_to text,
             thread text COLLATE "C",
             broadcast boolean NOT NULL DEFAULT false,
             meta jsonb,
             created timestamptz NOT NULL,
             read_at timestamptz,
             set_aside text,
             PRIMARY KEY (project, recipient, id))""",
        """CREATE INDEX messages_unread ON {s}.messages (project, recipient, id)
             WHERE read_at IS NULL AND set_aside IS NULL""",
        "CREATE INDEX messages_thread ON {s}.messages (project, thread) WHERE thread IS NOT NULL",
        """CREATE TABLE {s}.feed (
             project text COLLATE "C" NOT NULL,
             seq bigint GENERATED ALWAYS AS IDENTITY,
             ts timestamptz NOT NULL DEFAULT clock_timestamp(),
             event json NOT NULL,
             PRIMARY KEY (project, seq))""",
    ]),
]
LATEST = MIGRATIONS[-1][0]


# -- URLs and project ids -----------------------------------------------------
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


def normalise_remote(remote: str) -> str:
    """A git remote URL as a stable project id: ``host/owner/repo`` (no scheme, user, port or ``.git``)."""
    r = remote.strip()
    m = re.match(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$", r)  # scp-like: git@host:owner/repo.git
    if "://" not in r and m and not re.match(r"^[A-Za-z]:[\\/]", r):
        host, path = m.group(1), m.group(2)
    elif "://" in r:
        parts = urlsplit(r)
        if parts.scheme == "file" or not parts.hostname:
            return os.path.normpath(parts.path or r)
        host, path = parts.hostname, parts.path
    else:
        return os.path.normpath(os.path.abspath(r))  # a local path remote: shared by nobody else anyway
    path = path.strip("/").removesuffix(".git").rstrip("/")
    host = host.lower()
    if host in CASE_INSENSITIVE_HOSTS:  # Acme/Repo and acme/repo are one repository there
        path = path.lower()
    return f"{host}/{path}"


def derive_project_id(root: str) -> str:
    """The project id of ``root``: its git remote (``origin``, else the first), normalised; else the real root path."""
    try:
        out = subprocess.run(["git", "-C", root, "remote", "-v"], capture_output=True, text=True, timeout=10,
                             check=False)
        remotes: dict[str, str] = {}
        for line in out.stdout.splitlines():
            bits = line.split()
            if len(bits) >= 2 and bits[0] not in remotes:
                remotes[bits[0]] = bits[1]
        if remotes:
            name = "origin" if "origin" in remotes else min(remotes)
            return normalise_remote(remotes[name])
    except (OSError, subprocess.SubprocessError):
        pass
    return P.normalise_root(root)


def channel(*parts: str) -> str:
    """A LISTEN/NOTIFY channel name (an identifier of at most 63 bytes) for ``parts``."""
    return "pm_" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


# -- the store ----------------------------------------------------------------
_RES_COLS = f"id, holder, session, path, kind, reason, {_ts('created')}, {_ts('expires')}"
_AGENT_FIELDS = ("name", "session", "pid", "pid_start", "host", "boot_id", "cwd", "harness", "model", "started",
                 "last_seen", "status", "activity")
_AGENT_COLS = ", ".join(_ts(c) if c in ("started", "last_seen") else c for c in _AGENT_FIELDS)
_MSG_COLS = f"id, sender, recipient, body, urgent, reply_to, thread, {_ts('created')}, broadcast, meta"


def _res(row: tuple[Any, ...]) -> Rec:
    return {"schema": 1, "id": row[0], "holder": row[1], "session": row[2], "path": row[3], "kind": row[4],
            "reason": row[5], "created": row[6], "expires": row[7]}


def _agent(row: tuple[Any, ...]) -> Rec:
    d = {"schema": 1, **dict(zip(_AGENT_FIELDS, row))}
    for k in ("status", "activity"):
        if d[k] is None:
            del d[k]
    return d


def _msg(row: tuple[Any, ...]) -> Rec:
    d = {"schema": 1, "id": row[0], "from": row[1], "to": row[2], "text": row[3], "urgent": row[4],
         "reply_to": row[5], "thread": row[6], "created": row[7]}
    if row[8]:
        d["broadcast"] = True
    if row[9] is not None:
        d["meta"] = row[9]
    return d


class PostgresStore:
    """:class:`~pi_mesh_plugin.store.base.Store` on a PostgreSQL server (psycopg 3).

    One connection per store, opened on first use (constructing a store never
    touches the network), guarded by a lock so threads may share the store.
    """

    def __init__(self, url: str, root: str, heartbeat_ttl: float = 60.0, project_id: str | None = None) -> None:
        self.root = root
        self.conninfo, self.schema = split_url(url)
        self.url = mask_url(url)
        self.heartbeat_ttl = heartbeat_ttl
        self._project = project_id or None
        self.warnings: list[str] = []
        self._s = f'"{self.schema}"'
        self._conn: Conn | None = None
        self._listen: Conn | None = None
        self._listening: set[str] = set()
        self._lock = threading.RLock()
        self._listen_lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []
        self._registered_project = False

    # -- plumbing ---------------------------------------------------------
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

    def _error(self, e: BaseException, doing: str = "") -> StoreError:
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
            raise self._error(e, "connecting") from None
        return conn

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = self.connect()
            try:
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, fn: Callable[[Conn], Any], doing: str = "") -> Any:
        """Run ``fn(conn)``; a dropped connection is reopened and ``fn`` retried once (every write is idempotent
        or a renewal, so a retry after a lost acknowledgement does no harm)."""
        import psycopg

        with self._lock:
            for attempt in (0, 1):
                conn = self._connection()
                try:
                    return fn(conn)
                except psycopg.OperationalError as e:
                    if attempt == 0 and (conn.broken or conn.closed):
                        self._conn = None
                        continue
                    if isinstance(e, psycopg.errors.LockNotAvailable):
                        raise StoreError(f"PostgreSQL store {self.url}: timed out ({LOCK_TIMEOUT}) waiting for "
                                         f"another agent's transaction while {doing or 'writing'}") from None
                    raise self._error(e, doing) from None
                except psycopg.Error as e:
                    raise self._error(e, doing) from None
        raise AssertionError("unreachable")

    def _q(self, sql: str) -> str:
        return sql.replace("{s}", self._s)

    # -- schema -----------------------------------------------------------
    def schema_version(self, conn: Conn | None = None) -> int:
        """The schema version in the database (0: no schema yet)."""
        import psycopg

        c = conn or self._connection()
        try:
            row = c.execute(self._q("SELECT max(version) FROM {s}.schema_version")).fetchone()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            return 0
        return int(row[0] or 0) if row else 0

    def _migrate(self, conn: Conn) -> list[int]:
        import psycopg

        try:
            have = self.schema_version(conn)
        except psycopg.Error as e:
            raise self._error(e, "reading the schema version") from None
        if have == LATEST:
            return []
        if have > LATEST:
            raise StoreError(f"PostgreSQL store {self.url}: schema {self.schema} is at version {have}, newer than "
                             f"this pi-mesh understands ({LATEST}); upgrade pi-mesh-plugin")
        applied = []
        try:
            with conn.transaction():
                # Serialise concurrent first users: CREATE SCHEMA IF NOT EXISTS alone can still collide.
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_SCHEMA, self.schema))
                conn.execute(self._q("CREATE SCHEMA IF NOT EXISTS {s}"))
                conn.execute(self._q("""CREATE TABLE IF NOT EXISTS {s}.schema_version (
                    version integer PRIMARY KEY, description text NOT NULL,
                    applied timestamptz NOT NULL DEFAULT now())"""))
                have = self.schema_version(conn)
                for version, description, statements in MIGRATIONS:
                    if version <= have:
                        continue
                    for stmt in statements:
                        conn.execute(self._q(stmt).replace("{{", "{").replace("}}", "}"))
                    conn.execute(self._q("INSERT INTO {s}.schema_version (version, description) VALUES (%s, %s)"),
                                 (version, description))
                    applied.append(version)
        except psycopg.Error as e:
            raise self._error(e, f"creating schema {self.schema} (run `pi-mesh db init` as a user allowed to "
                                 f"CREATE in this database)") from None
        return applied

    def migrate(self) -> list[int]:
        """Create or upgrade the schema now; returns the versions applied."""
        with self._lock:
            conn = self.connect()
            try:
                return self._migrate(conn)
            finally:
                conn.close()

    # -- registry ---------------------------------------------------------
    def register(self, agent: Rec) -> Rec:
        from ..schema import validate

        rec = validate("agent", dict(agent), "agent")
        name = rec["name"]

        def go(conn: Conn) -> Rec:
            with conn.transaction():
                cur = conn.cursor()
                if not self._registered_project:
                    cur.execute(self._q("""INSERT INTO {s}.projects (project, root) VALUES (%s, %s)
                        ON CONFLICT (project) DO UPDATE SET last_seen = now(), root = EXCLUDED.root"""),
                                (self.project, self.root))
                for _ in range(3):
                    cur.execute(self._q(f"SELECT {_AGENT_COLS} FROM {{s}}.agents WHERE project = %s AND name = %s "
                                        "FOR UPDATE"), (self.project, name))
                    row = cur.fetchone()
                    if row is not None:
                        break
                    cur.execute(self._q("INSERT INTO {s}.agents (project, " + ", ".join(_AGENT_FIELDS) + ") VALUES ("
                                        + ", ".join(["%s"] * (len(_AGENT_FIELDS) + 1))
                                        + ") ON CONFLICT (project, name) DO NOTHING"), self._agent_params(rec))
                    if cur.rowcount == 1:
                        self._notify(cur, "agents")
                        return {"agent": rec, "replaced": None, "orphaned": 0}
                else:  # pragma: no cover - inserted and deleted by others three times in a row
                    raise StoreError(f"PostgreSQL store {self.url}: could not register {name}: the name keeps changing")
                old = _agent(row)
                same_owner = (old["pid"] == rec["pid"] and old.get("pid_start") == rec.get("pid_start")
                              and old["host"] == rec["host"] and rec["pid"] != 0)
                replaced, orphaned = None, 0
                if old["session"] == rec["session"] or same_owner:
                    new = {**rec, "session": old["session"], "started": old["started"]}
                elif self.is_live(old):
                    raise NameTaken(name, old.get("pid"), old.get("host"))
                else:
                    new, replaced = rec, old["session"]
                    cur.execute(self._q("DELETE FROM {s}.reservations WHERE project = %s AND holder = %s "
                                        "AND (session = %s OR session IS NULL)"), (self.project, name, replaced))
                    if cur.rowcount:
                        self._notify(cur, "reservations")
                    cur.execute(self._q("UPDATE {s}.messages SET set_aside = %s WHERE project = %s AND recipient = %s "
                                        "AND read_at IS NULL AND set_aside IS NULL"), (replaced, self.project, name))
                    orphaned = cur.rowcount
                validate("agent", new, "agent")
                self._update_agent_row(cur, new)
                self._notify(cur, "agents")
                return {"agent": new, "replaced": replaced, "orphaned": orphaned}

        res: Rec = self._run(go, f"registering {name}")
        self._registered_project = True
        return res

    def _agent_params(self, rec: Rec) -> list[Any]:
        from psycopg.types.json import Jsonb

        vals: list[Any] = [self.project]
        for k in _AGENT_FIELDS:
            v = rec.get(k)
            vals.append(Jsonb(v) if k == "activity" and v is not None else v)
        return vals

    def _update_agent_row(self, cur: Cur, rec: Rec) -> None:
        sets = ", ".join(f"{k} = %s" for k in _AGENT_FIELDS[1:])
        params = self._agent_params(rec)
        cur.execute(self._q(f"UPDATE {{s}}.agents SET {sets} WHERE project = %s AND name = %s"),
                    [*params[2:], self.project, rec["name"]])

    def _notify(self, cur: Cur, topic: str) -> None:
        cur.execute("SELECT pg_notify(%s, %s)", (self.project_channel, topic))

    def unregister(self, name: str, session: str | None = None) -> bool:
        def go(conn: Conn) -> bool:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute(self._q("DELETE FROM {s}.agents WHERE project = %s AND name = %s "
                                    "AND (%s::text IS NULL OR session = %s) RETURNING session"),
                            (self.project, name, session, session))
                row = cur.fetchone()
                if row is None:
                    return False
                self._notify(cur, "agents")
                # that session's claims only, as the file store does
                cur.execute(self._q("DELETE FROM {s}.reservations WHERE project = %s AND holder = %s "
                                    "AND (session = %s OR session IS NULL)"), (self.project, name, row[0]))
                if cur.rowcount:
                    self._notify(cur, "reservations")
                return True

        return bool(self._run(go, f"unregistering {name}"))

    def update_agent(self, name: str, session: str | None, changes: Rec) -> Rec | None:
        from ..schema import validate

        def go(conn: Conn) -> Rec | None:
            with conn.transaction():
                cur = conn.cursor()
                cur.execute(self._q(f"SELECT {_AGENT_COLS} FROM {{s}}.agents WHERE project = %s AND name = %s "
                                    "FOR UPDATE"), (self.project, name))
                row = cur.fetchone()
                if row is None:
                    return None
                old = _agent(row)
                if session is not None and old["session"] != session:
                    return None
                rec = validate("agent", {**old, **changes}, f"agent {name}")
                self._update_agent_row(cur, rec)
                self._notify(cur, "agents")
                return rec

        return self._run(go, f"updating {name}")  # type: ignore[no-any-return]

    def get_agent(self, name: str) -> Rec | None:
        row = self._run(lambda c: c.execute(self._q(f"SELECT {_AGENT_COLS} FROM {{s}}.agents "
                                                    "WHERE project = %s AND name = %s"),
                                            (self.project, name)).fetchone(), "reading the registry")
        return _agent(row) if row else None

    def list_agents(self) -> list[Rec]:
        rows = self._run(lambda c: c.execute(self._q(f"SELECT {_AGENT_COLS} FROM {{s}}.agents WHERE project = %s "
                                                     "ORDER BY name"), (self.project,)).fetchall(),
                         "reading the registry")
        return [_agent(r) for r in rows]

    def is_live(self, agent: Rec) -> bool:
        return is_live(agent, self.heartbeat_ttl)

    # -- messages ---------------------------------------------------------
    def deliver(self, messages: list[Rec]) -> None:
        from psycopg.types.json import Jsonb

        from ..schema import validate

        rows = []
        for m in messages:
            validate("message", m, "message")
            rows.append((self.project, m["to"], m["id"], m["from"], m["text"], bool(m.get("urgent")), m.get("reply_to"),
                         m.get("thread"), bool(m.get("broadcast")), Jsonb(m["meta"]) if m.get("meta") is not None
                         else None, m["created"], self.mail_channel(m["to"]), m["id"], self.project_channel))
        if not rows:
            return
        # Insert and notify in one statement: the notification goes out exactly when the row commits.
        sql = self._q("""WITH ins AS (
              INSERT INTO {s}.messages (project, recipient, id, sender, body, urgent, reply_to, thread, broadcast, meta,
                                        created)
              VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
              ON CONFLICT (project, recipient, id) DO NOTHING RETURNING 1)
            SELECT pg_notify(%s, %s), pg_notify(%s, 'inbox') FROM ins""")

        def go(conn: Conn) -> None:
            if len(rows) == 1:
                conn.execute(sql, rows[0])
                return
            with conn.transaction():
                conn.cursor().executemany(sql, rows)

        self._run(go, "delivering mail")

    def fetch(self, name: str, unread_only: bool = True) -> list[tuple[Rec, bool]]:
        cond = " AND read_at IS NULL" if unread_only else ""
        rows = self._run(lambda c: c.execute(self._q(
            f"SELECT {_MSG_COLS}, read_at IS NOT NULL FROM {{s}}.messages WHERE project = %s AND recipient = %s "
            f"AND set_aside IS NULL{cond} ORDER BY id"), (self.project, name)).fetchall(), "reading mail")
        return [(_msg(r), bool(r[10])) for r in rows]

    def mark_read(self, name: str, ids: list[str]) -> int:
        if not ids:
            return 0
        return int(self._run(lambda c: c.execute(self._q(
            "UPDATE {s}.messages SET read_at = clock_timestamp() WHERE project = %s AND recipient = %s "
            "AND id = ANY(%s) AND read_at IS NULL AND set_aside IS NULL"), (self.project, name, list(ids))).rowcount,
            "marking mail read"))

    def get_message(self, name: str, msg_id: str) -> Rec | None:
        row = self._run(lambda c: c.execute(self._q(
            f"SELECT {_MSG_COLS} FROM {{s}}.messages WHERE project = %s AND recipient = %s AND id = %s "
            "AND set_aside IS NULL"), (self.project, name, msg_id)).fetchone(), "reading mail")
        return _msg(row) if row else None

    def unread_count(self, name: str) -> int:
        row = self._run(lambda c: c.execute(self._q(
            "SELECT count(*) FROM {s}.messages WHERE project = %s AND recipient = %s AND read_at IS NULL "
            "AND set_aside IS NULL"), (self.project, name)).fetchone(), "reading mail")
        return int(row[0])

    def thread(self, name: str, thread_id: str) -> list[Rec]:
        """The messages of ``name``'s inbox in one thread (the first message and every reply), in id order."""
        rows = self._run(lambda c: c.execute(self._q(
            f"SELECT {_MSG_COLS} FROM {{s}}.messages WHERE project = %s AND recipient = %s "
            "AND (thread = %s OR id = %s) ORDER BY id"), (self.project, name, thread_id, thread_id)).fetchall(),
            "reading mail")
        return [_msg(r) for r in rows]

    def wait_for_mail(self, name: str, timeout: float | None = None) -> int:
        """Block until ``name`` has unread mail or ``timeout`` seconds pass; returns the unread count (0 on timeout).

        Woken by ``NOTIFY`` on delivery (milliseconds); the count is re-read at
        least every :data:`MAIL_POLL` seconds, so a lost notification (a dropped
        listening connection, a pooler that swallows ``LISTEN``) only costs latency.
        """
        import psycopg

        deadline = None if timeout is None else time.monotonic() + timeout
        chan = self.mail_channel(name)
        while True:
            listener = None
            with self._listen_lock:
                try:
                    listener = self._listener()
                    if chan not in self._listening:
                        listener.execute(f'LISTEN "{chan}"')
                        self._listening.add(chan)
                except (psycopg.Error, StoreError):
                    self._drop_listener()
                    listener = None
            n = self.unread_count(name)
            if n:
                return n
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return 0
            step = MAIL_POLL if left is None else min(left, MAIL_POLL)
            if listener is None:
                time.sleep(min(step, 0.25))  # polling fallback
                continue
            with self._listen_lock:
                try:
                    for _ in listener.notifies(timeout=step, stop_after=1):
                        break
                except psycopg.Error:
                    self._drop_listener()

    def _listener(self) -> Conn:
        if self._listen is None or self._listen.closed or self._listen.broken:
            self._listen = self.connect()
            self._listening = set()
        return self._listen

    def _drop_listener(self) -> None:
        if self._listen is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._listen.close()
        self._listen = None
        self._listening = set()

    def subscribe(self, callback: Callable[[str | None], object]) -> Callable[[], None]:
        """Call ``callback(topic)`` (``agents``, ``reservations``, ``inbox``, ``feed``; ``None`` after a reconnect,
        meaning "anything may have changed") from a background thread whenever this project changes.
        Returns the function that ends the subscription."""
        sub = _Subscriber(self, callback)
        sub.start()
        self._subscribers.append(sub)

        def stop() -> None:
            sub.stop()
            if sub in self._subscribers:
                self._subscribers.remove(sub)

        return stop

    # -- reservations -----------------------------------------------------
    def claim(self, holder: str, session: str | None, wanted: list[tuple[str, str]], reason: str,
              ttl: float) -> list[Rec]:
        from ..schema import validate
        from .files.claims import conflict_message

        wanted = [(p, k) for p, k in wanted]
        prefixes = sorted({q for p, _ in wanted for q in P.prefixes(p)})
        dirs = sorted({p for p, k in wanted if k == P.DIR})
        everything = P.ROOT in dirs

        agent_cols = ", ".join(f"a.{c}" if c not in ("started", "last_seen") else _ts(f"a.{c}") for c in _AGENT_FIELDS)
        res_cols = ", ".join(f"r.{c}" for c in ("id", "holder", "session", "path", "kind", "reason")) + \
            f", {_ts('r.created')}, {_ts('r.expires')}"
        params: list[Any]
        if everything:
            where, params = "r.project = %s", [self.project]
        else:
            where = ("r.project = %s AND (r.path = ANY(%s) OR EXISTS (SELECT 1 FROM unnest(%s::text[]) d(p) "
                     "WHERE r.path > d.p || '/' AND r.path < d.p || '0'))")
            params = [self.project, prefixes, dirs]
        # Every stored claim that could overlap a wanted path, with its holder's registration (to judge liveness).
        select = self._q(f"SELECT {res_cols}, a.name IS NOT NULL, {agent_cols} FROM {{s}}.reservations r "
                         f"LEFT JOIN {{s}}.agents a ON a.project = r.project AND a.name = r.holder "
                         f"WHERE {where} ORDER BY r.id")

        def judge(cur: Cur) -> tuple[list[Rec], list[str], list[Rec], float]:
            """``(live claims, ids of dead ones, live claims of others in the way, now)``."""
            cur.execute(select, params)
            now = time.time()
            now_iso = iso(now)
            holders: dict[str, Rec | None] = {}
            alive: list[Rec] = []
            dead: list[Rec] = []
            for row in cur.fetchall():
                rec = _res(row[:8])
                a = _agent(row[9:]) if row[8] else None
                ok = rec["expires"] > now_iso and a is not None \
                    and not (rec.get("session") and a["session"] != rec["session"]) and self.is_live(a)
                (alive if ok else dead).append(rec)
                holders[rec["holder"]] = a
            conflicts: list[Rec] = []
            for path, kind in wanted:
                for r in alive:
                    if r["holder"] != holder and P.overlap(path, kind, r["path"], r["kind"]) and r not in conflicts:
                        conflicts.append(r)
            return alive, [r["id"] for r in dead], conflicts, now

        def go(conn: Conn) -> list[Rec]:
            # Lock-free first look: a live claim of another agent that is already committed refuses the request
            # as surely as it would under the lock, without queueing behind the claimants that can succeed.
            _, _, conflicts, now = judge(conn.cursor())
            if conflicts:
                raise ReservationConflict(conflict_message(wanted, conflicts, now), conflicts)
            with conn.transaction():
                cur = conn.cursor()
                # The one lock that makes check-and-claim atomic (see the module docstring).
                cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLAIMS, self.project))
                alive, dead, conflicts, now = judge(cur)
                if conflicts:
                    raise ReservationConflict(conflict_message(wanted, conflicts, now), conflicts)
                expires = iso(now + ttl)
                made, gone = [], list(dead)
                for path, kind in dict.fromkeys(wanted):
                    old = [r for r in alive if r["holder"] == holder and r["path"] == path and r["kind"] == kind]
                    rec = {"schema": 1, "id": new_id(now), "holder": holder, "session": session, "path": path,
                           "kind": kind, "reason": reason, "created": old[0]["created"] if old else iso(now),
                           "expires": expires}
                    validate("reservation", rec)
                    made.append(rec)
                    gone += [r["id"] for r in old]
                cur.execute(self._q("DELETE FROM {s}.reservations WHERE project = %s AND (id = ANY(%s) OR expires <= %s)"),
                            (self.project, gone, iso(now)))
                cur.executemany(self._q("INSERT INTO {s}.reservations (project, id, holder, session, path, kind, "
                                        "reason, created, expires) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"),
                                [(self.project, r["id"], holder, session, r["path"], r["kind"], reason, r["created"],
                                  r["expires"]) for r in made])
                self._notify(cur, "reservations")
                return made

        return self._run(go, "reserving")  # type: ignore[no-any-return]

    def release(self, holder: str, paths: list[str] | None = None) -> list[Rec]:
        cond = ""
        params: list[Any] = [self.project, holder]
        if paths is not None:
            cond = " AND path = ANY(%s)"
            params.append(list(paths))
        sql = self._q(f"""WITH d AS (DELETE FROM {{s}}.reservations WHERE project = %s AND holder = %s{cond}
                            RETURNING {_RES_COLS})
                          SELECT d.*, pg_notify(%s, 'reservations') FROM d""")
        rows = self._run(lambda c: c.execute(sql, [*params, self.project_channel]).fetchall(), "releasing")
        return sorted((_res(r) for r in rows), key=lambda r: r["id"])

    def reservations(self) -> list[Rec]:
        rows = self._run(lambda c: c.execute(self._q(f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s "
                                                     "ORDER BY id"), (self.project,)).fetchall(), "reading claims")
        return [_res(r) for r in rows]

    def covering(self, path: str, kind: str = "file") -> list[Rec]:
        """Claims on ``path``'s ancestors (directory claims) or on ``path`` itself; for a directory target also the
        claims beneath it.  One indexed query; the caller judges expiry and liveness."""
        prefixes = P.prefixes(path)
        params: list[Any]
        if kind == P.DIR and path == P.ROOT:
            sql, params = f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s", [self.project]
        elif kind == P.DIR:
            sql = (f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s AND "
                   "((path = ANY(%s) AND (kind = 'dir' OR path = %s)) OR (path > %s AND path < %s))")
            params = [self.project, prefixes, path, path + "/", path + "0"]
        else:
            sql = (f"SELECT {_RES_COLS} FROM {{s}}.reservations WHERE project = %s AND path = ANY(%s) "
                   "AND (kind = 'dir' OR path = %s)")
            params = [self.project, prefixes, path]
        rows = self._run(lambda c: c.execute(self._q(sql), params).fetchall(), "reading claims")
        depth = {p: i for i, p in enumerate(prefixes)}
        out = [_res(r) for r in rows]
        out.sort(key=lambda r: (depth.get(r["path"], len(depth)), r["id"]))
        return out

    # -- feed -------------------------------------------------------------
    def append_feed(self, event: Rec) -> None:
        from .files.feed import MAX_LINE

        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        if len(line) > MAX_LINE:
            event = {k: (v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v) for k, v in event.items()}
            line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            if len(line) > MAX_LINE:
                line = json.dumps({k: event[k] for k in ("ts", "event", "agent") if k in event})

        def go(conn: Conn) -> None:
            # The feed is a log, not state: its commit does not wait for the WAL flush (a server crash may lose the
            # last few events, never a message or a claim), so an operation pays for one durable commit, not two.
            with conn.pipeline(), conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")
                cur = conn.execute(self._q("""WITH ins AS (INSERT INTO {s}.feed (project, event) VALUES (%s, %s::json)
                                                RETURNING seq)
                                              SELECT seq, pg_notify(%s, 'feed') FROM ins"""),
                                   (self.project, line, self.project_channel))
            row = cur.fetchone()
            if row and row[0] % FEED_TRIM_EVERY == 0:
                self._trim_feed(conn)

        self._run(go, "appending to the feed")

    def _trim_feed(self, conn: Conn) -> int:
        cur = conn.execute(self._q("""DELETE FROM {s}.feed WHERE project = %s AND seq <= (
              SELECT seq FROM {s}.feed WHERE project = %s ORDER BY seq DESC OFFSET %s LIMIT 1)"""),
                           (self.project, self.project, FEED_MAX_ROWS))
        return cur.rowcount

    def read_feed(self, limit: int | None = None) -> list[Rec]:
        sql = "SELECT event FROM {s}.feed WHERE project = %s ORDER BY seq DESC"
        params: list[Any] = [self.project]
        if limit:
            sql += " LIMIT %s"
            params.append(int(limit))
        rows = self._run(lambda c: c.execute(self._q(sql), params).fetchall(), "reading the feed")
        return [r[0] for r in reversed(rows) if isinstance(r[0], dict)]

    # -- upkeep -----------------------------------------------------------
    def clock_skew(self) -> float:
        """Seconds this machine's clock is ahead of the server's (negative: behind)."""
        t0 = time.time()
        row = self._run(lambda c: c.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone())
        t1 = time.time()
        return (t0 + t1) / 2 - float(row[0])

    def doctor(self, fix: bool = False) -> list[Rec]:
        """Findings like the file store's (``stale-agent``, ``expired-claim``, ``dead-claim``, ``orphan-inbox``)
        plus ``clock-skew`` and ``set-aside-mail``; ``path`` names the table and key, e.g. ``agents/alice``."""
        found: list[Rec] = []

        def add(kind: str, path: str, detail: str, fixed: bool = False) -> None:
            found.append({"kind": kind, "path": path, "detail": detail, "fixed": fixed})

        skew = self.clock_skew()
        if abs(skew) > MAX_SKEW:
            add("clock-skew", "server", f"this machine's clock is {abs(skew):.1f}s "
                f"{'ahead of' if skew > 0 else 'behind'} the PostgreSQL server's: heartbeats and expiry are judged "
                "by local clocks, keep them in sync (NTP)")
        agents = {}
        for rec in self.list_agents():
            agents[rec["name"]] = rec
            if not self.is_live(rec):
                fixed = self.unregister(rec["name"], rec["session"]) if fix else False
                add("stale-agent", f"agents/{rec['name']}", f"{rec['name']} (pid {rec['pid']} on {rec['host']}) "
                    f"is gone (last seen {rec['last_seen']})", fixed)
                if fixed:
                    del agents[rec["name"]]
        now = time.time()
        bad_ids = []
        for rec in self.reservations():
            if rec["expires"] <= iso(now):
                add("expired-claim", f"reservations/{rec['id']}",
                    f"{rec['holder']}'s claim on {rec['path']} expired {rec['expires']}")
                bad_ids.append(rec["id"])
            else:
                a = agents.get(rec["holder"])
                if a is None or (rec.get("session") and a["session"] != rec["session"]) or not self.is_live(a):
                    add("dead-claim", f"reservations/{rec['id']}", f"{rec['holder']} holds {rec['path']} but is gone")
                    bad_ids.append(rec["id"])
        if fix and bad_ids:
            gone = set(self._run(lambda c: [r[0] for r in c.execute(self._q(
                "DELETE FROM {s}.reservations WHERE project = %s AND id = ANY(%s) RETURNING id"),
                (self.project, bad_ids)).fetchall()], "removing dead claims"))
            for f in found:
                if f["kind"] in ("expired-claim", "dead-claim") and f["path"].split("/", 1)[1] in gone:
                    f["fixed"] = True
        rows = self._run(lambda c: c.execute(self._q(
            "SELECT recipient, count(*) FILTER (WHERE set_aside IS NULL), count(*) FILTER (WHERE set_aside IS NOT NULL) "
            "FROM {s}.messages WHERE project = %s GROUP BY recipient ORDER BY recipient"), (self.project,)).fetchall(),
            "reading mail")
        for name, kept, aside in rows:
            if name not in agents and kept:
                add("orphan-inbox", f"inbox/{name}", f"{kept} message(s) for {name}, who is not registered (mail kept)")
            if aside:
                add("set-aside-mail", f"inbox/{name}", f"{aside} unread message(s) of an earlier session of {name} "
                    "set aside when the name was taken over (kept)")
        if fix:
            self._run(self._trim_feed, "trimming the feed")
        return found

    def status(self) -> Rec:
        """What ``pi-mesh db status`` shows."""
        def go(conn: Conn) -> Rec:
            version = self.schema_version(conn)
            server = (conn.execute("SHOW server_version").fetchone() or ["?"])[0]
            counts = conn.execute(self._q("""SELECT
                (SELECT count(*) FROM {s}.agents WHERE project = %(p)s),
                (SELECT count(*) FROM {s}.reservations WHERE project = %(p)s),
                (SELECT count(*) FROM {s}.messages WHERE project = %(p)s AND read_at IS NULL AND set_aside IS NULL),
                (SELECT count(*) FROM {s}.feed WHERE project = %(p)s),
                (SELECT count(*) FROM {s}.projects)"""), {"p": self.project}).fetchone() or (0, 0, 0, 0, 0)
            return {"url": self.url, "server_version": server, "schema": self.schema, "schema_version": version,
                    "latest_version": LATEST, "project": self.project, "agents": counts[0], "reservations": counts[1],
                    "unread_messages": counts[2], "feed_events": counts[3], "projects": counts[4]}

        return self._run(go, "reading status")  # type: ignore[no-any-return]

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.stop()
        self._subscribers.clear()
        with self._listen_lock:
            self._drop_listener()
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None


class _Subscriber:
    """A thread LISTENing on the project channel, calling ``callback(topic)`` per notification."""

    def __init__(self, store: PostgresStore, callback: Callable[[str | None], object]) -> None:
        self.store = store
        self.callback = callback
        self.chan = store.project_channel
        self.token = "stop-" + os.urandom(6).hex()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="pi-mesh-pg-listen", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._ready.wait(CONNECT_TIMEOUT + 1)

    def _loop(self) -> None:
        import psycopg

        backoff = 0.1
        first = True
        while not self._stop.is_set():
            conn = None
            try:
                conn = self.store.connect()
                conn.execute(f'LISTEN "{self.chan}"')
                self._ready.set()
                if not first:
                    self._call(None)  # notifications may have been missed while disconnected
                first, backoff = False, 0.1
                while not self._stop.is_set():
                    for n in conn.notifies(timeout=1.0):
                        if n.payload == self.token or self._stop.is_set():
                            return
                        self._call(n.payload)
            except (psycopg.Error, StoreError):
                self._ready.set()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()

    def _call(self, topic: str | None) -> None:
        with contextlib.suppress(Exception):  # a failing consumer must not kill the listener
            self.callback(topic)

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self.store._run(lambda c: c.execute("SELECT pg_notify(%s, %s)", (self.chan, self.token)))
        except StoreError:
            pass
        if self.thread is not threading.current_thread():
            self.thread.join(3.0)
