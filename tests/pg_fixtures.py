"""PostgreSQL fixtures (loaded by conftest.py when this file exists).

* ``pg_base_url`` (session): a reachable server.  ``$PI_MESH_TEST_PG``
  (default ``postgresql://postgres@127.0.0.1:5432/test``); if that is
  unreachable and PostgreSQL's programs are installed (``initdb``/``pg_ctl`` on
  PATH or under ``/usr/lib/postgresql/*/bin``; ``$PI_MESH_TEST_PG_BINDIR`` to
  look only in one directory), a throwaway cluster is started
  on loopback for the session; with neither, PostgreSQL tests skip with the
  reason printed in the summary - or fail when ``PI_MESH_REQUIRE_PG=1`` (CI).
* ``pg_url``: a store URL with a fresh schema of its own (``?schema=t_…``),
  dropped after the test.
* ``backend``: parameterised over ``files`` and ``postgres``; selects the store
  for everything in the test (``PI_MESH_STORE`` is set for the postgres run,
  so Mesh objects, CLI subprocesses and workers all use it).  ``store_url`` is
  the URL (``None`` for the file store).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
_skip_reasons: list[str] = []


def _reachable(url: str) -> str | None:
    """``None`` when ``url`` accepts a connection, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'pi-mesh-plugin[postgres]')"
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as c:
            c.execute("SELECT 1")
    except psycopg.Error as e:
        return (str(e).strip().splitlines() or ["connection failed"])[0]
    return None


def _pg_bin(prog: str) -> str | None:
    bindir = os.environ.get("PI_MESH_TEST_PG_BINDIR")  # only look there (an empty directory: never start a cluster)
    if bindir is not None:
        cand = os.path.join(bindir, prog)
        return cand if os.access(cand, os.X_OK) else None
    found = shutil.which(prog)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{prog}"), reverse=True)
    return cands[0] if cands else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Cluster:
    """A throwaway cluster on loopback (trust auth, database ``test``)."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self.dir = tempfile.mkdtemp(prefix="pi-mesh-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.as_user: list[str] = []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres account when there is one
            runuser = shutil.which("runuser")
            try:
                import pwd

                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no postgres user for initdb") from None
            if not runuser:
                raise RuntimeError("running as root and runuser is missing")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = [runuser, "-u", "postgres", "--"]
        self._run(self.initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run(self.pg_ctl, "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE test")
        return f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def stop(self) -> None:
        try:
            self._run(self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop")
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _unavailable(reason: str) -> None:
    msg = f"PostgreSQL tests need a server: {reason}"
    if os.environ.get("PI_MESH_REQUIRE_PG") == "1":
        pytest.fail(msg + " (PI_MESH_REQUIRE_PG=1: failing instead of skipping)", pytrace=False)
    if msg not in _skip_reasons:
        _skip_reasons.append(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_base_url():  # -> str
    url = os.environ.get("PI_MESH_TEST_PG") or DEFAULT_PG
    why = _reachable(url)
    if why is None:
        yield url
        return
    if why.startswith("psycopg is not installed"):
        _unavailable(why)
    if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
        _unavailable(f"{url} is unreachable ({why}) and no initdb/pg_ctl is installed to start one")
    cluster = _Cluster()
    try:
        local = cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        cluster.stop()
        detail = getattr(e, "stderr", b"") or b""
        _unavailable(f"{url} is unreachable ({why}) and a throwaway cluster did not start: {e} "
                     f"{detail.decode(errors='replace').strip()[:300]}")
    try:
        yield local
    finally:
        cluster.stop()


def _with_schema(url: str, schema: str) -> str:
    return url + ("&" if "?" in url else "?") + f"schema={schema}"


@pytest.fixture
def pg_url(pg_base_url):  # -> str
    """A store URL whose schema is this test's alone; dropped (with any leftover sessions) afterwards."""
    import psycopg

    schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    yield _with_schema(pg_base_url, schema)
    with psycopg.connect(pg_base_url, autocommit=True) as admin:
        admin.execute("SET lock_timeout = '5s'")
        for _attempt in range(3):
            try:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                break
            except psycopg.errors.LockNotAvailable:
                # a process of the test still holds a lock: end it (stores name their schema in application_name)
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                              "AND pid <> pg_backend_pid()", (f"pi-mesh/{schema}",))
                time.sleep(0.2)


@pytest.fixture(params=["files", "postgres"])
def backend(request, monkeypatch):  # -> str
    """``"files"`` or ``"postgres"``; for postgres, ``PI_MESH_STORE`` points at a fresh schema."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("PI_MESH_STORE", url)
        request.node.store_url = url
    else:
        request.node.store_url = None
    return request.param


@pytest.fixture
def store_url(request, backend):  # -> str | None
    """The store URL of this run of a ``backend``-parameterised test (``None``: the file store)."""
    return request.node.store_url


def pytest_terminal_summary(terminalreporter) -> None:
    for reason in _skip_reasons:
        terminalreporter.write_line(f"pi-mesh: skipped PostgreSQL tests: {reason}", yellow=True)
