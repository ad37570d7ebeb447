"""The schema: versioned migrations, applied on first use or by ``pi-mesh db init``.

Every table lives in the schema named by the URL (``?schema=NAME``); the
versions applied are recorded in ``<schema>.schema_version``.  The first
connection of a store runs :func:`upgrade`, which applies what is missing
under an advisory lock (concurrent first users queue instead of colliding) and
refuses a schema newer than this code understands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import StoreError
from .connection import LOCK_SCHEMA

if TYPE_CHECKING:
    from .connection import Conn, Database

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
    (2, "the waiting line for claims, one-time notices", [
        # one row per ticket; ``id`` sorts by the time the agent joined the line (see store/queue_rules.py)
        """CREATE TABLE {s}.queue (
             project text COLLATE "C" NOT NULL,
             id text COLLATE "C" NOT NULL,
             agent text COLLATE "C" NOT NULL,
             session text,
             paths jsonb NOT NULL,
             reason text NOT NULL,
             ttl double precision NOT NULL CHECK (ttl > 0),
             queued timestamptz NOT NULL,
             PRIMARY KEY (project, id))""",
        """CREATE TABLE {s}.notices (
             project text COLLATE "C" NOT NULL,
             key text COLLATE "C" NOT NULL,
             sent timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (project, key))""",
    ]),
    (3, "the edit ledger: who last wrote each file of a working tree", [
        """CREATE TABLE {s}.ledger (
             project text COLLATE "C" NOT NULL,
             tree text COLLATE "C" NOT NULL,
             path text COLLATE "C" NOT NULL,
             agent text COLLATE "C" NOT NULL,
             entry jsonb NOT NULL,
             PRIMARY KEY (project, tree, path))""",
    ]),
    (4, "the owner's pid namespace: a pid means something only in its namespace", [
        "ALTER TABLE {s}.agents ADD COLUMN pid_ns text",
    ]),
    (5, "receipts: when and through which adapter a message entered its reader's context; sent mail by sender", [
        "ALTER TABLE {s}.messages ADD COLUMN shown_at timestamptz, ADD COLUMN shown_via text",
        "CREATE INDEX messages_sender ON {s}.messages (project, sender, id)",
    ]),
]
LATEST = MIGRATIONS[-1][0]


def schema_version(db: Database, conn: Conn | None = None) -> int:
    """The schema version in the database (0: no schema yet)."""
    import psycopg

    c = conn or db.connection()
    try:
        row = c.execute(db.q("SELECT max(version) FROM {s}.schema_version")).fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        return 0
    return int(row[0] or 0) if row else 0


def upgrade(db: Database, conn: Conn) -> list[int]:
    """Bring the schema on ``conn`` up to :data:`LATEST`; returns the versions applied."""
    import psycopg

    try:
        have = schema_version(db, conn)
    except psycopg.Error as e:
        raise db.error(e, "reading the schema version") from None
    if have == LATEST:
        return []
    if have > LATEST:
        raise StoreError(f"PostgreSQL store {db.url}: schema {db.schema} is at version {have}, newer than "
                         f"this pi-mesh understands ({LATEST}); upgrade pi-mesh-plugin")
    applied = []
    try:
        with conn.transaction():
            # Serialise concurrent first users: CREATE SCHEMA IF NOT EXISTS alone can still collide.
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_SCHEMA, db.schema))
            conn.execute(db.q("CREATE SCHEMA IF NOT EXISTS {s}"))
            conn.execute(db.q("""CREATE TABLE IF NOT EXISTS {s}.schema_version (
                version integer PRIMARY KEY, description text NOT NULL,
                applied timestamptz NOT NULL DEFAULT now())"""))
            have = schema_version(db, conn)
            for version, description, statements in MIGRATIONS:
                if version <= have:
                    continue
                for stmt in statements:
                    conn.execute(db.q(stmt).replace("{{", "{").replace("}}", "}"))
                conn.execute(db.q("INSERT INTO {s}.schema_version (version, description) VALUES (%s, %s)"),
                             (version, description))
                applied.append(version)
    except psycopg.Error as e:
        raise db.error(e, f"creating schema {db.schema} (run `pi-mesh db init` as a user allowed to "
                          f"CREATE in this database)") from None
    return applied


def migrate(db: Database) -> list[int]:
    """Create or upgrade the schema now, on a connection of its own; returns the versions applied."""
    with db.lock:
        conn = db.connect()
        try:
            return upgrade(db, conn)
        finally:
            conn.close()
