"""Durable, atomic file operations - the only way the file store writes.

* :func:`write_atomic` - temp file in the *same* directory, write, ``fsync``,
  ``os.replace``, ``fsync`` of the directory.  A reader sees the old file or the
  new one, never a part.
* :func:`create_exclusive` - the same, but ``os.link`` instead of replace, so
  it fails with ``FileExistsError`` if the name is taken (O_EXCL semantics
  with atomic content).
* :func:`sync_batch` - several descriptors made durable together (Maildir
  delivery, :mod:`.delivery`, builds on these).
* :func:`read_json` - refuses symlinks, non-regular files and files over a
  size limit before reading a byte.

An fsync error is a failed write (it is raised, never ignored).

Crash points for the torture suite: when ``PI_MESH_CRASH_AT`` names one of
``temp-write``, ``file-fsync``, ``rename``, ``dir-fsync``, the process SIGKILLs
itself right after that step of the next write.

Temp files are named ``.tmp-<pid>-<random>-<final name>`` (in ``tmp/`` for
messages delivered by rename: ``<id>.<pid>.tmp``) so ``doctor`` can tell a
leftover from a write in progress.
"""

from __future__ import annotations

import errno
import os
import stat

from . import links
from ...jsonc import encode_basestring as _encode_basestring
from ...safejson import describe as _describe
from ...safejson import loads as _loads

MAX_RECORD_BYTES = 1 << 20  # no record we write comes near 1 MiB
_CRASH_AT = os.environ.get("PI_MESH_CRASH_AT") or None
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
_pid = [os.getpid()]  # names temp files on every delivery: getpid(2) once, again in a forked child
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def crash_point(step: str) -> None:
    if _CRASH_AT is not None and _CRASH_AT == step:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def set_crash_point(step: str | None) -> None:
    """For tests in-process: arm (or disarm) a crash point."""
    global _CRASH_AT
    _CRASH_AT = step


def dumps(record: dict) -> bytes:
    """The record as written to disk: ``json.dumps(record, ensure_ascii=False, indent=1)`` plus a newline."""
    try:
        fast = flat_json(record, "{\n ", ": ", ",\n ", "\n}\n")
        if fast is not None:
            return fast.encode("utf-8")
        import json  # indent: json's pure-Python encoder (the fast layout above covers flat records)

        return (json.dumps(record, ensure_ascii=False, sort_keys=False, indent=1) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # a lone surrogate (a non-UTF-8 file name or argv byte, decoded with surrogateescape):
        # \u escapes keep the file valid UTF-8 JSON and round-trip the string exactly
        import json

        return (json.dumps(record, ensure_ascii=True, sort_keys=False, indent=1) + "\n").encode("ascii")


def flat_json(record: dict, start: str, colon: str, comma: str, end: str) -> str | None:
    """Byte-for-byte what ``json.dumps(record, ensure_ascii=False, ...)`` gives with that layout, for a
    non-empty dict of str keys and str/int/bool/None values (``None`` for anything else).

    ``("{\\n ", ": ", ",\\n ", "\\n}\\n")`` is ``indent=1`` plus a newline (a record file);
    ``("{", ":", ",", "}")`` is ``separators=(",", ":")`` (a feed line).  json's own encoder
    costs several microseconds per call for either (with ``indent`` its C encoder is not used;
    with ``separators`` a new encoder is built each call) - on every message delivered.  Strings go
    through the escaping function json uses (``_json.encode_basestring``); a test compares
    the two on random records.
    """
    if not record:
        return None
    enc = _encode_basestring
    keys = _keys.get(colon)
    if keys is None:
        keys = _keys[colon] = {}
    parts = [start]
    add = parts.append
    for k, v in record.items():
        t = type(v)
        if t is str:
            s = enc(v)
        elif t is bool:
            s = "true" if v else "false"
        elif v is None:
            s = "null"
        elif t is int:
            s = int.__repr__(v)
        else:
            return None
        key = keys.get(k) if type(k) is str else None
        if key is None:
            if type(k) is not str:
                return None
            key = enc(k) + colon
            if len(keys) < 256:  # the field names of our records; anything else is encoded each time
                keys[k] = key
        add(key)
        add(s)
        add(comma)
    parts[-1] = end
    return "".join(parts)


_keys: dict[str, dict[str, str]] = {}  # colon -> {field name: its JSON string + colon}


def named(e: OSError, path: str) -> OSError:
    """``e``, or the same error naming ``path`` when ``e`` names no file, or only ``.`` or a
    ``/proc/self/fd/`` link (what an ``O_TMPFILE`` open, a ``write``, an ``fsync`` or a ``linkat``
    through a descriptor report): "No space left on device: .inbox/bob/new/<id>.json", not ": .".
    A mesh error (a refused symlink) is left as it is."""
    f = e.filename
    if type(e).__module__ != "builtins" or (f is not None and f != "." and not str(f).startswith("/proc/self/fd/")):
        return e
    return OSError(e.errno, e.strerror, path)


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise named(e, path) from None


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def temp_name(final: str) -> str:
    return f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{os.path.basename(final)}"


def _write_temp(directory: str, final: str, data: bytes, durable: bool = True) -> str:
    links.not_a_link(directory)  # a symlinked directory would take the file out of the mesh
    tmp = os.path.join(directory, temp_name(final))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        _write_fd(fd, data)
        crash_point("temp-write")
        if durable:
            os.fsync(fd)
            crash_point("file-fsync")
    except BaseException:
        os.close(fd)
        _unlink_quiet(tmp)
        raise
    os.close(fd)
    return tmp


def write_atomic(path: str, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` atomically; ``durable=False`` (for caches) skips the fsyncs, not the atomicity."""
    try:
        _write_atomic(path, data, durable)
    except OSError as e:
        raise named(e, path) from None


def _write_atomic(path: str, data: bytes, durable: bool) -> None:
    directory = os.path.dirname(path)
    tmp = _write_temp(directory, path, data, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    crash_point("rename")
    if durable:
        fsync_dir(directory)
        crash_point("dir-fsync")


def create_exclusive(path: str, data: bytes) -> None:
    """Create ``path`` with ``data`` atomically; ``FileExistsError`` if it exists."""
    try:
        _create_exclusive(path, data)
    except OSError as e:
        raise named(e, path) from None


def _create_exclusive(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    tmp = _write_temp(directory, path, data)
    try:
        os.link(tmp, path)
    finally:
        _unlink_quiet(tmp)
    crash_point("rename")
    fsync_dir(directory)
    crash_point("dir-fsync")


_POOL: list = []
_SYNCFS: list = []
SYNCFS_MIN = 3  # below this, per-descriptor fsyncs are as cheap as one syncfs


def sync_batch(fds: list[int]) -> None:
    """Make every descriptor's data and metadata durable; all are on one file system (the mesh's).

    With ``SYNCFS_MIN`` or more, one ``syncfs(2)`` on Linux flushes them all in a
    single journal commit (it also flushes other dirty data of that file system,
    which is why a lone message uses fsync).  Linux reports writeback errors
    through syncfs since 5.8; an error is raised like a failed fsync.
    """
    if len(fds) >= SYNCFS_MIN and _syncfs(fds[0]):
        return
    fsync_all(fds)


def _syncfs(fd: int) -> bool:
    if not _SYNCFS:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).syncfs
            fn.argtypes = [ctypes.c_int]
            _SYNCFS[:] = [fn, ctypes.get_errno]
        except (OSError, AttributeError):  # not Linux, or a libc without syncfs
            _SYNCFS[:] = [None, None]
    fn, get_errno = _SYNCFS
    if fn is None:
        return False
    if fn(fd) != 0:
        err = get_errno()
        raise OSError(err, f"syncfs failed: {os.strerror(err)}")
    return True


def fsync_all(fds: list[int]) -> None:
    """fsync every descriptor; several run concurrently.  The first error is raised (after all finished)."""
    if len(fds) <= 1:
        for fd in fds:
            os.fsync(fd)
        return
    if not _POOL or _POOL[0] != os.getpid():  # a forked child does not inherit the pool's threads
        from concurrent.futures import ThreadPoolExecutor

        _POOL[:] = [os.getpid(), ThreadPoolExecutor(max_workers=16, thread_name_prefix="pi-mesh-fsync")]
    futures = [_POOL[1].submit(os.fsync, fd) for fd in fds]
    errors = [f.exception() for f in futures]
    for e in errors:
        if e is not None:
            raise e


def read_json(path: str, max_bytes: int = MAX_RECORD_BYTES) -> dict:
    """Read one JSON object from a regular file.

    Raises ``ValueError`` (with a short reason) for a symlink, a directory or
    other non-regular file, a file over ``max_bytes``, bad UTF-8, bad JSON, JSON
    nested too deeply (:mod:`pi_mesh_plugin.safejson`) or a JSON value that is not an object; ``FileNotFoundError`` if it vanished;
    ``PermissionError`` if it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:  # the final component is a symlink (40 on Linux, 62 on macOS)
            raise ValueError("is a symlink, not a file") from None
        if isinstance(e, IsADirectoryError):
            raise ValueError("is a directory, not a file") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError("is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file")
        if st.st_size > max_bytes:
            raise ValueError(f"is {st.st_size} bytes, over the {max_bytes}-byte limit")
        # One read of the whole file (plus one byte, to see its end): a short read of a regular
        # file is its end, so a small record costs one read(2), not a read and an empty read.
        want = st.st_size + 1
        first = os.read(fd, want)
        chunks = [first]
        if len(first) >= want:  # it grew since the fstat: read on to the end
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                chunks.append(b)
                if sum(map(len, chunks)) > max_bytes:
                    raise ValueError(f"grew past the {max_bytes}-byte limit while being read")
        if len(first) > max_bytes:
            raise ValueError(f"grew past the {max_bytes}-byte limit while being read")
    finally:
        os.close(fd)
    try:
        value = _loads(first if len(chunks) == 1 else b"".join(chunks))
    except ValueError as e:
        raise ValueError(_describe(e)) from None
    if not isinstance(value, dict):
        raise ValueError("is not a JSON object")
    return value


def ensure_dir(path: str) -> None:
    """Make ``path`` and its parents; a symlink at ``.pi/mesh`` or below is refused (:mod:`.links`)."""
    links.ensure_dir(path)


_LIST = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def listdir(path: str) -> list[str]:
    """Entry names (no dot files), or ``[]`` if the directory does not exist.

    A symlink in its place is refused (:class:`~pi_mesh_plugin.errors.SymlinkRefused`), not followed."""
    try:
        fd = os.open(path, _LIST)
    except FileNotFoundError:
        return []
    except OSError as e:
        err = links.refused(e, path)
        if err is e and isinstance(e, NotADirectoryError):
            return []
        raise err from None
    try:
        return [n for n in os.listdir(fd) if not n.startswith(".")]
    finally:
        os.close(fd)


def move_aside(src: str, dest_dir: str) -> str:
    """Rename ``src`` into ``dest_dir`` under a free name; returns the new path.  Never deletes."""
    ensure_dir(dest_dir)
    base = os.path.basename(src)
    dest = os.path.join(dest_dir, base)
    n = 0
    while os.path.lexists(dest):
        n += 1
        dest = os.path.join(dest_dir, f"{base}.{n}")
    os.rename(src, dest)
    return dest


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
